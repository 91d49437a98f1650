"""Source and reference drivers against scripted exchanges, byte-exact, no hardware."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

import pytest

from drivers.ac_sources import CHROMA_61500
from drivers.errors import InstrumentError, NotOpenError, RigError, SafetyLimitError, ValidationError
from drivers.fluke6100 import FLUKE_6100B, FLUKE_6105A_ENERGY, Fluke6100Source, Fluke6105aEnergy
from drivers.reference import CalculatorState, ReferenceDialect, ReferenceStandard
from drivers.registry import DRIVERS_BY_ROLE, REFERENCES, SOURCES, reference_driver, source_driver
from drivers.source import PowerSource, SourceDialect
from drivers.transport import ScriptedTransport

OK = ("SYST:ERR?", '0,"No error"')


@contextlib.contextmanager
def source_with(script: list[tuple[str, str | None]]) -> Iterator[tuple[PowerSource, ScriptedTransport]]:
    """An open source on a scripted transport; at the end of the block every exchange must have been used."""
    with ScriptedTransport([("*CLS;*OPC?", "1"), *script]) as transport:
        source = PowerSource(transport, max_voltage_v=264.0, max_current_a=72.0)
        source.open()
        yield source, transport


def test_apply_sends_each_setting_once_and_checks_the_error_queue() -> None:
    with source_with([
            ("SOUR:VOLT 220.000;:SYST:ERR?", '0,"No error"'),
            ("SOUR:CURR 5.00000;:SYST:ERR?", '0,"No error"'),
            ("SOUR:PHAS 60.000;:SYST:ERR?", '0,"No error"'),
            ("SOUR:FREQ 50.000;:SYST:ERR?", '0,"No error"'),
        ]) as (source, _transport):
        source.apply(voltage_v=220, current_a=5, phase_deg=60, frequency_hz=50)


def test_set_point_above_safety_limit_is_refused_before_anything_is_sent() -> None:
    with source_with([]) as (source, transport):
        with pytest.raises(SafetyLimitError, match="265 V is above the bench safety limit 264 V"):
            source.set_voltage(265)
        with pytest.raises(SafetyLimitError):
            source.apply(voltage_v=220, current_a=80)
        assert transport.sent == ["*CLS;*OPC?"], "nothing after open: the whole load point is checked first"


def test_out_of_instrument_range_raises_never_clips() -> None:
    with source_with([]) as (source, transport):
        with pytest.raises(ValidationError, match="outside the instrument's range"):
            source.set_frequency(70)
        with pytest.raises(ValidationError, match="not a number"):
            source.set_phase("north")  # type: ignore[arg-type]
        assert transport.sent == ["*CLS;*OPC?"]


def test_error_queue_entry_becomes_instrument_error_naming_the_command() -> None:
    with source_with([
            ("SOUR:VOLT 100.000;:SYST:ERR?", '-222,"Data out of range"'), OK,
        ]) as (source, _), pytest.raises(InstrumentError, match=r"after 'SOUR:VOLT 100.000': -222 Data out of range"):
        source.set_voltage(100)


@pytest.mark.parametrize("reply", ["", "abc", "nan", "1.2.3"])
def test_garbled_measurement_reply_is_named(reply: str) -> None:
    with source_with([("MEAS:VOLT?", reply)]) as (source, _), pytest.raises(InstrumentError, match="MEAS:VOLT"):
        source.measure()


def test_close_leaves_output_off() -> None:
    with source_with([("OUTP OFF", None), ("SOUR:CURR 0.00000", None), ("OUTP?", "0")]) as (source, transport):
        source.close()
        assert not transport.is_open


def test_safe_reports_output_that_stays_on() -> None:
    safe_on = [("OUTP OFF", None), ("SOUR:CURR 0.00000", None), ("OUTP?", "1")]
    with source_with([*safe_on, *safe_on]) as (source, _), pytest.raises(InstrumentError, match="output still on"):
        source.safe()


def test_use_before_open_is_a_clear_error() -> None:
    source = PowerSource(ScriptedTransport([]), max_voltage_v=264, max_current_a=72)
    with pytest.raises(NotOpenError, match="call open"):
        source.identity()


def test_error_calculator_protocol() -> None:
    with ScriptedTransport([
            ("*CLS;*OPC?", "1"),
            ("CALC2:CONS 1200.000;:SYST:ERR?", '0,"No error"'),
            ("CALC2:PULS 5;:SYST:ERR?", '0,"No error"'),
            ("CALC2:STAR;:SYST:ERR?", '0,"No error"'),
            ("CALC2:STAT?", "DONE"),
            ("CALC2:ERR?", "0.04210"), OK,
            ("CAL:CERT?", '"CERT-7"'), ("CAL:DUE?", "2027-01-31"),
        ]) as transport:
        reference = ReferenceStandard(transport)
        reference.open()
        calc = reference.calculator(2)
        calc.configure(constant_imp_per_kwh=1200, pulses=5)
        calc.start()
        assert calc.state() is CalculatorState.DONE
        assert calc.error_pct() == pytest.approx(0.0421)
        calibration = reference.calibration()
        assert calibration.certificate == "CERT-7" and calibration.expired(dt.date(2027, 2, 1))


def test_bad_calibration_date_is_named() -> None:
    with ScriptedTransport([("*CLS;*OPC?", "1"), ("CAL:CERT?", "X"), ("CAL:DUE?", "soon")]) as transport:
        reference = ReferenceStandard(transport)
        reference.open()
        with pytest.raises(InstrumentError, match="'soon', not a YYYY-MM-DD date"):
            reference.calibration()


# ---------------------------------------------------------------- Fluke 6100B/6105A (drivers.fluke6100)
# Replies are the examples of the Fluke 6100B/6105A Users Manual, chapter 5: "14.4 A would be returned as
# 1.44E1" (5-43, SOURce:PHASe<x>:CURRent:AMPLitude?), "24.3 kW would be returned as 2.43E4" (5-32,
# SOURce:PHASe<x>:POWer:WATT?), "for example "6105A"" (5-32, SOURce:PHASe<x>:MODel?), FITTed? 1 (5-32).

FLUKE_OPEN = [("*CLS;*OPC?", "1"), ("SOUR:PHAS1:FITT?", "1")]


@contextlib.contextmanager
def fluke_with(script: list[tuple[str, str | None]]) -> Iterator[tuple[Fluke6100Source, ScriptedTransport]]:
    with ScriptedTransport([*FLUKE_OPEN, *script]) as transport:
        source = Fluke6100Source(transport, max_voltage_v=264.0, max_current_a=72.0)
        source.open()
        yield source, transport


def test_fluke_load_point_is_sent_in_its_dialect_byte_exact() -> None:
    with fluke_with([
            ("SOUR:PHAS1:VOLT:MHAR:AMPL 230.0000;:SYST:ERR?", '0,"No error"'),
            ("SOUR:PHAS1:CURR:MHAR:AMPL 5.00000;:SYST:ERR?", '0,"No error"'),
            ("SOUR:PHAS1:CURR:MHAR:HARM1:PANG 60.000;:SYST:ERR?", '0,"No error"'),
            ("SOUR:FREQ 50.000;:SYST:ERR?", '0,"No error"'),
            ("OUTP ON;:SYST:ERR?", '0,"No error"'),
        ]) as (source, _transport):
        source.apply(voltage_v=230, current_a=5, phase_deg=60, frequency_hz=50)
        source.output_on()


def test_fluke_readings_parse_the_manuals_scientific_replies() -> None:
    with fluke_with([
            ("SOUR:PHAS1:VOLT:MHAR:AMPL?", "2.3E2"),
            ("SOUR:PHAS1:CURR:AMPL?", "1.44E1"),
            ("SOUR:PHAS1:POW:WATT?", "2.43E4"),
            ("SOUR:PHAS1:POW:PFAC?", "1.0E0"),
            ("SOUR:FREQ?", "5.0E1"),
            ("SOUR:PHAS1:MOD?", '"6105A"'),
        ]) as (source, _transport):
        reading = source.measure()
        assert (reading.voltage_v, reading.current_a, reading.power_w) == (230.0, 14.4, 24300.0)
        assert (reading.power_factor, reading.frequency_hz) == (1.0, 50.0)
        assert source.model() == "6105A"


def test_fluke_is_driven_safe_with_output_off_then_zero_current() -> None:
    with fluke_with([
            ("OUTP OFF", None), ("SOUR:PHAS1:CURR:MHAR:AMPL 0.00000", None), ("OUTP?", "0"),
        ]) as (source, _transport):
        source.safe()


def test_fluke_without_its_phase_refuses_to_open_and_leaves_it_off() -> None:
    with ScriptedTransport([("*CLS;*OPC?", "1"), ("SOUR:PHAS1:FITT?", "0"), ("OUTP OFF", None),
                            ("SOUR:PHAS1:CURR:MHAR:AMPL 0.00000", None), ("OUTP?", "0")]) as transport:
        with pytest.raises(InstrumentError, match="phase 1 of the power standard is not fitted"):
            Fluke6100Source(transport, max_voltage_v=264.0, max_current_a=72.0).open()
        assert not transport.is_open


@pytest.mark.parametrize(("call", "message"), [
    (lambda s: s.apply(voltage_v=230, current_a=80.5), "outside the instrument's range 0..80 A"),  # manual 5-43
    (lambda s: s.set_frequency(900), "outside the instrument's range 16..850 Hz"),
    (lambda s: s.set_voltage(1001), "outside the instrument's range 0..1000 V"),
    (lambda s: s.apply(voltage_v=230, current_a=73), "above the bench safety limit 72 A"),
])
def test_fluke_family_ranges_and_bench_safety_limits_refuse_before_sending(call, message: str) -> None:
    with fluke_with([]) as (source, transport):
        with pytest.raises((ValidationError, SafetyLimitError), match=message):
            call(source)
        assert transport.sent == [m for m, _ in FLUKE_OPEN], "nothing was sent"


def test_fluke_dialect_cites_its_manual_and_lists_unconfirmed_rows() -> None:
    fields = set(SourceDialect.__dataclass_fields__)
    assert "Users Manual" in FLUKE_6100B.source and "5-43" in FLUKE_6100B.source
    assert FLUKE_6100B.check and set(FLUKE_6100B.check) <= fields, "every row to check names a dialect field"


def test_fluke_has_no_list_subsystem_and_says_so() -> None:
    with fluke_with([]) as (source, _), pytest.raises(InstrumentError, match="fluke-6100b dialect has no transient"):
        _ = source.transients


# The Energy option: 5-95 ENERgy:MUT:CONStant:UNIT IPKWH (no short form of the parameter), 5-103
# ENERgy:REFerence:SOURce MAIN, 5-97 ENERgy:MUT:SOURce CH1TO3, 5-91 MUT:TEST:PSOUrce after the sources,
# 5-94 ENERgy:MUT:CONStant <dnpd>, 5-92 ENERgy:ABORt. Start, state, error and duration rows are `check`.

@contextlib.contextmanager
def energy_with(script: list[tuple[str, str | None]]) -> Iterator[tuple[Fluke6105aEnergy, ScriptedTransport]]:
    with ScriptedTransport([
        ("*CLS;*OPC?", "1"),
        ("ENER:MUT:CONS:UNIT IPKWH;:SYST:ERR?", '0,"No error"'),
        ("ENER:REF:SOUR MAIN;:SYST:ERR?", '0,"No error"'),
        *script,
    ]) as transport:
        reference = Fluke6105aEnergy(transport)
        reference.open()
        yield reference, transport


def test_fluke_energy_option_error_reading_byte_exact() -> None:
    with energy_with([
            ("ENER:MUT:SOUR CH1TO3;:SYST:ERR?", '0,"No error"'),
            ("ENER:MUT:TEST:PSOU CH2;:SYST:ERR?", '0,"No error"'),
            ("ENER:MUT:CONS 1200.000;:SYST:ERR?", '0,"No error"'),
            ("ENER:MUT:TEST:DUR 10;:SYST:ERR?", '0,"No error"'),
            ("ENER:STAR;:SYST:ERR?", '0,"No error"'),
            ("ENER:STAT?", "COMPLETE"),
            ("ENER:MUT2:ERR?", "-4.2E-2"), OK,
            ("SOUR:PHAS1:POW:WATT?", "2.43E4"),
        ]) as (reference, _transport):
        calc = reference.calculator(2)
        calc.configure(constant_imp_per_kwh=1200, pulses=10)
        calc.start()
        assert calc.state() is CalculatorState.DONE
        assert calc.error_pct() == pytest.approx(-0.042)
        assert reference.query_float(FLUKE_6105A_ENERGY.measure_power) == 24300.0  # 5-32: "2.43E4"


def test_fluke_energy_option_has_three_mut_inputs_and_names_an_unknown_state() -> None:
    with energy_with([("ENER:STAT?", "WARMING")]) as (reference, _):
        with pytest.raises(ValueError, match=r"MUT inputs 1\.\.3"):
            reference.calculator(4)
        with pytest.raises(InstrumentError, match=r"ENER:STAT\? replied 'WARMING'"):
            reference.calculator(1).state()


def test_every_reference_dialect_lists_only_its_own_fields_to_check() -> None:
    fields = set(ReferenceDialect.__dataclass_fields__)
    for row in REFERENCES.values():
        assert set(row.dialect.check) <= fields and row.dialect.source
    assert "5-58" in FLUKE_6105A_ENERGY.source


# ---------------------------------------------------------------- voltage-only sources, the registry


def test_voltage_only_source_takes_a_no_load_point_and_refuses_current() -> None:
    with ScriptedTransport([("*CLS;*OPC?", "1"), ("VOLT:AC 230.0;:SYST:ERR?", '0,"No error"'),
                                       ("FREQ 50.00;:SYST:ERR?", '0,"No error"')]) as transport:
        source = PowerSource(transport, max_voltage_v=264.0, max_current_a=72.0, dialect=CHROMA_61500)
        source.open()
        source.apply(voltage_v=230, current_a=0, frequency_hz=50)
        with pytest.raises(InstrumentError, match="chroma-61500 source has no current output"):
            source.apply(voltage_v=230, current_a=5)


def test_every_registered_driver_builds_its_class_with_its_dialect() -> None:
    reachable = set(DRIVERS_BY_ROLE["source"])  # what a bench file's `driver:` may name
    assert {"fluke-6100b", "chroma-61500", "keysight-ac6800"} <= reachable
    assert set(DRIVERS_BY_ROLE["reference"]) == set(REFERENCES)
    for name, row in SOURCES.items():
        source = source_driver(name).build(ScriptedTransport([]), max_voltage_v=264.0, max_current_a=72.0)
        assert type(source) is row.driver and source.dialect is row.dialect
    assert type(source_driver("fluke-6100b").build(ScriptedTransport([]), max_voltage_v=1, max_current_a=1)) \
        is Fluke6100Source
    assert type(reference_driver("scpi-reference").build(ScriptedTransport([]))) is ReferenceStandard
    energy = reference_driver("fluke-6105a-energy").build(ScriptedTransport([]))
    assert type(energy) is Fluke6105aEnergy and energy.dialect is FLUKE_6105A_ENERGY
    with pytest.raises(RigError, match="unknown source driver 'fluke-6100a'; known: scpi-phantom-source, fluke"):
        source_driver("fluke-6100a")


def test_a_scripted_block_fails_at_its_end_when_exchanges_remain() -> None:
    with pytest.raises(AssertionError, match="script not finished: next expected 'OUTP OFF'"), \
            source_with([("OUTP OFF", None)]):
        pass
    with pytest.raises(InstrumentError), source_with([("MEAS:VOLT?", "x"), ("OUTP OFF", None)]) as (source, _):
        source.measure()  # the block's own error wins over the unused exchange
