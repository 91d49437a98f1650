"""The RTC-on-mains knobs' catalogue (`twin.meter.climate.rtc_*`): for each, a value outside the limit (the
plan must fail), one inside (it must pass), and the knob value at which the limit is reached (the twin's
trimmed crystals add their own ±0.3 ppm).

The plan needs a climate chamber: `rig mutate testplans/rtc --bench benches/twin-chamber.yaml`.
"""

from __future__ import annotations

from typing import Any

from testplans.mutations import Mutation
from testplans.rtc import spec
from testplans.temperature.mutations import CLIMATE, times

RTC = "testplans/rtc/test_rtc_mains.py"
PPM_PER_S_PER_DAY = 1e6 / 86400.0
# A tuning-fork crystal's parabola (-0.034 ppm/K² about 25 °C) at the cold end, against 23 °C, ppm.
CRYSTAL_AT_COLD_END_PPM = 0.034 * ((spec.COMPENSATION_C - 25.0) ** 2 - (spec.REFERENCE_C - 25.0) ** 2)


def _mains_ppm(meter: Any) -> float:
    high = spec.DAILY_AT_REFERENCE.high
    assert high is not None
    return high * PPM_PER_S_PER_DAY


def _uncompensated(meter: Any) -> float:
    # What the compensation leaves of the crystal's curve at the cold end reaches the limit.
    high = spec.DAILY_OVER_TEMPERATURE.high
    assert high is not None
    return high * PPM_PER_S_PER_DAY / CRYSTAL_AT_COLD_END_PPM


MUTATIONS: tuple[Mutation, ...] = (
    Mutation(f"{CLIMATE}.rtc_mains_ppm", (f"{RTC}::test_daily_error_at_reference_temperature",),
             times(_mains_ppm, 1.5), times(_mains_ppm, 0.5), "the clock runs fast on mains", boundary=_mains_ppm),
    Mutation(f"{CLIMATE}.rtc_uncompensated_fraction", (f"{RTC}::test_daily_error_at_cold_end",),
             times(_uncompensated, 2.0), times(_uncompensated, 0.3), "the RTC's temperature compensation does not work",
             boundary=_uncompensated),
)
