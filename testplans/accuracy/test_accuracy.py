"""Metering accuracy (type approval and verification), every position measured together.

Each point: settle, gate over enough pulses for the minimum reading time, take the readings, report
the rounded mean against the class limit. Limits, load points and durations come from
`testplans/specs` (the bench file's meter type selects scheme and class).
"""

from __future__ import annotations

import html
import math
import statistics

import pytest

from rig.bench import Bench, Position
from rig.plots import BackgroundRenderer, CurvePoint
from rig.procedures import LoadPoint, RackCache, energise, measure_errors, pulse_period_s
from testplans.accuracy.helpers import (
    REPEATABILITY_READINGS,
    constant_test_pulses,
    ordered_load_points,
    source_point,
)
from testplans.specs import accuracy as spec

pytestmark = pytest.mark.plan


def _mean(readings: list[float]) -> float:
    return statistics.fmean(readings) if readings and all(math.isfinite(r) for r in readings) else math.nan


def _basic_error(bench: Bench, rack: RackCache, point: spec.LoadPointSpec) -> dict[int, list[float]]:
    load = source_point(bench.meter, point.current_a, point.pf)
    return rack.errors(load, readings=spec.MIN_READINGS_PER_POINT)


def _curves(bench: Bench, rack: RackCache, position: Position) -> dict[str, list[CurvePoint]]:
    """The position's error curves by power factor (measures any point not yet measured)."""
    meter = bench.meter
    interval = spec.rounding_interval_pct(meter)
    curves: dict[str, list[CurvePoint]] = {}
    for point in ordered_load_points(meter):
        error = spec.round_error(_mean(_basic_error(bench, rack, point)[position.index]), interval)
        curves.setdefault(point.pf.label, []).append(
            CurvePoint(current_a=point.current_a, error_pct=error if math.isfinite(error) else None,
                       limit_pct=point.limit.value_pct, label=point.label))
    return curves


def _start_plot(bench: Bench, rack: RackCache, position: Position, renderer: BackgroundRenderer) -> None:
    if not renderer.submitted(position.index):
        title = f"{position.name} ({position.address}) {bench.meter.nameplate}"
        renderer.submit_curves(position.index, _curves(bench, rack, position), title=title,
                               imax_a=bench.meter.imax_a, ib_a=bench.meter.ib_a)


def test_basic_error(bench: Bench, rack: RackCache, position: Position, load_point: spec.LoadPointSpec, record,
                     renderer: BackgroundRenderer) -> None:
    """Error at each load point and power factor of the class, within the class limit."""
    meter = bench.meter
    readings = _basic_error(bench, rack, load_point)[position.index]
    points = ordered_load_points(meter)
    if all(rack.has_errors(source_point(meter, p.current_a, p.pf), readings=spec.MIN_READINGS_PER_POINT)
           for p in points):
        # Every point of this position is measured: draw its curves while the plan goes on.
        _start_plot(bench, rack, position, renderer)
    reported = spec.round_error(_mean(readings), spec.rounding_interval_pct(meter))
    limit = load_point.limit
    uncertainty = spec.test_uncertainty_pct(load_point.pf)
    record(
        f"error at {load_point.label} PF {load_point.pf.label}", reported, "%",
        low=-limit.value_pct, high=limit.value_pct, position=position,
        readings_pct=readings, load_point=load_point.label, current_a=load_point.current_a, pf=load_point.pf.label,
        limit_source=limit.source, limit_check=limit.check, uncertainty_pct=uncertainty,
        tur=spec.tur(limit.value_pct, uncertainty),
    )


def test_starting_current(bench: Bench, rack: RackCache, position: Position, record) -> None:
    """At the starting current the meter starts and keeps registering: at least one pulse in the test time."""
    meter = bench.meter
    current = spec.starting_current(meter)
    duration = spec.starting_time(meter)
    counts = rack.pulse_counts(LoadPoint(voltage_v=meter.un_v, current_a=current.value), duration.value)
    record("pulses at the starting current", counts[position.index], "imp", low=1, position=position,
           current_a=current.value, duration_s=duration.value, source=current.source, check=current.check)


def test_no_load(bench: Bench, rack: RackCache, position: Position, record) -> None:
    """With the current circuit open at the no-load voltage the meter gives at most one pulse."""
    meter = bench.meter
    voltage = spec.creep_voltage(meter)
    duration = spec.creep_duration(meter)
    counts = rack.pulse_counts(LoadPoint(voltage_v=voltage.value, current_a=0.0), duration.value)
    record("pulses at no load", counts[position.index], "imp", low=0, high=spec.creep_max_pulses(meter),
           position=position, voltage_v=voltage.value, duration_s=duration.value, source=duration.source,
           check=duration.check)


