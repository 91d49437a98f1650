"""Source transients as data: one waveform program, each vendor's LIST subsystem, scripted (sent, reply)
exchanges asserted byte-exact; bad programs refused before anything is sent; the source driven safe
when a program fails on the way."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator

import pytest

from drivers.clock import ManualClock
from drivers.errors import InstrumentError, InstrumentTimeout, SafetyLimitError, ValidationError
from drivers.scpi import ScpiInstrument
from drivers.source import PHANTOM, PowerSource
from drivers.transients import (
    CHROMA_61500_LIST,
    KEYSIGHT_AC6800_LIST,
    PHANTOM_LIST,
    TRANSIENT_DIALECTS,
    TransientDialect,
    TransientStep,
    TransientSubsystem,
    WaveformProgram,
    dip,
    interruption,
    repeated,
)
from drivers.transport import ScriptedTransport

OK = '0,"No error"'
OPEN = ("*CLS;*OPC?", "1")
THREE_SECONDS_OFF = repeated(TransientStep(0.0, duration_s=1.0), 3, recovery_s=0.05)
ONE_CYCLE = interruption(cycles=1, start_phase_deg=0.0)


def checked(*messages: str) -> list[tuple[str, str | None]]:
    """Each message sent with its error check in one round trip (ScpiInstrument.send)."""
    return [(f"{m};:SYST:ERR?", OK) for m in messages]


@contextlib.contextmanager
def subsystem(dialect: TransientDialect, script: list[tuple[str, str | None]]
              ) -> Iterator[tuple[TransientSubsystem, ScriptedTransport, list[str]]]:
    """A transient subsystem on a scripted transport; at the end of the block every exchange must have been used."""
    with ScriptedTransport([OPEN, *script]) as transport:
        instrument = ScpiInstrument(transport)
        instrument.open()
        safe_calls: list[str] = []
        yield (TransientSubsystem(instrument, dialect, max_voltage_v=264.0,
                                  on_failure=lambda: safe_calls.append("safe")), transport, safe_calls)


CASES = {
    "scpi-phantom": (
        PHANTOM_LIST,
        checked("SOUR:LIST:BASE TIME", "SOUR:LIST:VOLT 0.000,220.000", "SOUR:LIST:FREQ 50.000,50.000",
                "SOUR:LIST:DWEL 1.000000,0.050000", "SOUR:LIST:PHAS:STAT OFF", "SOUR:LIST:COUN 3")
        + checked("INIT:TRAN") + [("SOUR:LIST:RUNN?", "1"), ("SOUR:LIST:RUNN?", "0")],
    ),
    "chroma-61500": (
        CHROMA_61500_LIST,
        # 52.5 cycles a pass: the phase list cannot repeat, so the three passes are unrolled.
        checked("OUTP:MODE LIST", "LIST:BASE TIME", "LIST:VOLT:AC:STAR 0.0,220.0,0.0,220.0,0.0,220.0",
                "LIST:VOLT:AC:END 0.0,220.0,0.0,220.0,0.0,220.0",
                "LIST:FREQ:STAR 50.00,50.00,50.00,50.00,50.00,50.00",
                "LIST:FREQ:END 50.00,50.00,50.00,50.00,50.00,50.00",
                "LIST:DWEL 1000.0,50.0,1000.0,50.0,1000.0,50.0", "LIST:DEGR 0.0,0.0,180.0,180.0,0.0,0.0",
                "LIST:COUN 1")
        + checked("TRIG ON") + [("TRIG:STAT?", "RUNNING"), ("TRIG:STAT?", "OFF")] + checked("OUTP:MODE FIXED"),
    ),
    "keysight-ac6800": (
        KEYSIGHT_AC6800_LIST,
        checked("VOLT:MODE LIST", "FREQ:MODE LIST", "LIST:STEP AUTO", "LIST:TERM:LAST OFF", "TRIG:TRAN:SOUR BUS",
                "LIST:VOLT 0.00,220.00", "LIST:FREQ 50.00,50.00", "LIST:DWEL 1.0000,0.0500", "LIST:COUN 3")
        + checked("INIT:TRAN", "TRIG:TRAN") + [("STAT:OPER:COND?", "16"), ("STAT:OPER:COND?", "0")]
        + checked("VOLT:MODE FIX", "FREQ:MODE FIX"),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_three_one_second_interruptions_byte_exact(name: str) -> None:
    dialect, script = CASES[name]
    with subsystem(dialect, script) as (transients, _transport, safe_calls):
        clock = ManualClock()
        took = transients.run(THREE_SECONDS_OFF, voltage_v=220.0, frequency_hz=50.0, clock=clock)
        assert safe_calls == []
        assert 0 < took <= 3.15 + 1.0


ONE_CYCLE_LOADS = {
    "scpi-phantom": checked("SOUR:LIST:BASE CYCL", "SOUR:LIST:VOLT 0.000", "SOUR:LIST:FREQ 50.000",
                            "SOUR:LIST:DWEL 1.000", "SOUR:LIST:PHAS 0.0", "SOUR:LIST:COUN 1"),
    "chroma-61500": checked("OUTP:MODE LIST", "LIST:BASE CYCLE", "LIST:VOLT:AC:STAR 0.0", "LIST:VOLT:AC:END 0.0",
                            "LIST:FREQ:STAR 50.00", "LIST:FREQ:END 50.00", "LIST:DWEL 1", "LIST:DEGR 0.0",
                            "LIST:COUN 1"),
}


@pytest.mark.parametrize("name", list(ONE_CYCLE_LOADS))
def test_one_cycle_at_zero_crossing_goes_in_cycles(name: str) -> None:
    with subsystem(TRANSIENT_DIALECTS[name], ONE_CYCLE_LOADS[name]) as (transients, _transport, _):
        duration = transients.load(ONE_CYCLE, voltage_v=220.0, frequency_hz=50.0)
        assert duration == pytest.approx(0.02 + 0.02), "one cycle, and up to one cycle waiting for 0°"


def test_a_dialect_without_start_phase_refuses_one_before_sending() -> None:
    with subsystem(KEYSIGHT_AC6800_LIST, []) as (transients, transport, _):
        with pytest.raises(ValidationError, match="keysight-ac6800 cannot start a transient at a phase angle"):
            transients.load(ONE_CYCLE, voltage_v=220.0, frequency_hz=50.0)
        assert transport.sent == ["*CLS;*OPC?"]


@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda: TransientStep(0.0, duration_s=-1.0), ValidationError, "duration -1 s must be positive"),
    (lambda: TransientStep(0.0, cycles=0), ValidationError, "duration 0 cycles must be positive"),
    (lambda: TransientStep(0.0, duration_s=1.0, cycles=2), ValidationError, "exactly one"),
    (lambda: TransientStep(-5.0, duration_s=1.0), ValidationError, "negative"),
    (lambda: TransientStep(float("nan"), duration_s=1.0), ValidationError, "not a finite number"),
    (lambda: WaveformProgram(()), ValidationError, "at least one step"),
    (lambda: WaveformProgram((TransientStep(0.0, duration_s=1.0),), repeat=0), ValidationError, "repeat 0"),
    (lambda: interruption(duration_s=1.0, start_phase_deg=360.0), ValidationError, "start phase 360"),
])
def test_bad_programs_are_refused_when_made(make: Callable[[], object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("name", list(CASES))
def test_bad_loads_are_refused_before_anything_is_sent(name: str) -> None:
    dialect = TRANSIENT_DIALECTS[name]
    with subsystem(dialect, []) as (transients, transport, safe_calls):
        too_high = r"step 1: 125 % of 220 V is 275 V, above the bench safety limit 264 V"
        with pytest.raises(SafetyLimitError, match=too_high):
            transients.load(dip(125.0, duration_s=1.0), voltage_v=220.0, frequency_hz=50.0)
        with pytest.raises(ValidationError, match="list points, the list holds"):
            transients.load(WaveformProgram(tuple(TransientStep(50.0, duration_s=1.0) for _ in range(101))),
                            voltage_v=220.0, frequency_hz=50.0)
        with pytest.raises(ValidationError, match="lasts"):
            transients.load(interruption(duration_s=1e-7), voltage_v=220.0, frequency_hz=50.0)
        with pytest.raises(ValidationError, match="load a waveform program before starting it"):
            transients.start()
        assert transport.sent == ["*CLS;*OPC?"] and safe_calls == []


def test_instrument_error_while_loading_stops_the_list_and_drives_the_source_safe() -> None:
    with ScriptedTransport([OPEN,
                                       ("SOUR:LIST:BASE TIME;:SYST:ERR?", OK),
                                       ("SOUR:LIST:VOLT 0.000;:SYST:ERR?", '-222,"Data out of range"'),
                                       ("SYST:ERR?", OK),
                                       ("ABOR:TRAN", None),
                                       ("OUTP OFF", None), ("SOUR:CURR 0.00000", None), ("OUTP?", "0")]) as transport:
        source = PowerSource(transport, max_voltage_v=264.0, max_current_a=72.0)
        source.open()
        with pytest.raises(InstrumentError, match=r"SOUR:LIST:VOLT 0\.000': -222 Data out of range"):
            source.run_transient(interruption(duration_s=1.0), voltage_v=220.0, frequency_hz=50.0, clock=ManualClock())


class StuckSource:
    """A source whose list never ends: every command is taken, `SOUR:LIST:RUNN?` always says running."""

    resource = "stuck"

    def __init__(self) -> None:
        self.sent: list[str] = []

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def write(self, message: str) -> None:
        self.sent.append(message)

    def query(self, message: str) -> str:
        self.sent.append(message)
        return {"SOUR:LIST:RUNN?": "1", "OUTP?": "0", "*CLS;*OPC?": "1"}.get(message, OK)


def test_program_that_never_ends_times_out_and_leaves_the_source_safe() -> None:
    transport = StuckSource()
    source = PowerSource(transport, max_voltage_v=264.0, max_current_a=72.0)
    source.open()
    clock = ManualClock()
    with pytest.raises(InstrumentTimeout, match=r"still running after 3\.1 s"):
        source.run_transient(interruption(duration_s=1.0), voltage_v=220.0, frequency_hz=50.0, clock=clock)
    assert transport.sent[-4:] == ["ABOR:TRAN", "OUTP OFF", "SOUR:CURR 0.00000", "OUTP?"]
    assert 3.1 <= clock.now() < 3.3


def test_a_72h_program_is_slept_through_not_polled_every_second() -> None:
    clock = ManualClock()

    class Source(StuckSource):
        def query(self, message: str) -> str:
            if message == "SOUR:LIST:RUNN?":
                self.sent.append(message)
                return "1" if clock.now() < 72 * 3600 else "0"
            return super().query(message)

    transport = Source()
    source = PowerSource(transport, max_voltage_v=264.0, max_current_a=72.0)
    source.open()
    took = source.run_transient(interruption(duration_s=72 * 3600.0), voltage_v=220.0, frequency_hz=50.0,
                                clock=clock)
    assert 72 * 3600 <= took <= 72 * 3600 + 1.0
    assert transport.sent.count("SOUR:LIST:RUNN?") <= 3


def test_phantom_source_dialect_carries_its_list_subsystem() -> None:
    assert PHANTOM.transient is PHANTOM_LIST
    plain = dataclasses.replace(PHANTOM, transient=None)
    source = PowerSource(ScriptedTransport([]), max_voltage_v=264.0, max_current_a=72.0, dialect=plain)
    with pytest.raises(InstrumentError, match="has no transient"):
        source.transients  # noqa: B018


def test_every_dialect_row_names_its_source_and_unconfirmed_rows_say_so() -> None:
    for dialect in TRANSIENT_DIALECTS.values():
        assert dialect.source and dialect.running_query and dialect.start
    assert not PHANTOM_LIST.check and CHROMA_61500_LIST.check and KEYSIGHT_AC6800_LIST.check
