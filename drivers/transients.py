"""Source transients (drivers layer): dips, short interruptions and outages described once as a waveform
program, and mapped onto each vendor's LIST subsystem as data (one `TransientDialect` row per family).

Sans-IO where it can be: `TransientDialect.messages` turns a program into the exact SCPI messages, every
value validated (and the bench's safety limit checked) before the first one is sent; `TransientSubsystem`
sends them through a `ScpiInstrument` and waits on the injected clock. Imports nothing above the drivers.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from drivers.clock import Clock
from drivers.errors import InstrumentError, InstrumentTimeout, RigError, SafetyLimitError, ValidationError
from drivers.scpi import ScpiInstrument, Setting

# ------------------------------------------------------------------------------------------ the program


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{name}: {value!r} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValidationError(f"{name}: {value!r} is not a finite number")
    return number


@dataclass(frozen=True)
class TransientStep:
    """One step of a waveform program: the output at `level_pct` of the nominal voltage for `duration_s`
    seconds or `cycles` cycles (exactly one of them), at `frequency_hz` (None: the nominal frequency).

    `level_pct` is what remains: 0 is an interruption, 50 a dip to half the voltage, 100 the nominal.
    """

    level_pct: float
    duration_s: float | None = None
    cycles: float | None = None
    frequency_hz: float | None = None

    def __post_init__(self) -> None:
        level = _finite("level", self.level_pct)
        if level < 0:
            raise ValidationError(f"level {level:g} % is negative: a level is the voltage that remains, 0..100 %")
        if (self.duration_s is None) == (self.cycles is None):
            raise ValidationError("a step has a duration in seconds or in cycles (exactly one of them)")
        length = _finite("duration", self.duration_s if self.duration_s is not None else self.cycles)
        if length <= 0:
            unit = "s" if self.duration_s is not None else "cycles"
            raise ValidationError(f"duration {length:g} {unit} must be positive")
        if self.frequency_hz is not None and _finite("frequency", self.frequency_hz) <= 0:
            raise ValidationError(f"frequency {self.frequency_hz:g} Hz must be positive")

    def frequency(self, nominal_hz: float) -> float:
        """The step's frequency, Hz."""
        return self.frequency_hz if self.frequency_hz is not None else nominal_hz

    def seconds(self, nominal_hz: float) -> float:
        """The step's duration, s."""
        if self.duration_s is not None:
            return self.duration_s
        assert self.cycles is not None
        return self.cycles / self.frequency(nominal_hz)


@dataclass(frozen=True)
class WaveformProgram:
    """Steps run back to back `repeat` times, starting at `start_phase_deg` of the voltage waveform (None:
    wherever the waveform is); after the last step the output returns to its set-point."""

    steps: tuple[TransientStep, ...]
    repeat: int = 1
    start_phase_deg: float | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValidationError("a waveform program needs at least one step")
        if not all(isinstance(s, TransientStep) for s in self.steps):
            raise ValidationError("the steps of a waveform program are TransientStep objects")
        if isinstance(self.repeat, bool) or not isinstance(self.repeat, int) or self.repeat < 1:
            raise ValidationError(f"repeat {self.repeat!r} must be a whole number >= 1")
        if self.start_phase_deg is not None:
            phase = _finite("start phase", self.start_phase_deg)
            if not 0.0 <= phase < 360.0:
                raise ValidationError(f"start phase {phase:g}° must be in 0..360°")

    def duration_s(self, nominal_hz: float) -> float:
        """Length of the whole program (every repeat), s; the wait for the start phase not included."""
        return self.repeat * sum(step.seconds(nominal_hz) for step in self.steps)


def interruption(*, duration_s: float | None = None, cycles: float | None = None,
                 start_phase_deg: float | None = None, name: str = "") -> WaveformProgram:
    """The voltage gone (0 %) for a time, then back."""
    return WaveformProgram((TransientStep(0.0, duration_s=duration_s, cycles=cycles),),
                           start_phase_deg=start_phase_deg, name=name)


