"""Reference standard meter with per-position error calculators, over SCPI (drivers layer).

The calculator gates on the meter's pulse output: over N meter pulses it compares the meter's energy
(N / C) with the reference's, and reports the error in percent. Each family's commands are a
`ReferenceDialect` row behind one small interface; `SCPI_REFERENCE` is the one the twin serves.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum
from typing import Final

from drivers.errors import InstrumentError, LinkError
from drivers.scpi import ScpiInstrument, Setting
from drivers.transport import MessageTransport


class ReferenceRestarted(LinkError):
    """The reference standard restarted (or dropped a gate) during a measurement: its settings and the
    reading are lost. A bench fault: measure again after configuring it again."""


class CalculatorState(Enum):
    """What an error calculator is doing."""

    IDLE = "IDLE"  # nothing armed
    WAIT = "WAIT"  # armed, waiting for the first meter pulse edge
    RUN = "RUN"  # gating: counting meter pulses
    DONE = "DONE"  # result available
    COUNT = "COUNT"  # counting meter pulses (starting / creep tests)


@dataclass(frozen=True)
class Calibration:
    """The reference standard's calibration certificate."""

    certificate: str
    due: dt.date

    def expired(self, today: dt.date) -> bool:
        """True when the calibration is past due on `today`."""
        return today > self.due


@dataclass(frozen=True)
class ReferenceReading:
    """What the reference standard measures."""

    voltage_v: float
    current_a: float
    power_w: float
    power_factor: float
    frequency_hz: float


@dataclass(frozen=True)
class HarmonicAnalysis:
    """A reference standard's harmonic analyser (data): fundamental power and content per order. `{order}`
    in a query is the order (0 is DC); content replies are in % of the fundamental."""

    measure_fundamental_power: str
    measure_voltage_content: str
    measure_current_content: str
    max_order: int = 50
    source: str = ""
    check: tuple[str, ...] = ()


@dataclass(frozen=True)
class HarmonicContent:
    """What the reference measures of one order: voltage and current content, % of the fundamental."""

    order: int
    voltage_pct: float
    current_pct: float


# The twin's reference (rig.twin.reference) analyses whole orders up to the 50th.
SCPI_HARMONIC_ANALYSIS: Final = HarmonicAnalysis(
    measure_fundamental_power="MEAS:POW:FUND?",
    measure_voltage_content="MEAS:VOLT:HARM? {order}",
    measure_current_content="MEAS:CURR:HARM? {order}",
    source="the twin's reference standard (rig.twin.reference)",
)


@dataclass(frozen=True)
class ReferenceDialect:
    """The commands of one family of reference standards and error calculators (data, so a vendor is a
    new row). `{channel}` in a calculator command is the calculator's channel (1-based)."""

    name: str
    calibration_certificate: str
    calibration_due: str
    measure_voltage: str
    measure_current: str
    measure_power: str
    measure_power_factor: str
    measure_frequency: str
    energy_start: str
    energy_stop: str
    energy_query: str  # accumulated active energy, in units of `energy_unit_wh` Wh
    constant: Setting  # the meter constant a calculator gates with, imp/kWh
    pulses: Setting  # meter pulses a reading gates over
    calc_start: str
    calc_abort: str
    calc_state: str
    calc_error: str
    count_start: str
    count_query: str
    states: tuple[tuple[str, CalculatorState], ...]  # reply to `calc_state` -> state
    energy_unit_wh: float = 1.0
    calc_setup: tuple[str, ...] = ()  # sent before the constant: which inputs the calculator compares
    open_setup: tuple[str, ...] = ()  # sent once after connecting (units, reference source)
    source: str = ""  # where the command set comes from (manual, edition, pages)
    check: tuple[str, ...] = ()  # fields not confirmed by the manual's text or on an instrument: check first
    harmonics: HarmonicAnalysis | None = None  # its harmonic analyser, if it has one

    def state_of(self, reply: str) -> CalculatorState | None:
        """The calculator state a reply to `calc_state` names (None: not one of them)."""
        return dict(self.states).get(reply.strip().strip('"').upper())


# The twin's reference standard (served by rig.twin.reference): one error calculator per channel.
SCPI_REFERENCE: Final = ReferenceDialect(
    name="scpi-reference",
    calibration_certificate="CAL:CERT?",
    calibration_due="CAL:DUE?",
    measure_voltage="MEAS:VOLT?",
    measure_current="MEAS:CURR?",
    measure_power="MEAS:POW?",
    measure_power_factor="MEAS:PFAC?",
    measure_frequency="MEAS:FREQ?",
    energy_start="ENER:STAR",
    energy_stop="ENER:STOP",
    energy_query="ENER?",
    constant=Setting("meter constant", "CALC{channel}:CONS", "imp/kWh", 0.001, 1e9, decimals=3),
    pulses=Setting("pulses per reading", "CALC{channel}:PULS", "pulses", 1, 1e7, decimals=0),
    calc_start="CALC{channel}:STAR",
    calc_abort="CALC{channel}:ABOR",
    calc_state="CALC{channel}:STAT?",
    calc_error="CALC{channel}:ERR?",
    count_start="CALC{channel}:COUN:STAR",
    count_query="CALC{channel}:COUN?",
    states=tuple((state.value, state) for state in CalculatorState),
    harmonics=SCPI_HARMONIC_ANALYSIS,
    source="the twin's reference standard (rig.twin.reference)",
)


