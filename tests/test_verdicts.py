"""Verdicts that hold at the margin: repeatability on enough readings that a meter at 1.2x the limit fails and one
at 0.8x passes in at least 19 of 20 seeded runs; the load-dependent error knobs caught by the accuracy plan's load
points at 1.1x the limit at their worst point and passed at 0.8x; the meter-constant test judging both signs alike
at a resolution of a tenth of the limit; the battery-low threshold bracketed on both sides.

The repeatability runs are in-process (the twin embedded, the plan's own procedure and verdict); the others are one
`rig run` of the plan per bench, one position per defect."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rig.bench import bench_session
from rig.config import BENCHES_DIR, DEFAULT_BENCH, load_bench, validate_bench
from rig.mutate import position_outcomes
from rig.plans import mutation_catalogue
from rig.procedures import RackCache
from testplans.accuracy.helpers import REPEATABILITY_READINGS, constant_test_pulses, source_point
from testplans.power import spec as power_spec
from testplans.specs import accuracy as spec

ROOT = Path(__file__).resolve().parents[1]
SEEDS = range(1, 21)
ACCURACY = "testplans/accuracy/test_accuracy.py"


def _mutation(knob: str) -> Any:
    return next(m for m in mutation_catalogue() if m.knob == f"twin.meter.{knob}")


def _in_process_config(seed: int, positions: dict[int, dict[str, Any]]) -> Any:
    data = yaml.safe_load(DEFAULT_BENCH.read_text())
    data["positions"] = [{"address": f"{i + 1:012d}", "pulse_channel": i + 1} for i in range(len(positions))]
    data["twin"] = {"seed": seed, "reference": {"channels": len(positions)}, "positions": positions}
    return validate_bench(data)


def test_repeatability_verdict_holds_at_1_2x_and_0_8x_the_limit_in_19_of_20_seeds() -> None:
    """A meter whose readings scatter 1.2x the limit (1 sigma) fails, one at 0.8x passes, in at least 19 of 20
    seeds each, with the plan's reading count and verdict (standard deviation of the readings at Ib, PF 1)."""
    meter = load_bench(DEFAULT_BENCH).meter
    noise = _mutation("metering.noise_pct")
    outside, inside = noise.outside(meter), noise.inside(meter)
    pf = spec.power_factor("1")
    limit = spec.repeatability_limit_pct(meter, meter.ib_a, pf).value_pct
    failed_outside = passed_inside = 0
    pooled: dict[int, list[float]] = {0: [], 1: []}
    for seed in SEEDS:
        config = _in_process_config(seed, {0: {"metering": {"noise_pct": outside}},
                                           1: {"metering": {"noise_pct": inside}}})
        with bench_session(config) as bench:
            readings = RackCache(bench).errors(source_point(meter, meter.ib_a, pf), readings=REPEATABILITY_READINGS)
        deviations = {i: statistics.stdev(r) for i, r in readings.items()}
        failed_outside += deviations[0] > limit
        passed_inside += deviations[1] <= limit
        for i, r in readings.items():
            pooled[i] += [x - statistics.fmean(r) for x in r]
    assert REPEATABILITY_READINGS >= spec.REPEATABILITY_MIN_READINGS
    assert failed_outside >= 19, f"1.2x the limit failed in only {failed_outside} of 20 seeds"
    assert passed_inside >= 19, f"0.8x the limit passed in only {passed_inside} of 20 seeds"
    # The catalogue's values put the readings where they say: pooled over the seeds, 1.2x and 0.8x of the limit.
    for i, factor in ((0, 1.2), (1, 0.8)):
        sigma = math.sqrt(statistics.fmean(x * x for x in pooled[i]) * REPEATABILITY_READINGS
                          / (REPEATABILITY_READINGS - 1))
        assert sigma / limit == pytest.approx(factor, rel=0.06), (i, sigma)


def _rack(tmp: Path, base: Path, rows: list[tuple[str, dict[str, Any]]]) -> Path:
    data = yaml.safe_load(base.read_text())
    data["name"] = tmp.stem
    template = {k: v for k, v in data["positions"][0].items() if k in ("serial", "expansion_tap")}
    data["positions"] = [{"name": name, "address": f"{i + 1:012d}", "pulse_channel": i + 1, **template}
                         for i, (name, _) in enumerate(rows)]
    data["twin"] = {"seed": 1, "reference": {"channels": len(rows)},
                    "positions": {i: knobs for i, (_, knobs) in enumerate(rows) if knobs}}
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    return tmp