def dip(level_pct: float, *, duration_s: float | None = None, cycles: float | None = None,
        start_phase_deg: float | None = None, name: str = "") -> WaveformProgram:
    """The voltage down to `level_pct` for a time, then back."""
    return WaveformProgram((TransientStep(level_pct, duration_s=duration_s, cycles=cycles),),
                           start_phase_deg=start_phase_deg, name=name)


def repeated(step: TransientStep, times: int, *, recovery_s: float, start_phase_deg: float | None = None,
             name: str = "") -> WaveformProgram:
    """`step` `times` times, each followed by `recovery_s` at the nominal voltage."""
    return WaveformProgram((step, TransientStep(100.0, duration_s=recovery_s)), repeat=times,
                           start_phase_deg=start_phase_deg, name=name)


# ------------------------------------------------------------------------------------------ the dialects


@dataclass(frozen=True)
class DwellBase:
    """How a dialect gives the time of a list point: `select` chooses the base (None: the only one),
    a value is the duration times `per_unit` (seconds -> ms is 1000), with `decimals`, within low..high."""

    select: str | None
    per_unit: float
    decimals: int
    low: float
    high: float
    unit: str


@dataclass(frozen=True)
class TransientDialect:
    """A vendor's LIST subsystem, as data: which commands carry the voltages, frequencies, dwell times,
    phases and count, how the list is started, asked whether it still runs, and stopped."""

    name: str
    source: str  # where the command set comes from
    max_points: int
    voltage: Setting  # range and decimals of a list voltage; `command` is unused, see voltage_lists
    frequency: Setting
    voltage_lists: tuple[str, ...]  # commands taking the list of voltages (Chroma: start and end)
    frequency_lists: tuple[str, ...]
    dwell_list: str
    time_base: DwellBase
    cycle_base: DwellBase | None
    count: str
    max_count: int
    setup: tuple[str, ...] = ()  # before the lists (mode, trigger source, what happens at the end)
    start_phase: str | None = None  # program-level start phase, degrees (twin)
    free_start: str | None = None  # starts wherever the waveform is
    phase_list: str | None = None  # a start phase for every point (Chroma)
    start: tuple[str, ...] = ()
    running_query: str = ""
    running_replies: tuple[str, ...] = ()  # replies meaning "still running"
    running_bit: int | None = None  # or: the query returns a register with this bit set while running
    finish: tuple[str, ...] = ()  # after the list has run: back to the fixed output
    abort: tuple[str, ...] = ()
    check: bool = False  # commands not yet confirmed against the vendor's manual

    def points(self, program: WaveformProgram, nominal_hz: float) -> tuple[list[TransientStep], int]:
        """The list points and the count: one pass and its repeat count, or every pass unrolled when the
        phase list could not repeat (a pass that is not a whole number of cycles)."""
        steps = list(program.steps)
        if self.phase_list is not None and program.repeat > 1:
            cycles = sum(s.seconds(nominal_hz) * s.frequency(nominal_hz) for s in steps)
            if abs(cycles - round(cycles)) > 1e-6:
                return steps * program.repeat, 1
        return steps, program.repeat

    def messages(self, program: WaveformProgram, *, voltage_v: float, frequency_hz: float,
                 max_voltage_v: float) -> list[str]:
        """Every message that loads `program` at nominal `voltage_v`, `frequency_hz` (not the start).

        ValidationError / SafetyLimitError before anything is sent: a value outside the instrument's range,
        a level above the bench's safety limit, more points than the list holds, a start phase the dialect
        cannot give."""
        nominal = _finite("nominal voltage", voltage_v)
        if nominal < 0:
            raise ValidationError(f"nominal voltage {nominal:g} V is negative; nothing was sent")
        steps, count = self.points(program, frequency_hz)
        if len(steps) > self.max_points:
            raise ValidationError(f"{self.name}: {len(steps)} list points, the list holds {self.max_points}; "
                                  "nothing was sent")
        if count > self.max_count:
            raise ValidationError(f"{self.name}: repeat {count} is above the list's {self.max_count}; nothing was sent")
        volts: list[float] = []
        for number, step in enumerate(steps, 1):
            volts_step = nominal * step.level_pct / 100.0
            if volts_step > max_voltage_v + 1e-9:
                raise SafetyLimitError(
                    f"step {number}: {step.level_pct:g} % of {nominal:g} V is {volts_step:g} V, above the bench "
                    f"safety limit {max_voltage_v:g} V; nothing was sent")
            volts.append(self.voltage.validate(volts_step))
        freqs = [self.frequency.validate(step.frequency(frequency_hz)) for step in steps]
        base, dwells = self._dwells(steps, frequency_hz)
        out = list(self.setup)
        if base.select is not None:
            out.append(base.select)
        out += [f"{command} {_join(volts, self.voltage.decimals)}" for command in self.voltage_lists]
        out += [f"{command} {_join(freqs, self.frequency.decimals)}" for command in self.frequency_lists]
        out.append(f"{self.dwell_list} {_join(dwells, base.decimals)}")
        out += self._phases(program, steps, frequency_hz)
        out.append(f"{self.count} {count}")
        return out

    def _dwells(self, steps: Sequence[TransientStep], nominal_hz: float) -> tuple[DwellBase, list[float]]:
        in_cycles = self.cycle_base is not None and all(s.cycles is not None for s in steps)
        base = self.cycle_base if in_cycles and self.cycle_base is not None else self.time_base
        values = []
        for number, step in enumerate(steps, 1):
            raw = step.cycles if in_cycles and step.cycles is not None else step.seconds(nominal_hz)
            value = raw * base.per_unit
            shown = round(value, base.decimals)
            if not base.low <= shown <= base.high or abs(shown - value) > 1e-9 * max(1.0, abs(value)):
                raise ValidationError(
                    f"{self.name}: step {number} lasts {value:g} {base.unit}; the list takes "
                    f"{base.low:g}..{base.high:g} {base.unit} in steps of {10.0 ** -base.decimals:g}; nothing was sent")
            values.append(shown)
        return base, values

    def _phases(self, program: WaveformProgram, steps: Sequence[TransientStep], nominal_hz: float) -> list[str]:
        phase = program.start_phase_deg
        if self.phase_list is not None:
            # Every point starts where the waveform is when the one before ends (no wait between points).
            start = 0.0 if phase is None else phase
            phases, cycles = [], 0.0
            for step in steps:
                phases.append((start + 360.0 * cycles) % 360.0)
                cycles += step.seconds(nominal_hz) * step.frequency(nominal_hz)
            return [f"{self.phase_list} {_join([round(p, 1) % 360.0 for p in phases], 1)}"]
        if phase is None:
            return [self.free_start] if self.free_start is not None else []
        if self.start_phase is None:
            raise ValidationError(f"{self.name} cannot start a transient at a phase angle ({phase:g}° asked); "
                                  "give the program no start phase; nothing was sent")
        return [f"{self.start_phase} {phase:.1f}"]

    def is_running(self, reply: str, resource: str) -> bool:
        """Whether the reply to `running_query` says the list still runs."""
        text = reply.strip().strip('"').upper()
        if self.running_bit is not None:
            try:
                return bool(int(float(text)) & self.running_bit)
            except ValueError:
                raise InstrumentError(f"{resource}: reply to {self.running_query} is not a number: {reply!r}") from None
        return text in self.running_replies


