"""Every UART knob is caught by the comms plans: set outside its spec on one position of a rack, the plan
test named in its Mutation row fails there; inside its spec, and on a healthy meter, every comms test
passes. And `rig run testplans/comms` passes on the six-position twin rack.

Both runs are real `rig run` processes (as `rig mutate` makes them), started together: each knob gets
its own position of one rack, so one twin run proves the whole catalogue."""

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
from rig.config import BENCHES_DIR, UartKnobs, load_bench
from rig.mutate import position_outcomes
from testplans.mutations import MUTATIONS, UART_MUTATIONS, Mutation

RACK = BENCHES_DIR / "twin-rack.yaml"
HEALTHY = "healthy"


def _name(mutation: Mutation, violating: bool) -> str:
    return f"{mutation.knob.rsplit('.', 1)[-1]}_{'outside' if violating else 'inside'}"


def _rows() -> list[tuple[str, Mutation | None, bool]]:
    """Positions of the knob rack: the healthy meter, every knob outside, and every knob inside whose
    inside value is not simply the healthy default (those are the healthy position already)."""
    meter = load_bench(RACK).meter
    rows: list[tuple[str, Mutation | None, bool]] = [(HEALTHY, None, False)]
    rows += [(_name(m, True), m, True) for m in UART_MUTATIONS]
    defaults = UartKnobs().model_dump()
    rows += [(_name(m, False), m, False) for m in UART_MUTATIONS
             if m.inside(meter) != defaults[m.knob.rsplit(".", 1)[-1]]]
    return rows


def _knob_bench(path: Path) -> list[tuple[str, Mutation | None, bool]]:
    rows = _rows()
    meter = load_bench(RACK).meter
    data = yaml.safe_load(RACK.read_text())
    data["name"] = "twin-uart-knobs"
    data["positions"] = [{"name": name, "address": f"{i + 1:012d}", "serial": "twin",
                          "expansion_tap": {"serial": "twin"}, "pulse_channel": i + 1}
                         for i, (name, _, _) in enumerate(rows)]
    overrides: dict[int, Any] = {}
    for i, (_, mutation, violating) in enumerate(rows):
        if mutation is not None:
            value = (mutation.outside if violating else mutation.inside)(meter)
            overrides[i] = {"uart": {mutation.knob.rsplit(".", 1)[-1]: value}}
    data["twin"] = {"seed": 1, "reference": {"channels": len(rows)}, "positions": overrides}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return rows


def _selection(rows: list[tuple[str, Mutation | None, bool]]) -> str:
    """-k: every comms test on the healthy and inside positions, only the catching tests on the others."""
    terms = []
    for name, mutation, violating in rows:
        if mutation is None or not violating:
            terms.append(name)
        else:
            functions = " or ".join(c.split("::")[-1] for c in mutation.catches)
            terms.append(f"({name} and ({functions}))")
    return " or ".join(terms)


def _rig_run(bench: Path, reports: Path, *extra: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", "testplans/comms", "--bench", str(bench),
                           "--reports", str(reports), *extra], capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    results: dict[str, Any] = json.loads((reports / "latest" / "results.json").read_text())
    results["exit_code"] = proc.returncode
    return results


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The knob rack and the healthy six-position rack, run side by side."""
    root = tmp_path_factory.mktemp("uart-knobs")
    rows = _knob_bench(root / "knobs.yaml")
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        knobs = pool.submit(_rig_run, root / "knobs.yaml", root / "knobs", "--", f"-k{_selection(rows)}")
        rack = pool.submit(_rig_run, RACK, root / "rack")
        return {"rows": rows, "knobs": knobs.result(), "rack": rack.result()}


def _outcomes(results: dict[str, Any], position: str) -> dict[str, str]:
    """Outcome per test item (node id) of one position, over the UART (the BLE items are tests/ble's)."""
    return position_outcomes(results, position, exclude_params=("ble",), exclude_tests=("test_ble.py::",))


def test_every_uart_knob_has_a_mutation_row_and_is_listed() -> None:
    knobs = {key for key, *_ in iter_knobs() if key.startswith("twin.meter.uart.")}
    assert knobs == {f"twin.meter.uart.{name}" for name in UartKnobs.model_fields}
    assert sorted(m.knob for m in UART_MUTATIONS) == sorted(knobs)
    assert set(UART_MUTATIONS) <= set(MUTATIONS)
    plans = Path(__file__).resolve().parents[2]
    for mutation in UART_MUTATIONS:
        for test in mutation.catches:
            path, function = test.split("::")
            assert f"def {function}(" in (plans / path).read_text(), test


@pytest.mark.parametrize("mutation", UART_MUTATIONS, ids=[m.knob.rsplit(".", 1)[-1] for m in UART_MUTATIONS])
def test_knob_outside_fails_its_catching_test(runs: dict[str, Any], mutation: Mutation) -> None:
    outcomes = _outcomes(runs["knobs"], _name(mutation, True))
    assert outcomes, "no test ran on the position"
    for test in mutation.catches:
        items = {k: v for k, v in outcomes.items() if k.startswith(test + "[")}
        assert items and "failed" in items.values(), (mutation.why, test, outcomes)


def test_healthy_and_inside_positions_pass_every_comms_test(runs: dict[str, Any]) -> None:
    for name, mutation, violating in runs["rows"]:
        if mutation is not None and violating:
            continue
        outcomes = _outcomes(runs["knobs"], name)
        assert len(outcomes) >= 20, (name, outcomes)
        assert set(outcomes.values()) == {"passed"}, (name, {k: v for k, v in outcomes.items() if v != "passed"})


def test_six_position_rack_passes(runs: dict[str, Any]) -> None:
    rack = runs["rack"]
    assert rack["exit_code"] == 0, [t for t in rack["tests"] if t["outcome"] != "passed"]
    positions = {f"P{i}" for i in range(1, 7)}
    for position in positions:
        outcomes = _outcomes(rack, position)
        assert len(outcomes) >= 20 and set(outcomes.values()) == {"passed"}, position