def _run(bench: Path, tmp: Path, *plans: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", *plans, "--bench", str(bench), "--reports",
                           str(tmp / "reports")], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
    results: dict[str, Any] = json.loads((tmp / "reports" / "latest" / "results.json").read_text())
    return results


def _metering(knob: str, value: float) -> dict[str, Any]:
    family, name = knob.split(".")
    return {family: {name: value}}


@pytest.mark.parametrize("bench_name", ["twin.yaml", "twin-ct-0.5S.yaml"])
def test_accuracy_plan_catches_load_dependent_error_and_judges_the_constant_both_ways(
        tmp_path: Path, bench_name: str) -> None:
    """One rack per class: the offset and non-linearity knobs at 1.1x the limit at their worst load point fail
    test_basic_error there and at 0.8x pass every point; a pulse-constant error just inside the limit passes and
    just outside fails, on either sign; the dose's resolution is a tenth of the limit or better."""
    base = BENCHES_DIR / bench_name
    meter = load_bench(base).meter
    limit = spec.error_limit_pct(meter, meter.imax_a, spec.power_factor("1")).value_pct
    step = spec.rounding_interval_pct(meter)
    rows: list[tuple[str, dict[str, Any]]] = [("healthy", {})]
    for knob in ("metering.offset_power_w", "metering.nonlinearity_pct_per_decade"):
        mutation = _mutation(knob)
        name = knob.split(".")[1].replace("_", "")
        rows += [(f"{name}out", _metering(knob, mutation.outside(meter))),
                 (f"{name}in", _metering(knob, mutation.inside(meter)))]
    # The healthy gain error (+0.04 %) adds to the pulse-constant error; two rounding steps either side of the limit.
    for sign, label in ((1, "plus"), (-1, "minus")):
        rows += [(f"constant{label}in", {"metering": {"constant_error_pct": sign * (limit - 2 * step) - 0.04}}),
                 (f"constant{label}out", {"metering": {"constant_error_pct": sign * (limit + 2 * step) - 0.04}})]
    results = _run(_rack(tmp_path / "rack.yaml", base, rows), tmp_path, f"{ACCURACY}::test_basic_error",
                   f"{ACCURACY}::test_meter_constant")

    def outcomes(position: str, test: str) -> list[str]:
        return [v for k, v in position_outcomes(results, position).items() if f"::{test}[" in k]

    for name, _ in rows:
        basic, constant = outcomes(name, "test_basic_error"), outcomes(name, "test_meter_constant")
        assert len(basic) == len(spec.load_points(meter)) and len(constant) == 1, (name, basic, constant)
        if name.endswith("out") and not name.startswith("constant"):
            assert "failed" in basic, name
        elif name.startswith("constant"):
            assert constant == ["failed" if name.endswith("out") else "passed"], name
        else:
            assert set(basic) == {"passed"} and constant == ["passed"], (name, basic, constant)
    doses = [r["detail"] for r in results["records"] if "test_meter_constant" in r["test"]]
    assert len(doses) == len(rows)
    assert all(d["pulses"] == constant_test_pulses(limit) and d["resolution_pct"] <= limit / 10 for d in doses)


def test_battery_alarm_late_or_early_fails_and_the_healthy_threshold_passes(tmp_path: Path) -> None:
    """Battery-low at 2.05 V (late) and at 2.20 V (early) both fail the plan; 2.10 V (the healthy meter) and the
    catalogue's inside value pass."""
    inside = _mutation("power.battery_alarm_threshold_v").inside(load_bench(DEFAULT_BENCH).meter)
    thresholds = {"late": 2.05, "early": 2.20, "healthy": power_spec.BATTERY_ALARM_V, "inside": inside}
    rows = [(name, {"power": {"battery_alarm_threshold_v": v}}) for name, v in thresholds.items()]
    results = _run(_rack(tmp_path / "battery.yaml", BENCHES_DIR / "twin-rack.yaml", rows), tmp_path,
                   "testplans/power/test_battery.py::test_battery_low_alarm_and_hysteresis")
    verdicts = {name: list(position_outcomes(results, name).values()) for name in thresholds}
    assert verdicts == {"late": ["failed"], "early": ["failed"], "healthy": ["passed"], "inside": ["passed"]}