class ErrorCalculator:
    """One position's error calculator (channel numbers start at 1)."""

    def __init__(self, reference: ReferenceStandard, channel: int) -> None:
        self.reference = reference
        self.channel = channel

    def _message(self, template: str) -> str:
        return template.format(channel=self.channel)

    def configure(self, *, constant_imp_per_kwh: float, pulses: int) -> None:
        """Set the meter constant (imp/kWh) and the number of meter pulses a reading gates over."""
        d = self.reference.dialect
        messages = [d.constant.set_message(constant_imp_per_kwh), d.pulses.set_message(pulses)]
        for message in (*d.calc_setup, *messages):
            self.reference.send(self._message(message))

    def start(self) -> None:
        """Arm an error reading; it starts at the next meter pulse edge."""
        self.reference.send(self._message(self.reference.dialect.calc_start))

    def abort(self) -> None:
        """Stop whatever the calculator is doing."""
        self.reference.send(self._message(self.reference.dialect.calc_abort))

    def state(self) -> CalculatorState:
        """The calculator's state."""
        query = self._message(self.reference.dialect.calc_state)
        reply = self.reference.transport.query(query)
        state = self.reference.dialect.state_of(reply)
        if state is None:
            raise InstrumentError(f"{self.reference.resource}: {query} replied {reply.strip()!r}")
        return state

    def error_pct(self) -> float:
        """The finished reading's error, % (InstrumentError when no reading is ready)."""
        query = self._message(self.reference.dialect.calc_error)
        value = self.reference.query_float(query)
        self.reference.check(query)
        return value

    def start_count(self) -> None:
        """Start counting meter pulses from zero."""
        self.reference.send(self._message(self.reference.dialect.count_start))

    def pulse_count(self) -> int:
        """Meter pulses counted since `start_count()`."""
        return int(self.reference.query_float(self._message(self.reference.dialect.count_query)))


class ReferenceStandard(ScpiInstrument):
    """The reference standard: exact measurement of what the source delivers, and the error calculators."""

    def __init__(self, transport: MessageTransport, dialect: ReferenceDialect = SCPI_REFERENCE) -> None:
        super().__init__(transport)
        self.dialect = dialect

    def open(self) -> None:
        """Connect, clear the status, and set what the family needs once (units, reference source)."""
        super().open()
        for message in self.dialect.open_setup:
            self.send(message)

    def calibration(self) -> Calibration:
        """Certificate number and due date as the instrument reports them."""
        certificate = self.transport.query(self.dialect.calibration_certificate).strip().strip('"')
        due_text = self.transport.query(self.dialect.calibration_due).strip().strip('"')
        try:
            due = dt.date.fromisoformat(due_text)
        except ValueError:
            raise InstrumentError(f"{self.resource}: {self.dialect.calibration_due} replied {due_text!r}, not a "
                                  "YYYY-MM-DD date") from None
        return Calibration(certificate=certificate, due=due)

    def measure(self) -> ReferenceReading:
        """Voltage, current, active power, power factor and frequency."""
        d = self.dialect
        return ReferenceReading(
            voltage_v=self.query_float(d.measure_voltage),
            current_a=self.query_float(d.measure_current),
            power_w=self.query_float(d.measure_power),
            power_factor=self.query_float(d.measure_power_factor),
            frequency_hz=self.query_float(d.measure_frequency),
        )

    def _analysis(self) -> HarmonicAnalysis:
        if self.dialect.harmonics is None:
            raise InstrumentError(f"{self.resource}: the {self.dialect.name} reference has no harmonic analyser; "
                                  "fundamental power and harmonic content need one")
        return self.dialect.harmonics

    def fundamental_power_w(self) -> float:
        """Active power of the fundamental alone, W (`measure().power_w` is the total)."""
        return self.query_float(self._analysis().measure_fundamental_power)

    def harmonic_content(self, order: int) -> HarmonicContent:
        """Voltage and current content at `order` (0: DC), % of the fundamental."""
        analysis = self._analysis()
        if not 0 <= order <= analysis.max_order:
            raise ValueError(f"harmonic order {order}: the analyser measures orders 0..{analysis.max_order}")
        return HarmonicContent(order, self.query_float(analysis.measure_voltage_content.format(order=order)),
                               self.query_float(analysis.measure_current_content.format(order=order)))

    def start_energy(self) -> None:
        """Start accumulating active energy from zero."""
        self.send(self.dialect.energy_start)

    def stop_energy(self) -> None:
        """Stop accumulating."""
        self.send(self.dialect.energy_stop)

    def energy_wh(self) -> float:
        """Accumulated active energy, Wh."""
        return self.query_float(self.dialect.energy_query) * self.dialect.energy_unit_wh

    def calculator(self, channel: int) -> ErrorCalculator:
        """The error calculator on `channel` (1-based)."""
        if channel < 1:
            raise ValueError(f"error calculator channel {channel} must be 1 or more")
        return ErrorCalculator(self, channel)
