"""Reverse energy and direction: with the current reversed (phase 180°, PF 1, energy flowing back to the
source) the reverse active energy register moves as much as the reference measures (within the class limit
at Imax plus the register's resolution), the forward register does not move, and running status word 1 shows
reverse power (bit 4) while it flows and forward power when the current is forward again. One dose for the
whole rack; per position."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from drivers.dlt645.identifiers import STATUS1_ACTIVE_REVERSE
from drivers.dlt645.link import MeterLink
from rig.bench import Bench, Position
from rig.procedures import LoadPoint, RackCache, dose_energy
from testplans.comms import spec as comms_spec
from testplans.comms.helpers import power_meters
from testplans.registers import spec
from testplans.registers.helpers import moved, read_all, status_bit
from testplans.specs import accuracy as accuracy_spec

pytestmark = pytest.mark.plan


@dataclass(frozen=True)
class ReverseDose:
    """What the rack showed over the reversed dose."""

    forward_kwh: dict[int, float | None]  # how far each forward register moved
    reverse_kwh: dict[int, float | None]  # how far each reverse register moved
    bit_reverse: dict[int, int | None]  # status word 1 bit 4 while energy flowed back
    bit_forward: dict[int, int | None]  # ... and with the current forward
    reference_wh: float
    reference_power_w: float  # the reference's active power while reversed (negative: flowing back)


def _reverse_dose(bench: Bench, rack: RackCache) -> ReverseDose:
    meter = bench.meter
    power_meters(bench, rack, LoadPoint(voltage_v=meter.un_v, current_a=0.0))
    forward_before = read_all(bench, comms_spec.FORWARD_ENERGY)
    reverse_before = read_all(bench, comms_spec.REVERSE_ENERGY)
    point = LoadPoint(voltage_v=meter.un_v, current_a=meter.imax_a, phase_deg=spec.REVERSE_PHASE_DEG)
    _, reference_wh = dose_energy(bench, bench.positions, point, spec.REVERSE_DOSE_KWH * 1000.0)
    reference_power_w = bench.reference.measure().power_w
    bit_reverse = {p.index: status_bit(p.link, STATUS1_ACTIVE_REVERSE) for p in bench.positions}
    power_meters(bench, rack, LoadPoint(voltage_v=meter.un_v, current_a=0.0))
    forward_after = read_all(bench, comms_spec.FORWARD_ENERGY)
    reverse_after = read_all(bench, comms_spec.REVERSE_ENERGY)
    power_meters(bench, rack, LoadPoint(voltage_v=meter.un_v, current_a=meter.ib_a))
    bit_forward = {p.index: status_bit(p.link, STATUS1_ACTIVE_REVERSE) for p in bench.positions}
    power_meters(bench, rack, LoadPoint(voltage_v=meter.un_v, current_a=0.0))
    return ReverseDose({i: moved(forward_before[i], forward_after[i]) for i in forward_before},
                       {i: moved(reverse_before[i], reverse_after[i]) for i in reverse_before},
                       bit_reverse, bit_forward, reference_wh, reference_power_w)


def test_reverse_energy_registered(bench: Bench, rack: RackCache, link: MeterLink, position: Position,
                                   record) -> None:
    """Over about 5 kWh flowing back at Imax, PF 1: the reverse register against the reference, and the
    forward register unchanged."""
    meter = bench.meter
    dose = rack.cached("registers reverse dose", lambda: _reverse_dose(bench, rack))
    record("reference active power while reversed", dose.reference_power_w, "W", high=0.0, position=position,
           source="bench check: the source reversed the current (phase 180°)")
    reverse = dose.reverse_kwh[position.index]
    register_wh = None if reverse is None else reverse * 1000.0
    limit = accuracy_spec.error_limit_pct(meter, meter.imax_a, accuracy_spec.power_factor("1"))
    resolution_pct = spec.REGISTER_RESOLUTION_KWH * 1e5 / dose.reference_wh
    error = None if register_wh is None else (register_wh - dose.reference_wh) / dose.reference_wh * 100.0
    record("reverse register against the reference", error, "%", low=-(limit.value_pct + resolution_pct),
           high=limit.value_pct + resolution_pct, position=position, reference_wh=dose.reference_wh,
           register_wh=register_wh, limit_source=limit.source, source=spec.REVERSE_REGISTER.text)
    record("forward register moved while reversed", dose.forward_kwh[position.index], "kWh", low=0.0, high=0.0,
           position=position, source=spec.FORWARD_UNCHANGED.text)


def test_direction_status_bit(bench: Bench, rack: RackCache, link: MeterLink, position: Position, record) -> None:
    """Status word 1 bit 4 is 1 while energy flows back, 0 with the current forward."""
    dose = rack.cached("registers reverse dose", lambda: _reverse_dose(bench, rack))
    source = spec.DIRECTION_BIT
    record("status word 1, reverse power (reversed)", dose.bit_reverse[position.index], "", low=1, high=1,
           position=position, source=source.text, check=source.check)
    record("status word 1, reverse power (forward)", dose.bit_forward[position.index], "", low=0, high=0,
           position=position, source=source.text, check=source.check)
