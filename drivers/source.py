"""Programmable phantom-load AC power source over SCPI (drivers layer).

Every setting is declared once in a dialect table with its unit and range; the bench's safety limits
are checked before anything is sent, and `close()` always leaves the output off.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.clock import Clock
from drivers.errors import InstrumentError, RigError, SafetyLimitError
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
    source="the twin's phantom-load source (rig.twin.source)",
)

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
              frequency_hz: float | None = None) -> None:
        """Set a whole load point; every value is validated and limit-checked before the first is sent (a
        voltage-only source takes load points without current)."""
        messages = [self.dialect.voltage.set_message(voltage_v)]
        if self.dialect.current is not None or current_a != 0:
            messages.append(self._output(self.dialect.current, "current output").set_message(current_a))
        if self.dialect.phase is not None or (current_a != 0 and phase_deg != 0):
            messages.append(self._output(self.dialect.phase, "phase angle").set_message(phase_deg))
        if frequency_hz is not None:
            messages.append(self.dialect.frequency.set_message(frequency_hz))
        self._guard(voltage_v=voltage_v, current_a=current_a)
        for message in messages:
            self.send(message)

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
