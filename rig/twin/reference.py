"""The twin's reference standard and its per-position error calculators.

It measures the World exactly, plus its own stated uncertainty, and gates on each meter's pulse
output exactly as a bench's pulse-comparison calculator does (first edge starts, N-th edge stops).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from rig.config import ReferenceTwin
from rig.twin.scpi import ScpiDevice
from rig.twin.scpi_syntax import (
    DATA_OUT_OF_RANGE,
    ESR_POWER_ON,
    ILLEGAL_PARAMETER,
    SETTINGS_CONFLICT,
    Request,
    ScpiFault,
)
from rig.twin.source import scientific
from rig.twin.world import Terminals, World


@dataclass
class CalculatorModel:
    """One error calculator: pulse gating against the reference's energy."""

    constant_imp_per_kwh: float = 1000.0
    pulses: int = 10
    state: str = "IDLE"
    error_pct: float = math.nan
    count: int = 0
    _seen: int = 0
    _start_j: float = 0.0

    def arm(self) -> None:
        """Wait for the next edge, then gate over `pulses` edges."""
        self.state, self.error_pct, self._seen = "WAIT", math.nan, 0

    def on_edge(self, reference_j: float) -> None:
        """A meter pulse edge, with the reference's accumulated energy at that instant (J)."""
        if self.state == "COUNT":
            self.count += 1
        elif self.state == "WAIT":
            self.state, self._start_j = "RUN", reference_j
        elif self.state == "RUN":
            self._seen += 1
            if self._seen >= self.pulses:
                meter_j = self._seen / self.constant_imp_per_kwh * 3.6e6
                reference = reference_j - self._start_j
                self.error_pct = (meter_j / reference - 1.0) * 100.0 if reference > 0 else math.inf
                self.state = "DONE"


# The Fluke 6105A Energy option's parameters (users manual 5-95, 5-97, 5-91) and the words its state query
# answers with (the twin's choice: the manual pages read do not show them).
FLUKE_MUT_CHANNELS = 3
# The harmonic analyser of the twin's own dialect: whole orders 0 (DC) .. 50.
MAX_ANALYSED_ORDER = 50
FLUKE_CONSTANT_UNITS = {"IPWH": 1000.0, "IPKWH": 1.0, "IPMWH": 0.001}  # to imp/kWh
FLUKE_MUT_SOURCES = ("CH1", "CH1TO2", "CH1TO3")
FLUKE_DURATION_SOURCES = ("CH1", "CH2", "CH3")
FLUKE_STATES = {"IDLE": "IDLE", "WAIT": "ARMED", "RUN": "RUNNING", "DONE": "COMPLETE", "COUNT": "COUNTING"}


@dataclass
class FlukeEnergy:
    """The Energy option's selections (character parameters, no short forms)."""

    unit: str = "IPKWH"
    mut_source: str = "CH1"
    reference_source: str = "MAIN"
    duration_source: str = "CH1"

    def choose(self, request: Request, attribute: str, allowed: tuple[str, ...] | dict[str, float]) -> str | None:
        """Set or read one selection; -224 for a word it does not take."""
        if request.query:
            request.no_args()
            return str(getattr(self, attribute))
        if len(request.args) != 1 or request.args[0].upper() not in allowed:
            raise ScpiFault(*ILLEGAL_PARAMETER)
        setattr(self, attribute, request.args[0].upper())
        return None


