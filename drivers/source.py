"""Programmable phantom-load AC power source over SCPI (drivers layer).

Every setting is declared once in a dialect table with its unit and range; the bench's safety limits
are checked before anything is sent, and `close()` always leaves the output off.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from drivers.clock import Clock
from drivers.errors import InstrumentError, RigError, SafetyLimitError, ValidationError
from drivers.scpi import ScpiInstrument, Setting
from drivers.transients import PHANTOM_LIST, TransientDialect, TransientSubsystem, WaveformProgram
from drivers.transport import MessageTransport


@dataclass(frozen=True)
class CommsWatchdog:
    """The instrument's own I/O watchdog: it switches the output off when no command reached it for the
    delay. What is left when the PC itself dies (power loss): the rig's dead-man's switch (rig.supervisor)
    arms it, feeds it while the run lives and disarms it when the run ended safe. Data, like the dialect."""

    delay: Setting  # sets the delay, s
    enable: str
    disable: str
    feed: str  # a harmless query that counts as I/O activity
    source: str = ""  # where the commands come from (manual, pages)
    check: bool = True  # not confirmed on this family's manual or an instrument: check before relying on it


@dataclass(frozen=True)
class Harmonic:
    """One spectral component a source adds to its fundamental, in voltage and current.

    `order`: frequency as a multiple of the fundamental (0 is DC; a fraction is a sub-harmonic). Amplitudes
    are RMS in % of the fundamental's RMS; phase angles are degrees of the component behind the fundamental
    voltage's zero crossing (positive lagging, as the fundamental current's phase angle). The active power
    of the component is U1 * I1 * voltage_pct * current_pct / 1e4 * cos(current_phase - voltage_phase).
    """

    order: float
    voltage_pct: float = 0.0
    voltage_phase_deg: float = 0.0
    current_pct: float = 0.0
    current_phase_deg: float = 0.0

    @property
    def power_fraction(self) -> float:
        """Active power of the component as a fraction of U1 * I1."""
        angle = math.radians(self.current_phase_deg - self.voltage_phase_deg)
        return self.voltage_pct * self.current_pct / 1e4 * math.cos(angle)


def rms_factor(percents: Sequence[float]) -> float:
    """RMS of a waveform over the RMS of its fundamental, from its components' amplitudes in %."""
    return math.sqrt(1.0 + sum((p / 100.0) ** 2 for p in percents))


def distorted_power_w(voltage_v: float, current_a: float, phase_deg: float,
                      harmonics: Sequence[Harmonic] = ()) -> float:
    """Total active power (fundamental and every component), W, of fundamental RMS values and content."""
    return voltage_v * current_a * (math.cos(math.radians(phase_deg)) + sum(h.power_fraction for h in harmonics))


@dataclass(frozen=True)
class HarmonicDialect:
    """How one family of sources programs harmonic content (data). In the templates `{order}` is the
    component's order, `{amplitude}` its amplitude (in % of the fundamental when `percent`, else in V or A)
    and `{phase}` its phase angle, degrees."""

    voltage: str
    current: str
    clear: tuple[str, ...]  # removes every component but the fundamental
    enable: tuple[str, ...] = ()  # applies the programmed content, where the family needs it
    percent: bool = True  # amplitudes in % of the fundamental, else absolute (V, A)
    fundamental: bool = False  # an absolute family takes the fundamental again as order 1 after the content
    max_order: int = 50
    dc: bool = True  # takes order 0 (DC)
    fractional: bool = False  # takes orders that are not whole multiples (sub-harmonics, interharmonics)
    max_pct: float = 100.0
    source: str = ""
    check: tuple[str, ...] = ()


# The twin's own harmonic commands (rig.twin.source): per order, amplitude in % of the fundamental and
# phase angle; fractional orders are sub-harmonics and interharmonics.
PHANTOM_HARMONICS = HarmonicDialect(
    voltage="SOUR:HARM:VOLT {order},{amplitude},{phase}",
    current="SOUR:HARM:CURR {order},{amplitude},{phase}",
    clear=("SOUR:HARM:CLE",),
    percent=True,
    max_order=50,
    dc=True,
    fractional=True,
    source="the twin's phantom-load source (rig.twin.source)",
)


