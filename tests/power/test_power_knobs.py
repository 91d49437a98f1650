"""Every power knob is caught by the power plans: set outside its spec on one position of a rack, the plan
test named in its Mutation row fails there; inside its spec, and on a healthy meter, every power test
passes. And `rig run testplans/power` passes on the default twin, its 72 h outage in seconds of wall time.

Both runs are real `rig run` processes (as `rig mutate` makes them), started together: each knob gets its
own position of one rack, so one twin run proves the whole catalogue."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rig.cli import iter_knobs
from rig.config import BENCHES_DIR, DEFAULT_BENCH, PowerKnobs, load_bench
from rig.mutate import position_outcomes
from testplans.mutations import MUTATIONS, POWER_MUTATIONS, Mutation

RACK = BENCHES_DIR / "twin-rack.yaml"
HEALTHY = "healthy"
PLAN = "testplans/power"


def _name(mutation: Mutation, violating: bool) -> str:
    return f"{mutation.knob.rsplit('.', 1)[-1]}_{'outside' if violating else 'inside'}"


def _rows() -> list[tuple[str, Mutation | None, bool]]:
    """The healthy meter, every knob outside, and every knob inside whose inside value is not simply the
    healthy default (those are the healthy position already)."""
    meter = load_bench(RACK).meter
    rows: list[tuple[str, Mutation | None, bool]] = [(HEALTHY, None, False)]
    rows += [(_name(m, True), m, True) for m in POWER_MUTATIONS]
    defaults = PowerKnobs().model_dump()
    rows += [(_name(m, False), m, False) for m in POWER_MUTATIONS
             if m.inside(meter) != defaults[m.knob.rsplit(".", 1)[-1]]]
    return rows


def _knob_bench(path: Path) -> list[tuple[str, Mutation | None, bool]]:
    rows = _rows()
    meter = load_bench(RACK).meter
    data = yaml.safe_load(RACK.read_text())
    data["name"] = "twin-power-knobs"
    data["positions"] = [{"name": name, "address": f"{i + 1:012d}", "serial": "twin", "pulse_channel": i + 1}
                         for i, (name, _, _) in enumerate(rows)]
    overrides: dict[int, Any] = {}
    for i, (_, mutation, violating) in enumerate(rows):
        if mutation is not None:
            value = (mutation.outside if violating else mutation.inside)(meter)
            overrides[i] = {"power": {mutation.knob.rsplit(".", 1)[-1]: value}}
    data["twin"] = {"seed": 1, "reference": {"channels": len(rows)}, "positions": overrides}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return rows


def _selection(rows: list[tuple[str, Mutation | None, bool]]) -> str:
    """-k: every power test on the healthy and inside positions, only the catching tests on the others."""
    terms = []
    for name, mutation, violating in rows:
        if mutation is None or not violating:
            terms.append(name)
        else:
            functions = " or ".join(c.split("::")[-1] for c in mutation.catches)
            terms.append(f"({name} and ({functions}))")
    return " or ".join(terms)


def _rig_run(bench: Path, reports: Path, *extra: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", PLAN, "--bench", str(bench), "--reports",
                           str(reports), *extra], capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    results: dict[str, Any] = json.loads((reports / "latest" / "results.json").read_text())
    results["exit_code"] = proc.returncode
    return results


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The knob rack and the default one-position twin, run side by side."""
    root = tmp_path_factory.mktemp("power-knobs")
    rows = _knob_bench(root / "knobs.yaml")
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        knobs = pool.submit(_rig_run, root / "knobs.yaml", root / "knobs", "--", f"-k{_selection(rows)}")
        healthy = pool.submit(_rig_run, DEFAULT_BENCH, root / "healthy")
        return {"rows": rows, "knobs": knobs.result(), "healthy": healthy.result()}


def _outcomes(results: dict[str, Any], position: str) -> dict[str, str]:
    """Outcome per test item (node id) of one position."""
    return position_outcomes(results, position)


def test_every_power_knob_has_a_mutation_row_and_is_listed() -> None:
    knobs = {key for key, *_ in iter_knobs() if key.startswith("twin.meter.power.")}
    assert knobs == {f"twin.meter.power.{name}" for name in PowerKnobs.model_fields}
    assert knobs == {f"twin.meter.power.{name}" for name in (
        "energy_lost_on_power_down", "no_power_down_event", "event_end_time_wrong", "rtc_drift_ppm_on_battery",
        "battery_alarm_threshold_v", "battery_drain_ua", "counts_during_dip", "slow_restart_s")}, "the issue's names"
    assert sorted(m.knob for m in POWER_MUTATIONS) == sorted(knobs)
    assert set(POWER_MUTATIONS) <= set(MUTATIONS)
    plans = Path(__file__).resolve().parents[2]
    for mutation in POWER_MUTATIONS:
        for test in mutation.catches:
            path, function = test.split("::")
            assert f"def {function}(" in (plans / path).read_text(), test


@pytest.mark.parametrize("mutation", POWER_MUTATIONS, ids=[m.knob.rsplit(".", 1)[-1] for m in POWER_MUTATIONS])
def test_knob_outside_fails_its_catching_test(runs: dict[str, Any], mutation: Mutation) -> None:
    outcomes = _outcomes(runs["knobs"], _name(mutation, True))
    assert outcomes, "no test ran on the position"
    for test in mutation.catches:
        items = {k: v for k, v in outcomes.items() if k.startswith(test + "[")}
        assert items and "failed" in items.values(), (mutation.why, test, outcomes)


def test_healthy_and_inside_positions_pass_every_power_test(runs: dict[str, Any]) -> None:
    for name, mutation, violating in runs["rows"]:
        if mutation is not None and violating:
            continue
        outcomes = _outcomes(runs["knobs"], name)
        assert len(outcomes) >= 11, (name, outcomes)
        assert set(outcomes.values()) == {"passed"}, (name, {k: v for k, v in outcomes.items() if v != "passed"})


def test_default_twin_passes_and_its_72h_outage_takes_seconds(runs: dict[str, Any]) -> None:
    healthy = runs["healthy"]
    assert healthy["exit_code"] == 0, [t for t in healthy["tests"] if t["outcome"] != "passed"]
    assert len(healthy["tests"]) >= 11
    assert healthy["bench_s"] > 72 * 3600, "the plan's bench time holds the 72 h outage"
    assert healthy["wall_s"] < 30.0
