"""Reference standard meter with per-position error calculators, over SCPI (drivers layer).

The calculator gates on the meter's pulse output: over N meter pulses it compares the meter's energy
(N / C) with the reference's, and reports the error in percent. Vendors speak their own protocols;
this is the SCPI-style implementation the twin serves, behind a small interface.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum

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


CONSTANT = Setting("meter constant", "CONS", "imp/kWh", 0.001, 1e9, decimals=3)
PULSES = Setting("pulses per reading", "PULS", "pulses", 1, 1e7, decimals=0)


class ErrorCalculator:
    """One position's error calculator (channel numbers start at 1)."""

    def __init__(self, reference: ReferenceStandard, channel: int) -> None:
        self.reference = reference
        self.channel = channel
        self._prefix = f"CALC{channel}"

    def configure(self, *, constant_imp_per_kwh: float, pulses: int) -> None:
        """Set the meter constant (imp/kWh) and the number of meter pulses a reading gates over."""
        self.reference.send(f"{self._prefix}:{CONSTANT.set_message(constant_imp_per_kwh)}")
        self.reference.send(f"{self._prefix}:{PULSES.set_message(pulses)}")

    def start(self) -> None:
        """Arm an error reading; it starts at the next meter pulse edge."""
        self.reference.send(f"{self._prefix}:STAR")

    def abort(self) -> None:
        """Stop whatever the calculator is doing."""
        self.reference.send(f"{self._prefix}:ABOR")

    def state(self) -> CalculatorState:
        """The calculator's state."""
        reply = self.reference.transport.query(f"{self._prefix}:STAT?").strip().upper()
        try:
            return CalculatorState(reply)
        except ValueError:
            raise InstrumentError(f"{self.reference.resource}: {self._prefix}:STAT? replied {reply!r}") from None

    def error_pct(self) -> float:
        """The finished reading's error, % (InstrumentError when no reading is ready)."""
        value = self.reference.query_float(f"{self._prefix}:ERR?")
        self.reference.check(f"{self._prefix}:ERR?")
        return value

    def start_count(self) -> None:
        """Start counting meter pulses from zero."""
        self.reference.send(f"{self._prefix}:COUN:STAR")

    def pulse_count(self) -> int:
        """Meter pulses counted since `start_count()`."""
        return int(self.reference.query_float(f"{self._prefix}:COUN?"))


class ReferenceStandard(ScpiInstrument):
    """The reference standard: exact measurement of what the source delivers, and the error calculators."""

    def __init__(self, transport: MessageTransport) -> None:
        super().__init__(transport)

    def calibration(self) -> Calibration:
        """Certificate number and due date as the instrument reports them."""
        certificate = self.transport.query("CAL:CERT?").strip().strip('"')
        due_text = self.transport.query("CAL:DUE?").strip().strip('"')
        try:
            due = dt.date.fromisoformat(due_text)
        except ValueError:
            raise InstrumentError(f"{self.resource}: CAL:DUE? replied {due_text!r}, not a YYYY-MM-DD date") from None
        return Calibration(certificate=certificate, due=due)

    def measure(self) -> ReferenceReading:
        """Voltage, current, active power, power factor and frequency."""
        return ReferenceReading(
            voltage_v=self.query_float("MEAS:VOLT?"),
            current_a=self.query_float("MEAS:CURR?"),
            power_w=self.query_float("MEAS:POW?"),
            power_factor=self.query_float("MEAS:PFAC?"),
            frequency_hz=self.query_float("MEAS:FREQ?"),
        )

    def start_energy(self) -> None:
        """Start accumulating active energy from zero."""
        self.send("ENER:STAR")

    def stop_energy(self) -> None:
        """Stop accumulating."""
        self.send("ENER:STOP")

    def energy_wh(self) -> float:
        """Accumulated active energy, Wh."""
        return self.query_float("ENER?")

    def calculator(self, channel: int) -> ErrorCalculator:
        """The error calculator on `channel` (1-based)."""
        if channel < 1:
            raise ValueError(f"error calculator channel {channel} must be 1 or more")
        return ErrorCalculator(self, channel)