@dataclass(frozen=True)
class SourceDialect:
    """The SCPI commands one family of sources uses (data, so a vendor is a new row)."""

    name: str
    voltage: Setting
    current: Setting | None  # None: a voltage-only source (no separate current output)
    phase: Setting | None  # angle of the current output behind the voltage; None with no current output
    frequency: Setting
    output_on: str
    output_off: str
    output_query: str
    measure_voltage: str
    measure_current: str
    measure_power: str
    measure_power_factor: str
    measure_frequency: str
    transient: TransientDialect | None = None  # its LIST subsystem (dips, interruptions), if it has one
    source: str = ""  # where the command set comes from (manual, edition, pages)
    check: tuple[str, ...] = ()  # fields not confirmed by the manual's text or on an instrument: check first
    watchdog: CommsWatchdog | None = None  # its communication watchdog, if it has one
    harmonics: HarmonicDialect | None = None  # its harmonic generator, if it has one


# Keysight's I/O watchdog (N6700/N6900/RP7900 guides: OUTPut:PROTection:WDOG[:STATe], :WDOG:DELay 1..3600 s
# in whole seconds; any SCPI I/O on a remote interface restarts it, the front panel does not). The AC6800B
# guide lists "Configuring Watchdog Protection"; that it takes the same commands is not confirmed: check.
KEYSIGHT_WATCHDOG = CommsWatchdog(
    delay=Setting("watchdog delay", "OUTP:PROT:WDOG:DEL", "s", 1.0, 3600.0, decimals=0),
    enable="OUTP:PROT:WDOG ON",
    disable="OUTP:PROT:WDOG OFF",
    feed="*OPC?",
    source="Keysight N6900/N7900 and RP7900 operating and service guides, OUTPut:PROTection:WDOG",
    check=True,
)

# The generic phantom-load dialect the twin serves (voltage and current outputs with a phase angle
# between them, as on meter test benches). Ranges are the instrument's, not the bench's safety limits.
PHANTOM = SourceDialect(
    name="scpi-phantom",
    voltage=Setting("voltage", "SOUR:VOLT", "V", 0.0, 300.0, decimals=3),
    current=Setting("current", "SOUR:CURR", "A", 0.0, 120.0, decimals=5),
    phase=Setting("phase angle", "SOUR:PHAS", "deg", -180.0, 180.0, decimals=3),
    frequency=Setting("frequency", "SOUR:FREQ", "Hz", 45.0, 65.0, decimals=3),
    output_on="OUTP ON",
    output_off="OUTP OFF",
    output_query="OUTP?",
    measure_voltage="MEAS:VOLT?",
    measure_current="MEAS:CURR?",
    measure_power="MEAS:POW?",
    measure_power_factor="MEAS:PFAC?",
    measure_frequency="MEAS:FREQ?",
    transient=PHANTOM_LIST,
    harmonics=PHANTOM_HARMONICS,
    source="the twin's phantom-load source (rig.twin.source)",
)

def _check_harmonic(h: Harmonic, dialect: HarmonicDialect, seen: set[float]) -> None:
    """ValidationError naming what the source cannot generate (nothing is sent)."""
    what = f"harmonic order {h.order:g}"
    if not math.isfinite(h.order) or h.order < 0 or h.order == 1 or h.order > dialect.max_order:
        raise ValidationError(f"{what}: orders are 0 (DC) or above 0 up to {dialect.max_order}, not 1 (the "
                              "fundamental is the load point itself); nothing was sent")
    if h.order == 0 and not dialect.dc:
        raise ValidationError(f"{what}: this source has no DC component; nothing was sent")
    if h.order != int(h.order) and not dialect.fractional:
        raise ValidationError(f"{what}: this source generates whole harmonic orders only (no sub-harmonics or "
                              "interharmonics); nothing was sent")
    if h.order == 0 and (h.voltage_phase_deg != 0 or h.current_phase_deg != 0):
        raise ValidationError(f"{what}: DC has no phase angle (0); nothing was sent")
    if h.order in seen:
        raise ValidationError(f"{what} is given twice; nothing was sent")
    seen.add(h.order)
    for pct in (h.voltage_pct, h.current_pct):
        if not math.isfinite(pct) or not 0 <= pct <= dialect.max_pct:
            raise ValidationError(f"{what}: amplitude {pct:g} % is outside 0..{dialect.max_pct:g} % of the "
                                  "fundamental; nothing was sent")


@dataclass(frozen=True)
class SourceReading:
    """What the source measures at its terminals."""

    voltage_v: float
    current_a: float
    power_w: float
    power_factor: float
    frequency_hz: float