@pytest.mark.parametrize("pf_label", ["1", "0.5L"])
def test_repeatability(bench: Bench, rack: RackCache, position: Position, pf_label: str, record) -> None:
    """Standard deviation of repeated readings at Ib, within the class's repeatability limit (enough readings
    that the verdict holds at 1.2x and 0.8x the limit: helpers.REPEATABILITY_READINGS)."""
    meter = bench.meter
    pf = spec.power_factor(pf_label)
    n = REPEATABILITY_READINGS
    readings = rack.errors(source_point(meter, meter.ib_a, pf), readings=n, key="repeatability")[position.index]
    deviation = statistics.stdev(readings) if all(math.isfinite(r) for r in readings) else math.nan
    limit = spec.repeatability_limit_pct(meter, meter.ib_a, pf)
    record(f"standard deviation of {n} readings at Ib PF {pf_label}", deviation, "%", low=0.0,
           high=limit.value_pct, position=position, readings_pct=readings, source=limit.source, check=limit.check,
           standard_minimum_readings=spec.REPEATABILITY_MIN_READINGS)


def test_influence(bench: Bench, rack: RackCache, position: Position, influence, record) -> None:
    """Change of error when voltage or frequency moves off its reference value, within its limit."""
    test, pf = influence
    meter = bench.meter
    limit = spec.influence_limit_pct(meter, test.influence, pf)

    def point(setting: float | None) -> LoadPoint:
        if test.varies == "voltage":
            return source_point(meter, test.current_a, pf, voltage_v=setting)
        return source_point(meter, test.current_a, pf, frequency_hz=setting)

    def error_at(setting: float | None) -> float:
        readings = rack.errors(point(setting), readings=spec.MIN_READINGS_PER_POINT, key="influence")
        return _mean(readings[position.index])

    baseline = error_at(None)
    for deviation, setting in zip(test.deviations_pct, test.settings):
        shifted = error_at(setting)
        record(f"change of error, {test.influence} {deviation:+g} %, PF {pf.label}", shifted - baseline, "%",
               low=-limit.value_pct, high=limit.value_pct, position=position, setting=setting,
               unit_of_setting=test.unit, baseline_pct=baseline, shifted_pct=shifted, source=limit.source,
               check=limit.check)


def test_meter_constant(bench: Bench, position: Position, rack: RackCache, record) -> None:
    """The energy of N pulses at the meter constant agrees with the reference's energy over those pulses.

    The dose is gated on the meter's pulse edges (the error calculator's gate: no fraction of a pulse is
    lost at either end) and holds enough pulses that one is at most a tenth of the limit; the error is
    rounded to the class's interval and judged against the limit on both sides.

    The register side of the constant test (register advance against pulses and the reference over a
    dose sized for the register's 0.01 kWh resolution) needs the meter's UART: it is
    testplans/comms/test_consistency.py::test_energy_register_agrees_with_pulses_and_reference.
    """
    meter = bench.meter
    limit = spec.error_limit_pct(meter, meter.imax_a, spec.power_factor("1"))
    pulses = constant_test_pulses(limit.value_pct)
    load = LoadPoint(voltage_v=meter.un_v, current_a=meter.imax_a)
    gate_s = pulses * pulse_period_s(load.active_power_w, meter.constant_imp_per_kwh)

    def dose() -> dict[int, list[float]]:
        energise(bench, load)
        return measure_errors(bench, bench.positions, power_w=load.active_power_w, readings=1, min_gate_s=gate_s)

    raw = rack.cached(("meter constant", pulses), dose)[position.index][0]
    error = spec.round_error(raw, spec.rounding_interval_pct(meter)) if math.isfinite(raw) else math.nan
    record("pulse energy vs reference over a dosed energy", error, "%", low=-limit.value_pct, high=limit.value_pct,
           position=position, pulses=pulses, resolution_pct=100.0 / pulses, unrounded_pct=raw, source=limit.source)


def test_error_curves(bench: Bench, rack: RackCache, position: Position, record, attach_png, attach_html,
                      renderer: BackgroundRenderer) -> None:
    """The error curves, one per power factor: every point has a reading within its limit (plot attached).

    Last in the plan so that drawing (started when the position's last point was measured) overlaps
    with the other tests.
    """
    curves = _curves(bench, rack, position)
    _start_plot(bench, rack, position, renderer)
    attach_png("error curves", renderer.result(position.index))
    rows = "".join(
        f"<tr><td>PF {html.escape(pf)}</td><td>{html.escape(c.label)}</td><td>{c.current_a:g}</td>"
        f"<td>{'no reading' if c.error_pct is None else f'{c.error_pct:+.3f}'}</td><td>±{c.limit_pct:g}</td></tr>"
        for pf, curve in curves.items() for c in curve
    )
    attach_html("<table><tr><th>PF</th><th>point</th><th>I (A)</th><th>error (%)</th><th>limit (%)</th></tr>"
                f"{rows}</table>")
    for pf, curve in curves.items():
        inside = sum(1 for c in curve if c.error_pct is not None and abs(c.error_pct) <= c.limit_pct)
        record(f"points within limit at PF {pf}", inside, "points", low=len(curve), high=len(curve),
               position=position)
