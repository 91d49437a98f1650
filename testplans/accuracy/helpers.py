"""Helpers of the accuracy plans: the class's load points in test order, their ids, and what the source
delivers for one."""

from __future__ import annotations

import math

from rig.procedures import LoadPoint
from testplans.specs import accuracy as spec

# Readings of the repeatability test. The standard asks for at least 5 (spec.REPEATABILITY_MIN_READINGS), a
# floor, not a verdict that holds at the margin: the sample standard deviation s of n readings follows
# (n - 1) s^2 / sigma^2 ~ chi-squared(n - 1), and with n = 5 a meter at 1.5x the limit passes about one time in
# five. The rig's own choice: the fewest readings with which a meter at 1.2x the limit fails AND one at 0.8x
# passes with probability 0.99 each, chi-squared(n - 1) beyond (n - 1) / 1.2^2 and within (n - 1) / 0.8^2 at 99 %:
# n = 97 (at 0.95 it would be 51, which leaves 19 of 20 runs right only three times in four). At Ib one
# reading is one gate of about 5.5 s, so the test costs some 9 min of bench time per power factor.
REPEATABILITY_READINGS = 97

# The meter-constant test resolves its dose to a tenth of the limit or better: N pulses with 100 / N <= limit / 10.
RESOLUTION_OF_LIMIT = 10


def load_point_id(point: spec.LoadPointSpec) -> str:
    """`PF1-0.05Ib`, `PF0.5L-Imax`."""
    return f"PF{point.pf.label}-{point.label}"


def ordered_load_points(meter: spec.MeterTypeLike) -> list[spec.LoadPointSpec]:
    """The class's load points, grouped by power factor and rising in current (least settling)."""
    order = {"1": 0}
    return sorted(spec.load_points(meter), key=lambda p: (order.get(p.pf.label, 1), p.pf.label, p.current_a))


def source_point(meter: spec.MeterTypeLike, current_a: float, pf: spec.PowerFactor,
                 voltage_v: float | None = None, frequency_hz: float | None = None) -> LoadPoint:
    """What the source must deliver for a load point of the standard."""
    return LoadPoint(voltage_v=meter.un_v if voltage_v is None else voltage_v, current_a=current_a,
                     phase_deg=pf.angle_deg, frequency_hz=frequency_hz)


def constant_test_pulses(limit_pct: float) -> int:
    """Meter pulses of the meter-constant dose: one pulse is at most a tenth of the limit, and never fewer than
    1000 (the classic dose)."""
    if not math.isfinite(limit_pct) or limit_pct <= 0:
        raise ValueError(f"limit_pct = {limit_pct!r}: must be a positive number")
    return max(1000, math.ceil(100.0 * RESOLUTION_OF_LIMIT / limit_pct * (1.0 - 1e-12)))