def _join(values: Sequence[float], decimals: int) -> str:
    return ",".join(f"{v:.{decimals}f}" for v in values)


# The twin's phantom-load source (its own SCPI, served by rig.twin.source): absolute volts, seconds or
# cycles, a program-level start phase.
PHANTOM_LIST: Final = TransientDialect(
    name="scpi-phantom",
    source="the twin's phantom-load source (rig.twin.source)",
    max_points=100,
    voltage=Setting("list voltage", "SOUR:LIST:VOLT", "V", 0.0, 300.0, decimals=3),
    frequency=Setting("list frequency", "SOUR:LIST:FREQ", "Hz", 45.0, 65.0, decimals=3),
    voltage_lists=("SOUR:LIST:VOLT",),
    frequency_lists=("SOUR:LIST:FREQ",),
    dwell_list="SOUR:LIST:DWEL",
    time_base=DwellBase("SOUR:LIST:BASE TIME", 1.0, 6, 1e-6, 1e6, "s"),
    cycle_base=DwellBase("SOUR:LIST:BASE CYCL", 1.0, 3, 0.001, 1e6, "cycles"),
    count="SOUR:LIST:COUN",
    max_count=1000,
    start_phase="SOUR:LIST:PHAS",
    free_start="SOUR:LIST:PHAS:STAT OFF",
    start=("INIT:TRAN",),
    running_query="SOUR:LIST:RUNN?",
    running_replies=("1",),
    abort=("ABOR:TRAN",),
)

