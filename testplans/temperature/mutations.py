"""The temperature knobs' catalogue (`twin.meter.climate.*`, the RTC's in testplans/rtc/mutations.py): for
each, a value outside the limit (the plan must fail), one inside (it must pass), and the knob value at which
the limit is reached.

Values derive from the meter type and the plan's spec. The plan needs a climate chamber: run it on a bench
that names one, e.g. `rig mutate testplans/temperature --bench benches/twin-chamber.yaml`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from testplans.mutations import Mutation
from testplans.temperature import spec

TEMPERATURE = "testplans/temperature/test_temperature.py"
CLIMATE = "twin.meter.climate"

# Change of error at 0.5L per degree of phase error (current lagging 60°): -tan(60°) in % per radian.
PCT_PER_DEG_AT_05L = math.tan(math.radians(60.0)) * math.pi / 180.0 * 100.0


def times(boundary: Callable[[Any], float], factor: float) -> Callable[[Any], float]:
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


MUTATIONS: tuple[Mutation, ...] = (
    Mutation(f"{CLIMATE}.temperature_coefficient_pct_per_k", (f"{TEMPERATURE}::test_mean_temperature_coefficient",),
             times(_coefficient, 1.3), times(_coefficient, 0.5), "the error moves too much with temperature",
             boundary=_coefficient),
    Mutation(f"{CLIMATE}.phase_drift_deg_per_k", (f"{TEMPERATURE}::test_mean_temperature_coefficient",),
             times(_phase_drift, 1.3), times(_phase_drift, 0.5), "the phase error moves with temperature (0.5L)",
             boundary=_phase_drift),
    Mutation(f"{CLIMATE}.sensor_offset_c", (f"{TEMPERATURE}::test_temperature_reading_against_chamber",),
             times(_sensor, 1.5), times(_sensor, 0.5), "the meter's temperature reading is off", boundary=_sensor),
)
