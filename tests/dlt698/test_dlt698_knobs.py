"""Every DL/T 698.45 knob of the twin is caught by the DL/T 698.45 plans: set outside its spec on one position
of a rack, the plan test named in its Mutation row (or, for the knobs given as text, in `TEXT_KNOBS`) fails
there; inside its spec, and on a healthy meter, every DL/T 698.45 test passes. And `rig run testplans/dlt698`
passes on the six-position twin rack, over the UART and BLE.

The runs are real `rig run` processes (as `rig mutate` makes them), started together: each knob gets its own
position of one rack, so one twin run proves the whole catalogue. The software-upgrade knobs get their own small
rack that runs only the upgrade plan (its power losses reach every meter of a rack, and it needs the twin's
signed image on each position); the other knob rack leaves that plan out."""

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
from rig.config import BENCHES_DIR, load_bench
from rig.mutate import position_outcomes
from testplans.mutations import DLT698_FREEZE, DLT698_MUTATIONS, DLT698_UPGRADE, MUTATIONS

DLT698_EVENTS = "testplans/dlt698/test_events.py"

RACK = BENCHES_DIR / "twin-rack.yaml"
HEALTHY = "healthy"
PREFIX = "twin.meter.dlt698."
# Knobs whose values are words: (name, value, the tests that must fail).
TEXT_KNOBS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("freeze_boundary", "missing", (f"{DLT698_FREEZE}::test_daily_freeze_across_midnight",)),
    ("freeze_boundary", "duplicated", (f"{DLT698_FREEZE}::test_daily_freeze_across_midnight",)),
    ("reports", "never", (f"{DLT698_EVENTS}::test_power_down_event_recorded_and_reported",)),
    ("reports", "twice", (f"{DLT698_EVENTS}::test_power_down_event_recorded_and_reported",)),
)
# The upgrade (F001 file transfer) knobs: caught by the upgrade plan alone, on their own rack.
UPGRADE_MUTATIONS = tuple(m for m in DLT698_MUTATIONS if all(t.startswith(DLT698_UPGRADE) for t in m.catches))

Row = tuple[str, str | None, Any, tuple[str, ...]]  # position name, knob, value, tests that must fail


def _rows() -> list[Row]:
    meter = load_bench(RACK).meter
    rows: list[Row] = [(HEALTHY, None, None, ())]
    for m in DLT698_MUTATIONS:
        if m in UPGRADE_MUTATIONS:
            continue
        knob = m.knob.removeprefix(PREFIX)
        rows.append((f"{knob}_outside", knob, m.outside(meter), m.catches))
        rows.append((f"{knob}_inside", knob, m.inside(meter), ()))
    rows += [(f"{knob}_{value}", knob, value, catches) for knob, value, catches in TEXT_KNOBS]
    return rows


def _upgrade_rows() -> list[Row]:
    meter = load_bench(RACK).meter
    return [(HEALTHY, None, None, ()), *((m.knob.removeprefix(PREFIX), m.knob.removeprefix(PREFIX),
                                          m.outside(meter), m.catches) for m in UPGRADE_MUTATIONS)]


def _knob_bench(path: Path, rows: list[Row], *, upgrade: bool = False) -> list[Row]:
    data = yaml.safe_load(RACK.read_text())
    data["name"] = "twin-dlt698-upgrade-knobs" if upgrade else "twin-dlt698-knobs"
    data["positions"] = [{"name": name, "address": f"{i + 1:012d}", "serial": "twin", "pulse_channel": i + 1,
                          "protocol": "both", **({"dlt698": {"upgrade": {"image": "twin"}}} if upgrade else {})}
                         for i, (name, *_) in enumerate(rows)]
    overrides = {i: {"dlt698": {knob: value}} for i, (_, knob, value, _) in enumerate(rows) if knob is not None}
    data["twin"] = {"seed": 1, "reference": {"channels": len(rows)}, "positions": overrides}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return rows