# Chroma 61500/61600: OUTP:MODE LIST, LIST:BASE TIME|CYCLE and the start/end lists from the 61501..61504
# user's manual 8.6.2; LIST:DWEL in ms (TIME base), LIST:DEGR, LIST:COUN and TRIG ON / TRIG:STAT? as
# remembered from the same manual: check against it before the first bench run.
CHROMA_61500_LIST: Final = TransientDialect(
    name="chroma-61500",
    source="Chroma 61501/61502/61503/61504 user's manual, 8.6.2 (LIST and OUTPut:MODE)",
    max_points=100,
    voltage=Setting("list voltage", "LIST:VOLT:AC:STAR", "V", 0.0, 300.0, decimals=1),
    frequency=Setting("list frequency", "LIST:FREQ:STAR", "Hz", 15.0, 1000.0, decimals=2),
    voltage_lists=("LIST:VOLT:AC:STAR", "LIST:VOLT:AC:END"),
    frequency_lists=("LIST:FREQ:STAR", "LIST:FREQ:END"),
    dwell_list="LIST:DWEL",
    time_base=DwellBase("LIST:BASE TIME", 1000.0, 1, 0.1, 99999.9, "ms"),
    cycle_base=DwellBase("LIST:BASE CYCLE", 1.0, 0, 1.0, 9999.0, "cycles"),
    count="LIST:COUN",
    max_count=65535,
    setup=("OUTP:MODE LIST",),
    phase_list="LIST:DEGR",
    start=("TRIG ON",),
    running_query="TRIG:STAT?",
    running_replies=("RUNNING", "ON"),
    finish=("OUTP:MODE FIXED",),
    abort=("TRIG OFF", "OUTP:MODE FIXED"),
    check=True,
)

# Keysight AC6800 (AC6801A..AC6804A/B): the SCPI LIST subsystem of Keysight's AC sources (LIST:VOLT,
# LIST:FREQ, LIST:DWEL in s, LIST:COUN, LIST:STEP AUTO; VOLT:MODE/FREQ:MODE LIST; transient trigger);
# no start phase. Check against the AC6800 programming guide before the first bench run.
KEYSIGHT_AC6800_LIST: Final = TransientDialect(
    name="keysight-ac6800",
    source="Keysight AC6800 programming guide, LIST and TRIGger:TRANsient subsystems",
    max_points=100,
    voltage=Setting("list voltage", "LIST:VOLT", "V", 0.0, 310.0, decimals=2),
    frequency=Setting("list frequency", "LIST:FREQ", "Hz", 40.0, 500.0, decimals=2),
    voltage_lists=("LIST:VOLT",),
    frequency_lists=("LIST:FREQ",),
    dwell_list="LIST:DWEL",
    time_base=DwellBase(None, 1.0, 4, 0.001, 9999.0, "s"),
    cycle_base=None,
    count="LIST:COUN",
    max_count=9999,
    setup=("VOLT:MODE LIST", "FREQ:MODE LIST", "LIST:STEP AUTO", "LIST:TERM:LAST OFF", "TRIG:TRAN:SOUR BUS"),
    start=("INIT:TRAN", "TRIG:TRAN"),
    running_query="STAT:OPER:COND?",
    running_bit=0x10,  # OPERation condition: a transient is in progress
    finish=("VOLT:MODE FIX", "FREQ:MODE FIX"),
    abort=("ABOR:TRAN", "VOLT:MODE FIX", "FREQ:MODE FIX"),
    check=True,
)

