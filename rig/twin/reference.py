"""The twin's reference standard and its per-position error calculators.

It measures the World exactly, plus its own stated uncertainty, and gates on each meter's pulse
output exactly as a bench's pulse-comparison calculator does (first edge starts, N-th edge stops).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from rig.config import ReferenceTwin
from rig.twin.scpi import DATA_OUT_OF_RANGE, ESR_POWER_ON, SETTINGS_CONFLICT, Request, ScpiDevice, ScpiFault
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


class ReferenceModel(ScpiDevice):
    """Reference standard meter with `channels` error calculators."""

    def __init__(self, world: World, config: ReferenceTwin, rng: random.Random) -> None:
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
        self.command("MEASure[:SCALar]:VOLTage", lambda r: self._measure(lambda t: t.voltage_v))
        self.command("MEASure[:SCALar]:CURRent", lambda r: self._measure(lambda t: t.current_a))
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
        world.on_second.append(self._redraw)

    # ---- measurement of the World

    def _redraw(self, _t: float) -> None:
        self._error_pct = self.rng.gauss(0.0, self.config.uncertainty_pct)

    def _measure(self, quantity: object) -> str:
        assert callable(quantity)
        return f"{quantity(self.world.terminals()) * (1.0 + self._error_pct / 100.0):.6f}"

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
        calc = self._calc(request)
        if request.query:
            return str(calc.pulses)
        value = request.number(1, 1e7)
        if value != int(value):
            raise ScpiFault(*DATA_OUT_OF_RANGE)
        calc.pulses = int(value)
        return None

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
