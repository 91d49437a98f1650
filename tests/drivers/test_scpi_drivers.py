"""Source and reference drivers against scripted exchanges, byte-exact, no hardware."""

from __future__ import annotations

import datetime as dt

import pytest

from drivers.errors import InstrumentError, NotOpenError, SafetyLimitError, ValidationError
from drivers.reference import CalculatorState, ReferenceStandard
from drivers.source import PowerSource
from drivers.transport import ScriptedTransport

OK = ("SYST:ERR?", '0,"No error"')


def source_with(script: list[tuple[str, str | None]]) -> tuple[PowerSource, ScriptedTransport]:
    transport = ScriptedTransport([("*CLS;*OPC?", "1"), *script])
    source = PowerSource(transport, max_voltage_v=264.0, max_current_a=72.0)
    source.open()
    return source, transport


def test_apply_sends_each_setting_once_and_checks_the_error_queue() -> None:
    source, transport = source_with([
        ("SOUR:VOLT 220.000;:SYST:ERR?", '0,"No error"'),
        ("SOUR:CURR 5.00000;:SYST:ERR?", '0,"No error"'),
        ("SOUR:PHAS 60.000;:SYST:ERR?", '0,"No error"'),
        ("SOUR:FREQ 50.000;:SYST:ERR?", '0,"No error"'),
    ])
    source.apply(voltage_v=220, current_a=5, phase_deg=60, frequency_hz=50)
    transport.assert_done()


def test_set_point_above_safety_limit_is_refused_before_anything_is_sent() -> None:
    source, transport = source_with([])
    with pytest.raises(SafetyLimitError, match="265 V is above the bench safety limit 264 V"):
        source.set_voltage(265)
    with pytest.raises(SafetyLimitError):
        source.apply(voltage_v=220, current_a=80)
    assert transport.sent == ["*CLS;*OPC?"], "nothing after open: the whole load point is checked first"


def test_out_of_instrument_range_raises_never_clips() -> None:
    source, transport = source_with([])
    with pytest.raises(ValidationError, match="outside the instrument's range"):
        source.set_frequency(70)
    with pytest.raises(ValidationError, match="not a number"):
        source.set_phase("north")  # type: ignore[arg-type]
    assert transport.sent == ["*CLS;*OPC?"]


def test_error_queue_entry_becomes_instrument_error_naming_the_command() -> None:
    source, _ = source_with([
        ("SOUR:VOLT 100.000;:SYST:ERR?", '-222,"Data out of range"'), OK,
    ])
    with pytest.raises(InstrumentError, match=r"after 'SOUR:VOLT 100.000': -222 Data out of range"):
        source.set_voltage(100)


@pytest.mark.parametrize("reply", ["", "abc", "nan", "1.2.3"])
def test_garbled_measurement_reply_is_named(reply: str) -> None:
    source, _ = source_with([("MEAS:VOLT?", reply)])
    with pytest.raises(InstrumentError, match="MEAS:VOLT"):
        source.measure()


def test_close_leaves_output_off() -> None:
    source, transport = source_with([("OUTP OFF", None), ("SOUR:CURR 0.00000", None), ("OUTP?", "0")])
    source.close()
    transport.assert_done()
    assert not transport.is_open


def test_safe_reports_output_that_stays_on() -> None:
    source, _ = source_with([("OUTP OFF", None), ("SOUR:CURR 0.00000", None), ("OUTP?", "1"),
                             ("OUTP OFF", None), ("SOUR:CURR 0.00000", None), ("OUTP?", "1")])
    with pytest.raises(InstrumentError, match="output still on"):
        source.safe()


def test_use_before_open_is_a_clear_error() -> None:
    source = PowerSource(ScriptedTransport([]), max_voltage_v=264, max_current_a=72)
    with pytest.raises(NotOpenError, match="call open"):
        source.identity()


def test_error_calculator_protocol() -> None:
    transport = ScriptedTransport([
        ("*CLS;*OPC?", "1"),
        ("CALC2:CONS 1200.000;:SYST:ERR?", '0,"No error"'),
        ("CALC2:PULS 5;:SYST:ERR?", '0,"No error"'),
        ("CALC2:STAR;:SYST:ERR?", '0,"No error"'),
        ("CALC2:STAT?", "DONE"),
        ("CALC2:ERR?", "0.04210"), OK,
        ("CAL:CERT?", '"CERT-7"'), ("CAL:DUE?", "2027-01-31"),
    ])
    reference = ReferenceStandard(transport)
    reference.open()
    calc = reference.calculator(2)
    calc.configure(constant_imp_per_kwh=1200, pulses=5)
    calc.start()
    assert calc.state() is CalculatorState.DONE
    assert calc.error_pct() == pytest.approx(0.0421)
    calibration = reference.calibration()
    assert calibration.certificate == "CERT-7" and calibration.expired(dt.date(2027, 2, 1))
    transport.assert_done()


def test_bad_calibration_date_is_named() -> None:
    transport = ScriptedTransport([("*CLS;*OPC?", "1"), ("CAL:CERT?", "X"), ("CAL:DUE?", "soon")])
    reference = ReferenceStandard(transport)
    reference.open()
    with pytest.raises(InstrumentError, match="'soon', not a YYYY-MM-DD date"):
        reference.calibration()
