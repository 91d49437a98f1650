"""Helpers of the accuracy plans: the class's load points in test order, their ids, and what the source
delivers for one."""

from __future__ import annotations

from rig.procedures import LoadPoint
from testplans.specs import accuracy as spec


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
