"""The comms plans over BLE catch every BLE knob: on a rack of twin meters where each knob is set outside its
spec on one position, the plan test named in its Mutation row fails there; the healthy position passes every
comms test over both transports, and a position whose bench entry asks for pairing passes the pairing check.
A bench without BLE skips the BLE items, saying why; the security plan runs over BLE too and its knob fails
it there. Real `rig run` processes (as `rig mutate` makes them),
started together."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rig.config import BENCHES_DIR, load_bench
from rig.mutate import position_outcomes
from testplans.mutations import BLE_MUTATIONS, SECURITY_MUTATIONS, Mutation

ROOT = Path(__file__).resolve().parents[2]
RACK = BENCHES_DIR / "twin-rack.yaml"
NO_BLE = BENCHES_DIR / "twin-ct-0.5S.yaml"
HEALTHY = "healthy"
PAIRING = "pairing"


def _name(mutation: Mutation) -> str:
    return f"{mutation.knob.rsplit('.', 1)[-1]}_outside"


def _knob_bench(path: Path) -> list[tuple[str, Mutation | None]]:
    rows: list[tuple[str, Mutation | None]] = [(HEALTHY, None), (PAIRING, None)]
    rows += [(_name(m), m) for m in BLE_MUTATIONS]
    meter = load_bench(RACK).meter
    data = yaml.safe_load(RACK.read_text())
    data["name"] = "twin-ble-knobs"
    data["positions"] = [
        {"name": name, "address": f"{i + 1:012d}", "serial": "twin", "pulse_channel": i + 1,
         "ble": {"name": f"MTR-{i + 1:012d}", "backend": "twin", "pairing": name == PAIRING}}
        for i, (name, _) in enumerate(rows)
    ]
    overrides = {i: {"ble": {m.knob.rsplit(".", 1)[-1]: bool(m.outside(meter))}}
                 for i, (_, m) in enumerate(rows) if m is not None}
    data["twin"] = {"seed": 1, "reference": {"channels": len(rows)}, "positions": overrides}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return rows


def _selection(rows: list[tuple[str, Mutation | None]]) -> str:
    """-k: every comms test on the healthy position, the BLE plan on the pairing one, only the catching tests
    on the others."""
    terms = [HEALTHY, f"({PAIRING} and test_ble)"]
    for name, mutation in rows:
        if mutation is not None:
            terms.append(f"({name} and ({' or '.join(c.split('::')[-1] for c in mutation.catches)}))")
    return " or ".join(terms)


def _rig_run(plan: str, bench: Path, reports: Path, *extra: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", plan, "--bench", str(bench), "--reports",
                           str(reports), *extra], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    results: dict[str, Any] = json.loads((reports / "latest" / "results.json").read_text())
    results["exit_code"] = proc.returncode
    results["stdout"] = proc.stdout
    return results


SECURITY_KNOB = next(m for m in SECURITY_MUTATIONS if m.knob.endswith(".mac_not_checked"))


def _security_bench(path: Path) -> str:
    """Two BLE positions for the security plan: a healthy meter and one that does not check MACs."""
    data = yaml.safe_load(RACK.read_text())
    data["name"] = "twin-ble-security"
    data["positions"] = [{"name": name, "address": f"{i + 1:012d}", "serial": "twin", "pulse_channel": i + 1,
                          "ble": {"name": f"MTR-{i + 1:012d}", "backend": "twin"}}
                         for i, name in enumerate((HEALTHY, "mac_not_checked"))]
    data["twin"] = {"seed": 1, "reference": {"channels": 2}, "positions": {1: {"security": {"mac_not_checked": True}}}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    catches = " or ".join(c.split("::")[-1] for c in SECURITY_KNOB.catches)
    return f"-k({HEALTHY} and ble) or (mac_not_checked and ble and ({catches}))"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("ble-knobs")
    rows = _knob_bench(root / "knobs.yaml")
    selection = _security_bench(root / "security.yaml")
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        knobs = pool.submit(_rig_run, "testplans/comms", root / "knobs.yaml", root / "knobs", "--",
                            f"-k{_selection(rows)}")
        no_ble = pool.submit(_rig_run, "testplans/comms/test_ble.py", NO_BLE, root / "no-ble")
        security = pool.submit(_rig_run, "testplans/security", root / "security.yaml", root / "security", "--",
                               selection)
        return {"rows": rows, "knobs": knobs.result(), "no_ble": no_ble.result(), "security": security.result()}


def _outcomes(results: dict[str, Any], position: str) -> dict[str, str]:
    return position_outcomes(results, position)


@pytest.mark.parametrize("mutation", BLE_MUTATIONS, ids=[m.knob.rsplit(".", 1)[-1] for m in BLE_MUTATIONS])
def test_knob_outside_fails_its_catching_test(runs: dict[str, Any], mutation: Mutation) -> None:
    outcomes = _outcomes(runs["knobs"], _name(mutation))
    assert outcomes, "no test ran on the position"
    for test in mutation.catches:
        items = {k: v for k, v in outcomes.items() if k.startswith(test + "[")}
        assert items and "failed" in items.values(), (mutation.why, test, outcomes)


def test_healthy_position_passes_every_comms_test_over_both_transports(runs: dict[str, Any]) -> None:
    outcomes = _outcomes(runs["knobs"], HEALTHY)
    assert {v for v in outcomes.values()} <= {"passed", "skipped"}, {k: v for k, v in outcomes.items()
                                                                      if v not in ("passed", "skipped")}
    ble = [k for k, v in outcomes.items() if v == "passed" and ("-ble" in k or "[ble-" in k or "test_ble.py" in k)]
    uart = [k for k, v in outcomes.items() if v == "passed" and "uart-" in k]
    assert len(ble) >= 20 and len(uart) >= 20, (len(ble), len(uart))


def test_pairing_is_checked_when_the_bench_file_asks_for_it(runs: dict[str, Any]) -> None:
    outcomes = _outcomes(runs["knobs"], PAIRING)
    pairing = [v for k, v in outcomes.items() if "test_pairing_required" in k]
    assert pairing == ["passed"], outcomes
    assert set(outcomes.values()) == {"passed"}, outcomes
    healthy = _outcomes(runs["knobs"], HEALTHY)
    assert [v for k, v in healthy.items() if "test_pairing_required" in k] == ["skipped"]


def test_a_bench_without_ble_skips_the_ble_items_saying_why(runs: dict[str, Any]) -> None:
    no_ble = runs["no_ble"]
    assert no_ble["exit_code"] == 0
    assert no_ble["tests"] and {t["outcome"] for t in no_ble["tests"]} == {"skipped"}
    assert "the bench file gives no ble entry (Bluetooth LE) for this position" in no_ble["stdout"]


def test_the_security_plan_runs_over_ble_and_catches_its_knob_there(runs: dict[str, Any]) -> None:
    security = runs["security"]
    healthy = _outcomes(security, HEALTHY)
    assert len(healthy) >= 15 and set(healthy.values()) == {"passed"}, healthy
    assert all("[ble-" in test for test in healthy), "only the BLE items were selected"
    defective = _outcomes(security, "mac_not_checked")
    for test in SECURITY_KNOB.catches:
        items = {k: v for k, v in defective.items() if k.startswith(test + "[ble-")}
        assert items and "failed" in items.values(), (test, defective)