def _rig_run(bench: Path, reports: Path, *extra: str, plans: str = "testplans/dlt698") -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", plans, "--bench", str(bench),
                           "--reports", str(reports), *extra], capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    results: dict[str, Any] = json.loads((reports / "latest" / "results.json").read_text())
    results["exit_code"] = proc.returncode
    return results


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The knob rack (UART) and the healthy six-position rack (UART and BLE), run side by side."""
    root = tmp_path_factory.mktemp("dlt698-knobs")
    rows = _knob_bench(root / "knobs.yaml", _rows())
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        knobs = pool.submit(_rig_run, root / "knobs.yaml", root / "knobs", "--", f"--ignore={DLT698_UPGRADE}")
        rack = pool.submit(_rig_run, RACK, root / "rack")
        return {"rows": rows, "knobs": knobs.result(), "rack": rack.result()}


def test_every_dlt698_knob_is_caught_or_listed() -> None:
    knobs = {key.removeprefix(PREFIX) for key, *_ in iter_knobs() if key.startswith(PREFIX)}
    covered = {m.knob.removeprefix(PREFIX) for m in DLT698_MUTATIONS} | {k for k, *_ in TEXT_KNOBS}
    assert knobs == covered
    assert set(DLT698_MUTATIONS) <= set(MUTATIONS)
    assert {m.knob.removeprefix(PREFIX) for m in UPGRADE_MUTATIONS} == {
        "accepts_corrupt_image", "loses_old_image_on_interruption", "version_not_updated"}
    plans = Path(__file__).resolve().parents[2]
    for _, _, _, catches in _rows() + _upgrade_rows():
        for test in catches:
            path, function = test.split("::")
            assert f"def {function}(" in (plans / path).read_text(), test


@pytest.mark.slow
@pytest.mark.parametrize("row", [r for r in _rows() if r[3]], ids=[r[0] for r in _rows() if r[3]])
def test_knob_outside_fails_its_catching_test(runs: dict[str, Any], row: Row) -> None:
    name, knob, value, catches = row
    outcomes = position_outcomes(runs["knobs"], name)
    assert outcomes, "no test ran on the position"
    for test in catches:
        items = {k: v for k, v in outcomes.items() if k.startswith(test + "[")}
        assert items and "failed" in items.values(), (knob, value, test, outcomes)


@pytest.mark.slow
def test_healthy_and_inside_positions_pass_every_dlt698_test(runs: dict[str, Any]) -> None:
    for name, _, _, catches in runs["rows"]:
        if catches:
            continue
        outcomes = position_outcomes(runs["knobs"], name, exclude_params=("ble",))  # the knob rack has no BLE
        assert len(outcomes) >= 10, (name, outcomes)
        assert set(outcomes.values()) == {"passed"}, (name, {k: v for k, v in outcomes.items() if v != "passed"})


@pytest.mark.slow
def test_six_position_rack_passes_over_uart_and_ble(runs: dict[str, Any]) -> None:
    rack = runs["rack"]
    assert rack["exit_code"] == 0, [t for t in rack["tests"] if t["outcome"] != "passed"]
    for position in (f"P{i}" for i in range(1, 7)):
        for transport in ("uart", "ble"):
            outcomes = {k: v for k, v in position_outcomes(rack, position).items() if f"[{transport}-" in k}
            assert len(outcomes) >= 10 and set(outcomes.values()) == {"passed"}, (position, transport, outcomes)


@pytest.fixture(scope="module")
def upgrade_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The upgrade plan alone on a rack of a healthy meter and one meter per upgrade knob (UART)."""
    root = tmp_path_factory.mktemp("dlt698-upgrade-knobs")
    rows = _knob_bench(root / "upgrade.yaml", _upgrade_rows(), upgrade=True)
    return {"rows": rows, "run": _rig_run(root / "upgrade.yaml", root / "upgrade", plans=DLT698_UPGRADE)}


@pytest.mark.slow
@pytest.mark.parametrize("row", _upgrade_rows()[1:], ids=[r[0] for r in _upgrade_rows()[1:]])
def test_upgrade_knob_fails_its_catching_test(upgrade_run: dict[str, Any], row: Row) -> None:
    name, knob, _, catches = row
    outcomes = position_outcomes(upgrade_run["run"], name)
    for test in catches:
        items = {k: v for k, v in outcomes.items() if k.startswith(test + "[")}
        assert items and "failed" in items.values(), (knob, test, outcomes)


@pytest.mark.slow
def test_healthy_meter_passes_the_upgrade_plan(upgrade_run: dict[str, Any]) -> None:
    outcomes = position_outcomes(upgrade_run["run"], HEALTHY)
    assert len(outcomes) == 4 and set(outcomes.values()) == {"passed"}, outcomes
