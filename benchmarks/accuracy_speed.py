"""Accuracy plan speed on the twin, as ratios (run: `python benchmarks/accuracy_speed.py`).

- bench_s / wall_s of the full class-1 accuracy plan on the default twin: target >= 2000, wall < 20 s;
- six positions (`twin-rack.yaml`) against one, in the same run: target < 1.5 x the wall time;
- the plan's bench time against the physical minimum (settling plus the minimum pulses per point).
Exit 0 when every target holds, 1 otherwise. Numbers are printed either way.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

from rig.config import BENCHES_DIR, load_bench
from rig.procedures import DEFAULT_SETTLE_S, pulses_for_gate
from testplans.accuracy.helpers import REPEATABILITY_READINGS, constant_test_pulses
from testplans.specs import accuracy as spec

REPEATS = 3


def run_plan(bench: Path, reports: Path) -> dict[str, float]:
    """One `rig run testplans/accuracy`; its results.json numbers."""
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", "testplans/accuracy", "--bench", str(bench),
                           "--reports", str(reports)], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"plan failed on {bench.name}: {proc.stderr.strip().splitlines()[-1:]}")
    results = json.loads((reports / "latest" / "results.json").read_text())
    return {"wall_s": results["wall_s"], "bench_s": results["bench_s"]}


def physical_minimum_s(bench: Path) -> float:
    """Settle plus the minimum gate (and starting, creep, dosing times) for every point of the plan."""
    meter = load_bench(bench).meter
    c = meter.constant_imp_per_kwh

    def gate_s(voltage: float, current: float, pf: spec.PowerFactor, readings: int) -> float:
        power = voltage * current * pf.cos_phi
        pulse_s = 3.6e6 / (power * c)
        return DEFAULT_SETTLE_S + readings * pulses_for_gate(power, c) * pulse_s

    total = sum(gate_s(meter.un_v, p.current_a, p.pf, spec.MIN_READINGS_PER_POINT) for p in spec.load_points(meter))
    total += DEFAULT_SETTLE_S + spec.starting_time_s(meter) + DEFAULT_SETTLE_S + spec.creep_duration_s(meter)
    for label in ("1", "0.5L"):
        total += gate_s(meter.un_v, meter.ib_a, spec.power_factor(label), REPEATABILITY_READINGS)
    for name in ("voltage", "frequency"):
        test = spec.influence_test(meter, name)
        for pf in test.pfs:
            settings = [meter.un_v if test.varies != "voltage" else s for s in (None, *test.settings)]
            total += sum(gate_s(v or meter.un_v, test.current_a, pf, spec.MIN_READINGS_PER_POINT) for v in settings)
    limit = spec.error_limit_pct(meter, meter.imax_a, spec.power_factor("1")).value_pct
    total += DEFAULT_SETTLE_S + constant_test_pulses(limit) * 3.6e6 / c / (meter.un_v * meter.imax_a)  # the dose
    return total


def main() -> int:
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        single = [run_plan(BENCHES_DIR / "twin.yaml", Path(tmp) / f"one-{i}") for i in range(REPEATS)]
        rack = [run_plan(BENCHES_DIR / "twin-rack.yaml", Path(tmp) / f"six-{i}") for i in range(REPEATS)]
    one_wall = min(r["wall_s"] for r in single)
    six_wall = min(r["wall_s"] for r in rack)
    bench_s = single[0]["bench_s"]
    speedup = bench_s / one_wall
    print(f"class 1, one position: bench {bench_s:.0f} s in {one_wall:.2f} s wall -> {speedup:.0f}x (target >= 2000)")
    ok &= speedup >= 2000 and one_wall < 20
    ratio = six_wall / one_wall
    print(f"six positions: {six_wall:.2f} s wall = {ratio:.2f} x one position (target < 1.5)")
    ok &= ratio < 1.5
    minimum = physical_minimum_s(BENCHES_DIR / "twin.yaml")
    gap = (bench_s - minimum) / minimum * 100
    print(f"planned bench time {bench_s:.0f} s vs physical minimum {minimum:.0f} s: gap {gap:+.1f} %")
    ok &= math.isfinite(gap)
    print("OK" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
