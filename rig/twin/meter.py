"""The twin's meter: its metering module (energy integration with an error model, start threshold,
creep, pulse output at the meter constant), with the management module (rig.twin.management) and the
expansion module (rig.twin.expansion) attached.

Written from the meter's side: it reads only the World and its own knobs, never the rig's limits.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rig.config import MeteringKnobs, MeterType
from rig.config.harmonics import HarmonicKnobs
from rig.twin.harmonics import registered_power_w as registered_with_harmonics
from rig.twin.world import Terminals

if TYPE_CHECKING:
    from rig.twin.expansion import ExpansionModule
    from rig.twin.management import ManagementModule

# A meter's chip stops integrating below this voltage (no supply for the metering front end).
MIN_OPERATING_VOLTAGE_FRACTION = 0.6
# A voltage below this fraction of Un is a dip (IEC 61000-4-11 counts from 90 %).
DIP_FRACTION = 0.9
# A factory start threshold as a fraction of Ib when the knob is not set.
DEFAULT_START_FRACTION_OF_IB = 0.0005

PulseListener = Callable[[float], None]


@dataclass
class MeteringModule:
    """Energy registers and pulse output of one meter."""

    meter_type: MeterType
    knobs: MeteringKnobs
    rng: random.Random
    forward_kwh: float = 0.0
    reverse_kwh: float = 0.0
    pulses: int = 0
    pulse_listeners: list[PulseListener] = field(default_factory=list)
    _pulse_accumulator: float = 0.0  # fraction of a pulse accumulated towards the next edge
    _noise_pct: float = 0.0
    dip_power_w: float = 0.0  # knob counts_during_dip: what it registers while the voltage is dipped
    # Set by the meter's thermal model (rig.twin.climate): its error and phase error at its own temperature.
    temperature_error_pct: float = 0.0
    temperature_phase_deg: float = 0.0
    harmonics: HarmonicKnobs = field(default_factory=HarmonicKnobs)  # how it registers distorted waveforms
    # Scale of the metering chip's energy integration (its energy_scale_error_pct): the chip is the front end,
    # so its error is the registers' and the pulses' error too.
    energy_scale: float = 1.0

    def redraw(self, _t: float) -> None:
        """New random error for the next second of bench time."""
        self._noise_pct = self.rng.gauss(0.0, self.knobs.noise_pct)

    @property
    def start_current_a(self) -> float:
        """Current below which the chip registers nothing (creep aside), A."""
        knob = self.knobs.start_current_a
        return knob if knob is not None else DEFAULT_START_FRACTION_OF_IB * self.meter_type.ib_a

    def registered_power_w(self, t: Terminals) -> float:
        """Active power as this meter measures it (signed), W."""
        un = self.meter_type.un_v
        if self.dip_power_w and 0.0 < t.voltage_v < DIP_FRACTION * un:
            return self.dip_power_w  # a defective front end counts its own transient during a dip
        if t.voltage_v < MIN_OPERATING_VOLTAGE_FRACTION * un:
            return 0.0
        if t.current_a < self.start_current_a:
            return self.knobs.creep_w
        k = self.knobs
        angle = math.radians(t.phase_deg + k.phase_error_deg + self.temperature_phase_deg)
        error_pct = (
            k.gain_error_pct
            + k.voltage_sensitivity_pct_per_pct * (t.voltage_v / un - 1.0) * 100.0
            + k.frequency_sensitivity_pct_per_pct * (t.frequency_hz / self.meter_type.frequency_hz - 1.0) * 100.0
            + self._nonlinearity_pct(t.current_a)
            + self.temperature_error_pct
            + self._noise_pct
        )
        # An offset in the power channel is a fixed power: a large error at low current, none to speak of at Imax.
        return registered_with_harmonics(
            t, t.voltage_v * t.current_a * math.cos(angle) * (1.0 + error_pct / 100.0) + k.offset_power_w,
            self.harmonics)

    def _nonlinearity_pct(self, current_a: float) -> float:
        slope = self.knobs.nonlinearity_pct_per_decade
        return slope * math.log10(current_a / self.meter_type.ib_a) if slope and current_a > 0 else 0.0

    def energy_kwh(self, terminals: Terminals, dt: float) -> float:
        """Energy (signed, kWh) the front end integrates over `dt` at these terminals: the one energy the
        registers, the pulse output and the metering chip's energy counters all derive from."""
        return self.registered_power_w(terminals) * self.energy_scale * dt / 3.6e6

    def step(self, t0: float, dt: float, terminals: Terminals) -> None:
        """Integrate the registers and emit pulse edges over [t0, t0 + dt]."""
        if dt <= 0:
            return
        signed_kwh = self.energy_kwh(terminals, dt)
        if signed_kwh == 0.0:
            return
        energy_kwh = abs(signed_kwh)
        if signed_kwh > 0:
            self.forward_kwh += energy_kwh
        else:
            self.reverse_kwh += energy_kwh
        rate = self.meter_type.constant_imp_per_kwh * (1.0 + self.knobs.constant_error_pct / 100.0)
        before = self._pulse_accumulator
        after = before + energy_kwh * rate
        edges = math.floor(after)
        for k in range(1, edges + 1):
            at = t0 + dt * (k - before) / (after - before)
            self.pulses += 1
            for listener in self.pulse_listeners:
                listener(at)
        self._pulse_accumulator = after - edges


@dataclass
class MeterModel:
    """One meter position of the twin: the modules of the source paper's modular meter."""

    index: int
    address: str
    metering: MeteringModule
    management: ManagementModule | None = None  # MCU: DL/T 645 server on RS-485, RTC, status words
    expansion: ExpansionModule | None = None  # polls the MCU over the internal UART

    def step(self, t0: float, dt: float, terminals: Terminals) -> None:
        """Integrate every module over the step (the expansion module's polls see the registers at t0)."""
        if self.management is not None:
            self.management.step(t0, dt, terminals)
        if self.expansion is not None:
            self.expansion.step(t0, dt, terminals)
        self.metering.step(t0, dt, terminals)
