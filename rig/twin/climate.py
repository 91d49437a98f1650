"""The twin meter with temperature: its inside follows the air at the meter (`World.ambient_c`, set by a
climate chamber) with the case's thermal lag; at its own temperature its error and phase error move by
its coefficients, its temperature sensor (DI 02 80 00 07) reads it with its own error, and its RTC's
crystal runs at the rate of its temperature curve, less what the RTC's compensation takes out.

Written from the meter's side: it reads the World and its own knobs (twin.meter.climate), never the rig's
limits.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

from rig.config.climate import ClimateKnobs
from rig.twin.world import Terminals, World

if TYPE_CHECKING:
    from rig.config import TwinConfig
    from rig.twin.meter import MeterModel

REFERENCE_C: Final = 23.0  # the error model's and the sensor's reference temperature (IEC 62052-11)
CASE_TIME_CONSTANT_S: Final = 1800.0  # the inside of a meter in its case follows the air about this slowly
SENSOR_SPREAD_C: Final = 0.05  # each sensor's own error after the factory's calibration, ± (uniform)
# The factory trims each RTC on mains: what remains of its crystal's error (drawn ±3 ppm by the management
# module) is this fraction of it.
RTC_TRIM: Final = 0.1
# A 32.768 kHz tuning-fork crystal: a parabola about its turnover temperature.
CRYSTAL_TURNOVER_C: Final = 25.0
CRYSTAL_PPM_PER_K2: Final = -0.034


class Clock(Protocol):
    """What the thermal model needs of the meter's RTC (rig.twin.meter_clock.MeterRtc)."""

    drift_ppm: float
    offset_s: float


def crystal_ppm(temperature_c: float) -> float:
    """The crystal's rate change at `temperature_c` against its rate at the reference temperature, ppm."""
    return CRYSTAL_PPM_PER_K2 * ((temperature_c - CRYSTAL_TURNOVER_C) ** 2 - (REFERENCE_C - CRYSTAL_TURNOVER_C) ** 2)


def set_rate(rtc: Clock, ppm: float, now_s: float) -> None:
    """Change the RTC's rate at bench time `now_s` without a jump in the time it shows."""
    rtc.offset_s += now_s * (rtc.drift_ppm - ppm) * 1e-6
    rtc.drift_ppm = ppm


@dataclass
class MeterThermal:
    """One meter's temperature, and what follows from it (see the module docstring)."""

    meter: MeterModel
    knobs: ClimateKnobs
    world: World
    rng: random.Random
    internal_c: float = field(init=False)
    sensor_bias_c: float = field(init=False)
    crystal_ppm_at_reference: float = field(init=False)

    def __post_init__(self) -> None:
        self.internal_c = self.world.ambient_c
        self.sensor_bias_c = self.rng.uniform(-SENSOR_SPREAD_C, SENSOR_SPREAD_C)
        management = self.meter.management
        # As delivered: the crystal's own error (drawn by the management module) as trimmed, plus the knob's.
        self.crystal_ppm_at_reference = RTC_TRIM * (management.rtc.drift_ppm if management is not None else 0.0) \
            + self.knobs.rtc_mains_ppm
        self._apply(self.world.time_s)

    @property
    def sensor_c(self) -> float:
        """What the meter's temperature sensor reads, °C."""
        return self.internal_c + self.sensor_bias_c + self.knobs.sensor_offset_c

    def step(self, t0: float, dt: float, terminals: Terminals) -> None:
        """The inside follows the air (closed form over the step)."""
        if dt <= 0:
            return
        air = self.world.ambient_c
        self.internal_c = air + (self.internal_c - air) * math.exp(-dt / CASE_TIME_CONSTANT_S)
        self._apply(t0 + dt)

    def _apply(self, now_s: float) -> None:
        k = self.knobs
        away = self.internal_c - REFERENCE_C
        metering = self.meter.metering
        metering.temperature_error_pct = k.temperature_coefficient_pct_per_k * away
        metering.temperature_phase_deg = k.phase_drift_deg_per_k * away
        management = self.meter.management
        if management is None:
            return
        management.housekeeping.temperature_c = round(self.sensor_c, 1)
        rate = self.crystal_ppm_at_reference + k.rtc_uncompensated_fraction * crystal_ppm(self.internal_c)
        if rate != management.rtc.drift_ppm:
            set_rate(management.rtc, rate, now_s)


def attach_thermal(world: World, meters: Sequence[MeterModel], config: TwinConfig) -> list[MeterThermal]:
    """Every meter's thermal model, stepped with the World (each with its own seeded sensor)."""
    models = [MeterThermal(meter, config.knobs_for(meter.index).climate, world,
                           random.Random(f"{config.seed}:climate:{meter.index}")) for meter in meters]
    world.models.extend(models)
    return models