class PowerSource(ScpiInstrument):
    """Phantom-load AC source: voltage, current, phase angle (positive = current lagging), frequency."""

    def __init__(self, transport: MessageTransport, *, max_voltage_v: float, max_current_a: float,
                 dialect: SourceDialect = PHANTOM) -> None:
        super().__init__(transport)
        self.dialect = dialect
        self.max_voltage_v = max_voltage_v
        self.max_current_a = max_current_a
        self._transients: TransientSubsystem | None = None
        self._distorted = False  # harmonic content is programmed (the next sine point clears it)

    def _guard(self, voltage_v: float | None = None, current_a: float | None = None) -> None:
        if voltage_v is not None and voltage_v > self.max_voltage_v:
            raise SafetyLimitError(
                f"voltage {voltage_v:g} V is above the bench safety limit {self.max_voltage_v:g} V; nothing was sent"
            )
        if current_a is not None and current_a > self.max_current_a:
            raise SafetyLimitError(
                f"current {current_a:g} A is above the bench safety limit {self.max_current_a:g} A; nothing was sent"
            )

    def set_voltage(self, voltage_v: float) -> None:
        """Set the voltage output, V."""
        message = self.dialect.voltage.set_message(voltage_v)
        self._guard(voltage_v=voltage_v)
        self.send(message)

    def _output(self, setting: Setting | None, what: str) -> Setting:
        if setting is None:
            raise InstrumentError(f"{self.resource}: the {self.dialect.name} source has no {what} (a voltage-only "
                                  "source); a phantom load needs a meter-test source with a current output")
        return setting

    def set_phase(self, phase_deg: float) -> None:
        """Set the angle of current behind voltage, degrees (positive lagging / inductive)."""
        self.send(self._output(self.dialect.phase, "phase angle").set_message(phase_deg))

    def set_frequency(self, frequency_hz: float) -> None:
        """Set the output frequency, Hz."""
        self.send(self.dialect.frequency.set_message(frequency_hz))

    def apply(self, *, voltage_v: float, current_a: float, phase_deg: float = 0.0,
              frequency_hz: float | None = None, harmonics: Sequence[Harmonic] = ()) -> None:
        """Set a whole load point; every value is validated and limit-checked before the first is sent (a
        voltage-only source takes load points without current). `voltage_v` and `current_a` are the
        fundamental's RMS values; `harmonics` the content added to them (a point without any clears what an
        earlier point programmed); the safety limits apply to the RMS of the whole waveform."""
        harmonic_messages = self._harmonic_messages(voltage_v, current_a, phase_deg, harmonics)
        messages = [self.dialect.voltage.set_message(voltage_v)]
        if self.dialect.current is not None or current_a != 0:
            messages.append(self._output(self.dialect.current, "current output").set_message(current_a))
        if self.dialect.phase is not None or (current_a != 0 and phase_deg != 0):
            messages.append(self._output(self.dialect.phase, "phase angle").set_message(phase_deg))
        if frequency_hz is not None:
            messages.append(self.dialect.frequency.set_message(frequency_hz))
        self._guard(voltage_v=voltage_v * rms_factor([h.voltage_pct for h in harmonics]),
                    current_a=current_a * rms_factor([h.current_pct for h in harmonics]))
        if harmonics:
            self._distorted = True  # set before sending: content half-programmed is cleared by the next point
        for message in messages + harmonic_messages:
            self.send(message)
        if harmonic_messages and not harmonics:
            self._distorted = False

    def _harmonic_messages(self, voltage_v: float, current_a: float, phase_deg: float,
                           harmonics: Sequence[Harmonic]) -> list[str]:
        """What programs `harmonics` (validated; nothing when there is none to set or clear)."""
        if not harmonics and not self._distorted:
            return []
        dialect = self.dialect.harmonics
        if dialect is None:
            raise InstrumentError(f"{self.resource}: the {self.dialect.name} source has no harmonic generator; "
                                  "harmonic tests need a source that programs harmonic content")
        messages = list(dialect.clear)
        seen: set[float] = set()
        for h in harmonics:
            _check_harmonic(h, dialect, seen)
            for template, pct, phase, fundamental in (
                    (dialect.voltage, h.voltage_pct, h.voltage_phase_deg, voltage_v),
                    (dialect.current, h.current_pct, h.current_phase_deg, current_a)):
                amplitude = pct if dialect.percent else fundamental * pct / 100.0
                messages.append(template.format(order=f"{h.order:g}", amplitude=f"{amplitude:.5g}",
                                                phase=f"{phase:.3f}"))
        if harmonics and dialect.fundamental:
            messages.append(dialect.voltage.format(order="1", amplitude=f"{voltage_v:.6g}", phase="0.000"))
            messages.append(dialect.current.format(order="1", amplitude=f"{current_a:.6g}", phase=f"{phase_deg:.3f}"))
        if harmonics:
            messages.extend(dialect.enable)
        return messages

    @property
    def transients(self) -> TransientSubsystem:
        """The source's LIST subsystem (dips, interruptions, outages as waveform programs)."""
        if self.dialect.transient is None:
            raise InstrumentError(f"{self.resource}: the {self.dialect.name} dialect has no transient (LIST) "
                                  "subsystem")
        if self._transients is None or self._transients.dialect is not self.dialect.transient:
            self._transients = TransientSubsystem(self, self.dialect.transient, self.max_voltage_v,
                                                  on_failure=self.safe)
        return self._transients

    def run_transient(self, program: WaveformProgram, *, voltage_v: float, frequency_hz: float,
                      clock: Clock) -> float:
        """Run a waveform program at nominal `voltage_v`, `frequency_hz` and wait (bench time) for its end;
        the bench time it took, s. Validated and limit-checked before anything is sent; the source is driven
        safe when anything fails on the way."""
        return self.transients.run(program, voltage_v=voltage_v, frequency_hz=frequency_hz, clock=clock)

    @property
    def voltage_v(self) -> float:
        """Voltage set-point, V."""
        return self.query_float(self.dialect.voltage.query_message())

    @property
    def current_a(self) -> float:
        """Current set-point, A."""
        return self.query_float(self._output(self.dialect.current, "current output").query_message())

    @property
    def phase_deg(self) -> float:
        """Phase angle set-point, degrees."""
        return self.query_float(self._output(self.dialect.phase, "phase angle").query_message())

    @property
    def frequency_hz(self) -> float:
        """Frequency set-point, Hz."""
        return self.query_float(self.dialect.frequency.query_message())

    def output_on(self) -> None:
        """Energise the outputs."""
        self.send(self.dialect.output_on)

    def output_off(self) -> None:
        """De-energise the outputs."""
        self.send(self.dialect.output_off)

    @property
    def output_enabled(self) -> bool:
        """True when the outputs are energised."""
        reply = self.transport.query(self.dialect.output_query).strip().upper()
        if reply not in ("0", "1", "ON", "OFF"):
            raise InstrumentError(f"{self.resource}: reply to {self.dialect.output_query} is {reply!r}")
        return reply in ("1", "ON")

    def measure(self) -> SourceReading:
        """Read the source's own terminal measurements."""
        d = self.dialect
        return SourceReading(
            voltage_v=self.query_float(d.measure_voltage),
            current_a=self.query_float(d.measure_current),
            power_w=self.query_float(d.measure_power),
            power_factor=self.query_float(d.measure_power_factor),
            frequency_hz=self.query_float(d.measure_frequency),
        )

    def safe(self) -> None:
        """Drive the source safe: output off, current to zero. Reconnects once if the link is in a bad state."""
        try:
            self._make_safe()
        except RigError:
            # A query interrupted mid-reply leaves a stale line in the stream: start a clean session.
            self.transport.close()
            self.transport.open()
            self._make_safe()

    def _make_safe(self) -> None:
        self.transport.write(self.dialect.output_off)
        if self.dialect.current is not None:
            self.transport.write(self.dialect.current.set_message(0.0))
        if self.output_enabled:
            raise InstrumentError(f"{self.resource}: output still on after {self.dialect.output_off!r}")

    def arm_watchdog(self, delay_s: float) -> bool:
        """Enable the instrument's communication watchdog (`delay_s` without I/O switches the output off);
        False when the dialect has none. Validated before anything is sent."""
        watchdog = self.dialect.watchdog
        if watchdog is None:
            return False
        message = watchdog.delay.set_message(delay_s)
        self.send(message)
        self.send(watchdog.enable)
        return True

    def feed_watchdog(self) -> None:
        """I/O activity for the watchdog (a query that changes nothing)."""
        if self.dialect.watchdog is not None:
            self.transport.query(self.dialect.watchdog.feed)

    def disarm_watchdog(self) -> None:
        """Disable the communication watchdog (so an idle instrument does not latch its protection)."""
        if self.dialect.watchdog is not None:
            self.send(self.dialect.watchdog.disable)

    def close(self) -> None:
        """Leave the output off, then disconnect."""
        try:
            self.safe()
        finally:
            super().close()