class ReferenceModel(ScpiDevice):
    """Reference standard meter with `channels` error calculators."""

    def __init__(self, world: World, config: ReferenceTwin, rng: random.Random,
                 personality: str = "scpi-reference") -> None:
        super().__init__(world, config.idn, config.latency_s)
        self.config = config
        self.rng = rng
        self.calculators = [CalculatorModel() for _ in range(config.channels)]
        self.energy_j = 0.0  # absolute active energy since the twin started
        self._accumulating = False
        self._accumulated_j = 0.0
        self._error_pct = 0.0
        self._step_end = 0.0
        self._step_power_w = 0.0
        self.command("CALibration:CERTificate", lambda r: f'"{config.calibration_certificate}"')
        self.command("CALibration:DUE", lambda r: config.calibration_due.isoformat())
        self.speak(REFERENCE_PERSONALITIES, personality, "reference")
        world.on_second.append(self._redraw)

    def _scpi_commands(self) -> None:
        """The twin's own reference dialect (drivers.reference.SCPI_REFERENCE): a calculator per channel."""
        self.command("MEASure[:SCALar]:VOLTage", lambda r: self._measure(lambda t: t.voltage_rms_v))
        self.command("MEASure[:SCALar]:CURRent", lambda r: self._measure(lambda t: t.current_rms_a))
        self.command("MEASure[:SCALar]:POWer:FUNDamental", lambda r: self._measure(lambda t: t.fundamental_power_w))
        self.command("MEASure[:SCALar]:VOLTage:HARMonic", lambda r: self._content(r, "voltage"))
        self.command("MEASure[:SCALar]:CURRent:HARMonic", lambda r: self._content(r, "current"))
        self.command("MEASure[:SCALar]:POWer", lambda r: self._measure(lambda t: t.active_power_w))
        self.command("MEASure[:SCALar]:PFACtor", lambda r: f"{self.world.terminals().power_factor:.6f}")
        self.command("MEASure[:SCALar]:FREQuency", lambda r: f"{self.world.terminals().frequency_hz:.5f}")
        self.command("ENERgy:STARt", self._energy_start)
        self.command("ENERgy:STOP", self._energy_stop)
        self.command("ENERgy", lambda r: f"{self._accumulated_j / 3600.0:.6f}")
        self.command("CALCulate#:CONStant", self._constant)
        self.command("CALCulate#:PULSes", self._pulses)
        self.command("CALCulate#:STARt", lambda r: self._calc(r).arm())
        self.command("CALCulate#:ABORt", self._abort)
        self.command("CALCulate#:STATe", lambda r: self._calc(r).state)
        self.command("CALCulate#:ERRor", self._error)
        self.command("CALCulate#:COUNt:STARt", self._count_start)
        self.command("CALCulate#:COUNt", lambda r: str(self._calc(r).count))

    def _fluke_energy_commands(self) -> None:
        """A Fluke 6105A's Energy option, from its users manual (chapter 5): MUT inputs 1..3 compared with
        the energy of the main outputs (the reference source MAIN), one test at a time, on the channel that
        counts the test's duration (ENERgy:MUT:TEST:PSOUrce). Readings in the manual's number format."""
        fluke = FlukeEnergy()
        self.fluke = fluke
        self.calculators = self.calculators[:FLUKE_MUT_CHANNELS]
        reading = self._fluke_reading
        reading("SOURce:PHASe#:VOLTage:MHARmonics:AMPLitude", lambda t: t.voltage_v)
        reading("SOURce:PHASe#:CURRent:AMPLitude", lambda t: t.current_a)
        reading("SOURce:PHASe#:POWer:WATT", lambda t: t.active_power_w)
        self.command("SOURce:PHASe#:POWer:PFACtor", lambda r: scientific(self.world.terminals().power_factor))
        self.command("SOURce:FREQuency", lambda r: scientific(self.world.terminals().frequency_hz))
        self.command("ENERgy:MUT:CONStant:UNIT", lambda r: fluke.choose(r, "unit", FLUKE_CONSTANT_UNITS))
        self.command("ENERgy:MUT:CONStant", self._fluke_constant)
        self.command("ENERgy:MUT:SOURce", lambda r: fluke.choose(r, "mut_source", FLUKE_MUT_SOURCES))
        self.command("ENERgy:REFerence:SOURce", lambda r: fluke.choose(r, "reference_source", ("MAIN",)))
        self.command("ENERgy:MUT:TEST:PSOUrce", lambda r: fluke.choose(r, "duration_source", FLUKE_DURATION_SOURCES))
        self.command("ENERgy:MUT:TEST:DURation", self._fluke_duration)
        self.command("ENERgy:STARt", lambda r: self._fluke_selected().arm())
        self.command("ENERgy:ABORt", self._fluke_abort)
        self.command("ENERgy:STATe", lambda r: FLUKE_STATES[self._fluke_selected().state])
        self.command("ENERgy:MUT#:ERRor", self._error)
        self.command("ENERgy:MUT#:COUNt:STARt", self._count_start)
        self.command("ENERgy:MUT#:COUNt", lambda r: str(self._calc(r).count))
        self.command("ENERgy:REFerence:ACCumulate:STARt", self._energy_start)
        self.command("ENERgy:REFerence:ACCumulate:STOP", self._energy_stop)
        self.command("ENERgy:REFerence:ACCumulate", lambda r: scientific(self._accumulated_j / 3600.0))

    def _fluke_reading(self, pattern: str, quantity: Callable[[Terminals], float]) -> None:
        self.command(pattern, lambda r: scientific(self._measured(quantity)))

    def _fluke_selected(self) -> CalculatorModel:
        """The calculator of the channel that counts the test's duration (ENERgy:MUT:TEST:PSOUrce)."""
        return self.calculators[int(self.fluke.duration_source.removeprefix("CH")) - 1]

    def _fluke_constant(self, request: Request) -> str | None:
        scale = FLUKE_CONSTANT_UNITS[self.fluke.unit]
        if request.query:
            return scientific(self.calculators[0].constant_imp_per_kwh / scale)
        value = request.number(0.001, 1e9) * scale
        for calc in self.calculators:  # one meter constant for every MUT (users manual 4-69)
            calc.constant_imp_per_kwh = value
        return None

    def _fluke_duration(self, request: Request) -> str | None:
        return _pulses_of(self._fluke_selected(), request)

    def _fluke_abort(self, request: Request) -> None:
        request.no_args()
        for calc in self.calculators:
            calc.state = "IDLE"

    # ---- measurement of the World

    def _redraw(self, _t: float) -> None:
        self._error_pct = self.rng.gauss(0.0, self.config.uncertainty_pct)

    def _measured(self, quantity: Callable[[Terminals], float]) -> float:
        return quantity(self.world.terminals()) * (1.0 + self._error_pct / 100.0)

    def _content(self, request: Request, channel: str) -> str:
        """Content at one whole order (0: DC), % of the fundamental (the analyser's bins are whole orders)."""
        order = request.number(0, MAX_ANALYSED_ORDER)
        if order != int(order):
            raise ScpiFault(*DATA_OUT_OF_RANGE)
        pct = sum(h.voltage_pct if channel == "voltage" else h.current_pct
                  for h in self.world.terminals().harmonics if h.order == order)
        return f"{pct * (1.0 + self._error_pct / 100.0):.5f}"

    def _measure(self, quantity: Callable[[Terminals], float]) -> str:
        return f"{self._measured(quantity):.6f}"

    def step(self, t0: float, dt: float, terminals: Terminals) -> None:
        """Accumulate the reference's energy over the step (stepped before the meters)."""
        self._step_power_w = abs(terminals.active_power_w) * (1.0 + self._error_pct / 100.0)
        self.energy_j += self._step_power_w * dt
        if self._accumulating:
            self._accumulated_j += self._step_power_w * dt
        self._step_end = t0 + dt

    def pulse_edge(self, channel: int, at_s: float) -> None:
        """A meter pulse edge on `channel` (1-based) at bench time `at_s`, within the current step."""
        if 1 <= channel <= len(self.calculators):
            reference_j = self.energy_j - self._step_power_w * (self._step_end - at_s)
            self.calculators[channel - 1].on_edge(reference_j)

    # ---- SCPI handlers

    def _calc(self, request: Request) -> CalculatorModel:
        channel = request.suffix or 1
        if not 1 <= channel <= len(self.calculators):
            raise ScpiFault(-114, "Header suffix out of range")
        return self.calculators[channel - 1]

    def _constant(self, request: Request) -> str | None:
        calc = self._calc(request)
        if request.query:
            return f"{calc.constant_imp_per_kwh:g}"
        calc.constant_imp_per_kwh = request.number(0.001, 1e9)
        return None

    def _pulses(self, request: Request) -> str | None:
        return _pulses_of(self._calc(request), request)

    def _abort(self, request: Request) -> None:
        self._calc(request).state = "IDLE"

    def _error(self, request: Request) -> str:
        calc = self._calc(request)
        if calc.state != "DONE":
            # A query always answers (so the client never hangs); the error queue says why.
            self.push_error(*SETTINGS_CONFLICT)
            return "9.91E37"
        return f"{calc.error_pct:.5f}"

    def _count_start(self, request: Request) -> None:
        calc = self._calc(request)
        calc.state, calc.count = "COUNT", 0

    def _energy_start(self, request: Request) -> None:
        self._accumulating, self._accumulated_j = True, 0.0

    def _energy_stop(self, request: Request) -> None:
        self._accumulating = False

    def power_on_reset(self) -> None:
        """The instrument restarted (bench fault `reference_reset`): every calculator back to its power-on
        settings and idle, accumulation stopped and zeroed, the queue empty, *ESR? power-on bit set."""
        with self.world.lock:
            self.calculators = [CalculatorModel() for _ in self.calculators]
            self._accumulating, self._accumulated_j = False, 0.0
            self.errors.clear()
            self.esr |= ESR_POWER_ON

    def reset(self) -> None:
        """Power-on state: calculators idle, accumulation stopped."""
        for calc in self.calculators:
            calc.state, calc.count = "IDLE", 0
        self._accumulating = False


def _pulses_of(calc: CalculatorModel, request: Request) -> str | None:
    """Set or read the number of meter pulses `calc` gates a reading over."""
    if request.query:
        return str(calc.pulses)
    value = request.number(1, 1e7)
    if value != int(value):
        raise ScpiFault(*DATA_OUT_OF_RANGE)
    calc.pulses = int(value)
    return None


# What the twin's reference speaks, by the bench file's reference driver name (drivers.registry).
REFERENCE_PERSONALITIES: dict[str, Callable[[ReferenceModel], None]] = {
    "scpi-reference": ReferenceModel._scpi_commands,
    "fluke-6105a-energy": ReferenceModel._fluke_energy_commands,
}
