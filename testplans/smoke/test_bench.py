"""Bench smoke plan: run first on a new bench (or nightly) before any accuracy plan."""

from __future__ import annotations

import datetime as dt

import pytest

from fixtures.gate import record_mounting
from rig.bench import Bench, Position
from rig.operator import Answer
from rig.procedures import LoadPoint, count_pulses, energise, pulse_period_s

pytestmark = pytest.mark.plan


def test_meter_connected(position: Position, mounting: dict[str, Answer], record) -> None:
    """A person confirmed each meter mounted and wired before anything could switch the source on (the
    rig asks for every position before the first item that uses the bench; the twin answers itself)."""
    record_mounting(record, position, mounting[position.name])


def test_reference_calibration_valid(bench: Bench, record) -> None:
    """The reference standard's calibration is not past due."""
    calibration = bench.reference.calibration()
    days_left = (calibration.due - dt.date.today()).days
    record("reference calibration days left", days_left, "d", low=0, certificate=calibration.certificate)


def test_source_reaches_set_point(bench: Bench, record) -> None:
    """At Un and Ib the reference measures what the source was told to deliver (within 0.5 %)."""
    meter = bench.meter
    energise(bench, LoadPoint(voltage_v=meter.un_v, current_a=meter.ib_a))
    reading = bench.reference.measure()
    for quantity, value, target, unit in (
        ("voltage", reading.voltage_v, meter.un_v, "V"),
        ("current", reading.current_a, meter.ib_a, "A"),
    ):
        record(f"reference {quantity} at set-point", value, unit, low=target * 0.995, high=target * 1.005)


def test_meter_emits_pulses(bench: Bench, position: Position, record) -> None:
    """At Ib and PF 1 each meter emits pulses at about its constant (within 5 % over ten periods)."""
    meter = bench.meter
    point = LoadPoint(voltage_v=meter.un_v, current_a=meter.ib_a)
    energise(bench, point)
    window_s = 10 * pulse_period_s(point.active_power_w, meter.constant_imp_per_kwh)
    counted = count_pulses(bench, [position], window_s)[position.index]
    record("pulses in ten nominal periods", counted, "imp", low=9, high=11, position=position)
