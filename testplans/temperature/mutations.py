"""The temperature and RTC-on-mains knobs' catalogue (`twin.meter.climate.*`): for each, a value outside the
limit (the plan must fail), one inside (it must pass), and the knob value at which the limit is reached.

Values derive from the meter type and the plans' specs. The plans need a climate chamber: run them on a
bench that names one (benches/twin-chamber.yaml), e.g. `rig mutate testplans/temperature testplans/rtc
--bench benches/twin-chamber.yaml`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from testplans.mutations import Mutation
from testplans.rtc import spec as rtc_spec
from testplans.temperature import spec

TEMPERATURE = "testplans/temperature/test_temperature.py"
RTC = "testplans/rtc/test_rtc_mains.py"
CLIMATE = "twin.meter.climate"

# Change of error at 0.5L per degree of phase error (current lagging 60°): -tan(60°) in % per radian.
PCT_PER_DEG_AT_05L = math.tan(math.radians(60.0)) * math.pi / 180.0 * 100.0
# The healthy twin's own scatter each knob must clear (its crystals ±3 ppm, its sensors ±0.3 °C).
CRYSTAL_SPREAD_PPM = 3.0
PPM_PER_S_PER_DAY = 1e6 / 86400.0
CRYSTAL_AT_COLD_END_PPM = 0.034 * ((rtc_spec.COMPENSATION_C - 25.0) ** 2 - (23.0 - 25.0) ** 2)


def _times(boundary: Callable[[Any], float], factor: float) -> Callable[[Any], float]:
    """`factor` times the knob's boundary value."""
    return lambda meter: factor * boundary(meter)


def _coefficient(meter: Any) -> float:
    # The error moves by the knob per kelvin: the PF 1 limit is reached at the limit itself.
    high = spec.coefficient_limit(meter, "1").high
    assert high is not None
    return high


def _phase_drift(meter: Any) -> float:
    # At 0.5L a phase error of δ degrees moves the error by -δ·tan(60°)·π/180·100 %.
    high = spec.coefficient_limit(meter, "0.5L").high
    assert high is not None
    return high / PCT_PER_DEG_AT_05L


def _sensor(meter: Any) -> float:
    high = spec.TEMPERATURE_READING.high
    assert high is not None
    return high


def _mains_ppm(meter: Any) -> float:
    # The crystal's own error adds up to ±3 ppm: the limit is surely reached at the limit plus that.
    high = rtc_spec.DAILY_AT_REFERENCE.high
    assert high is not None
    return high * PPM_PER_S_PER_DAY + CRYSTAL_SPREAD_PPM


def _uncompensated(meter: Any) -> float:
    # What the compensation leaves of the crystal's curve at the cold end reaches the limit (plus the spread).
    high = rtc_spec.DAILY_OVER_TEMPERATURE.high
    assert high is not None
    return (high * PPM_PER_S_PER_DAY + CRYSTAL_SPREAD_PPM) / CRYSTAL_AT_COLD_END_PPM


MUTATIONS: tuple[Mutation, ...] = (
    Mutation(f"{CLIMATE}.temperature_coefficient_pct_per_k", (f"{TEMPERATURE}::test_mean_temperature_coefficient",),
             _times(_coefficient, 1.3), _times(_coefficient, 0.5), "the error moves too much with temperature",
             boundary=_coefficient),
    Mutation(f"{CLIMATE}.phase_drift_deg_per_k", (f"{TEMPERATURE}::test_mean_temperature_coefficient",),
             _times(_phase_drift, 1.3), _times(_phase_drift, 0.5), "the phase error moves with temperature (0.5L)",
             boundary=_phase_drift),
    Mutation(f"{CLIMATE}.sensor_offset_c", (f"{TEMPERATURE}::test_temperature_reading_against_chamber",),
             _times(_sensor, 1.6), _times(_sensor, 0.4), "the meter's temperature reading is off", boundary=_sensor),
    Mutation(f"{CLIMATE}.rtc_mains_ppm", (f"{RTC}::test_daily_error_at_reference_temperature",),
             _times(_mains_ppm, 1.3), _times(_mains_ppm, 0.2), "the clock runs fast on mains", boundary=_mains_ppm),
    Mutation(f"{CLIMATE}.rtc_uncompensated_fraction", (f"{RTC}::test_daily_error_at_cold_end",),
             _times(_uncompensated, 2.0), _times(_uncompensated, 0.3),
             "the RTC's temperature compensation does not work", boundary=_uncompensated),
)