TRANSIENT_DIALECTS: Final = {d.name: d for d in (PHANTOM_LIST, CHROMA_61500_LIST, KEYSIGHT_AC6800_LIST)}


# ------------------------------------------------------------------------------------------ running it


@dataclass
class TransientSubsystem:
    """A source's LIST subsystem: load a program, start it, wait for its end on the injected clock."""

    instrument: ScpiInstrument
    dialect: TransientDialect
    max_voltage_v: float
    on_failure: Callable[[], None] | None = None  # what drives the source safe (PowerSource.safe)
    _loaded: float | None = field(default=None, init=False)  # the loaded program's duration, s
    _started_at: float | None = field(default=None, init=False)  # bench time it was started, when known

    def load(self, program: WaveformProgram, *, voltage_v: float, frequency_hz: float) -> float:
        """Validate and send the program; its duration (s), the wait for the start phase included."""
        messages = self.dialect.messages(program, voltage_v=voltage_v, frequency_hz=frequency_hz,
                                         max_voltage_v=self.max_voltage_v)
        self._guarded(lambda: self._send_all(messages))
        phase_wait = 1.0 / frequency_hz if program.start_phase_deg is not None or self.dialect.phase_list else 0.0
        self._loaded = program.duration_s(frequency_hz) + phase_wait
        return self._loaded

    def start(self, clock: Clock | None = None) -> None:
        """Start the loaded program now (with `clock`, `wait` sleeps through most of it instead of asking)."""
        if self._loaded is None:
            raise ValidationError(f"{self.instrument.resource}: load a waveform program before starting it")
        self._guarded(lambda: self._send_all(self.dialect.start))
        self._started_at = clock.now() if clock is not None else None

    def running(self) -> bool:
        """True while the program runs."""
        query = self.dialect.running_query
        return self.dialect.is_running(self.instrument.transport.query(query), self.instrument.resource)

    def wait(self, clock: Clock, *, timeout_s: float | None = None) -> None:
        """Wait (bench time) until the program has run, then return the output to fixed mode.
        InstrumentTimeout (the source driven safe) when it runs longer than it should."""
        expected = self._loaded if self._loaded is not None else 0.0
        limit = timeout_s if timeout_s is not None else expected * 1.1 + 2.0
        poll = min(1.0, max(0.05, expected / 20.0))
        begin = self._started_at if self._started_at is not None else clock.now()

        def wait() -> None:
            # Nothing to ask while most of the program is still to come (a 72 h list is not polled every second).
            clock.sleep(begin + expected - poll - clock.now())
            remaining = begin + limit - clock.now()
            if not clock.wait_until(lambda: not self.running(), max(remaining, 0.0), poll):
                raise InstrumentTimeout(f"{self.instrument.resource}: waveform program still running after "
                                        f"{limit:g} s (it lasts {expected:g} s); source driven safe")
            for message in self.dialect.finish:
                self.instrument.send(message)

        self._guarded(wait)
        self._loaded = self._started_at = None

    def run(self, program: WaveformProgram, *, voltage_v: float, frequency_hz: float, clock: Clock) -> float:
        """Load, start, wait for the end: the bench time it took, s."""
        begin = clock.now()
        self.load(program, voltage_v=voltage_v, frequency_hz=frequency_hz)
        self.start(clock)
        self.wait(clock)
        return clock.now() - begin

    def abort(self) -> None:
        """Stop a running program; the output returns to its set-point."""
        for message in self.dialect.abort:
            self.instrument.send(message)
        self._loaded = self._started_at = None

    def _send_all(self, messages: Sequence[str]) -> None:
        for message in messages:
            self.instrument.send(message)

    def _guarded(self, action: Callable[[], object]) -> None:
        """Run `action`; on any failure stop the list and drive the source safe, then re-raise."""
        try:
            action()
        except BaseException:
            with contextlib.suppress(RigError):
                for message in self.dialect.abort:
                    self.instrument.transport.write(message)
            if self.on_failure is not None:
                with contextlib.suppress(RigError):
                    self.on_failure()
            self._loaded = self._started_at = None
            raise
