"""The register plans (testplans/registers) pass on the healthy twin, on one position and on the six-position
rack, and catch every knob of their catalogue (testplans/registers/mutations.py): set outside on one position
of a knob rack, the tests named in its row fail there; set inside, every test passes there.

Three real `rig run` processes, started together: the knob rack (a healthy position and one position per knob
value), the six-position twin rack and the one-position default twin."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rig.config import BENCHES_DIR, DEFAULT_BENCH, load_bench
from rig.mutate import position_outcomes
from testplans.registers.mutations import MUTATIONS, REGISTERS

ROOT = Path(__file__).resolve().parents[2]
RACK = BENCHES_DIR / "twin-rack.yaml"
PLAN = "testplans/registers"
HEALTHY = "healthy"
RELAY_PLAN = "testplans/security/test_relay.py"
TARIFF_PLAN = "testplans/registers/test_tariffs.py"

Row = tuple[str, str | None, Any, tuple[str, ...]]  # position name, knob, value, tests that must fail


def _tariff_knob(catches: tuple[str, ...]) -> bool:
    return any(c.startswith(TARIFF_PLAN) for c in catches)


def _rows(rack: str) -> list[Row]:
    """The positions of a knob rack: 'tariffs' (the tariff knobs: their day runs on a small rack of its own) or
    'knobs' (every other knob)."""
    meter = load_bench(RACK).meter
    rows: list[Row] = [(HEALTHY, None, None, ())]
    for m in MUTATIONS:
        if _tariff_knob(m.catches) != (rack == "tariffs"):
            continue
        knob = m.knob.removeprefix(REGISTERS + ".")
        default = m.inside(meter) == 0.0 and m.boundary is None  # an on/off knob: inside is the healthy meter
        rows.append((f"{knob}_outside", knob, m.outside(meter), m.catches))
        if not default:
            rows.append((f"{knob}_inside", knob, m.inside(meter), ()))
    return rows


ROWS = [(rack, row) for rack in ("knobs", "tariffs") for row in _rows(rack)]


def _knob_bench(path: Path, rows: list[Row]) -> Path:
    data = yaml.safe_load(RACK.read_text())
    data["name"] = f"twin-registers-{path.stem}"
    data["positions"] = [{"name": name, "address": f"{i + 1:012d}", "serial": "twin", "pulse_channel": i + 1}
                         for i, (name, *_) in enumerate(rows)]
    overrides = {i: {"registers": {knob: value}} for i, (_, knob, value, _) in enumerate(rows) if knob is not None}
    data["twin"] = {"seed": 1, "reference": {"channels": len(rows)}, "positions": overrides}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _rig_run(reports: Path, plans: tuple[str, ...], *args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", *plans, "--reports", str(reports), *args],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    results: dict[str, Any] = json.loads(((reports / "latest").resolve() / "results.json").read_text())
    results["exit_code"] = proc.returncode
    results["output"] = proc.stdout[-4000:]
    return results


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, concurrent.futures.Future[dict[str, Any]]]]:
    """The four runs, two at a time."""
    root = tmp_path_factory.mktemp("registers")
    knobs = _knob_bench(root / "knobs.yaml", _rows("knobs"))
    tariffs = _knob_bench(root / "tariffs.yaml", _rows("tariffs"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        yield {
            # The tariff plan's day is for the whole rack: it runs on the tariff knob rack only. The relay's knob
            # is caught by the security plan's relay test: it runs on its position and the healthy one, over the
            # UART.
            "tariffs": pool.submit(_rig_run, root / "tariffs", (TARIFF_PLAN,), "--bench", str(tariffs)),
            "knobs": pool.submit(_rig_run, root / "knobs", (PLAN, RELAY_PLAN), "--bench", str(knobs), "--",
                                 "-k(not test_tariff and not test_relay) or ((healthy or relay_welded) and uart and "
                                 "follows)"),
            "rack": pool.submit(_rig_run, root / "rack", (PLAN,), "--bench", str(RACK)),
            "default": pool.submit(_rig_run, root / "default", (PLAN,), "--bench", str(DEFAULT_BENCH)),
        }


def _functions(outcomes: dict[str, str]) -> dict[str, str]:
    """Outcome per test function (failed when any item failed)."""
    out: dict[str, str] = {}
    for test, outcome in outcomes.items():
        function = test.split("[", 1)[0]
        if out.get(function) != "failed":
            out[function] = outcome
    return out


@pytest.mark.parametrize("bench_name", ["default", "rack"])
def test_healthy_twin_passes_the_register_plans(runs: dict[str, Any], bench_name: str) -> None:
    results = runs[bench_name].result()
    assert results["exit_code"] == 0, results["output"]
    assert all(t["outcome"] == "passed" for t in results["tests"]), results["output"]
    positions = 6 if bench_name == "rack" else 1
    assert len(results["tests"]) >= 2 * positions


@pytest.mark.parametrize(("rack", "row"), ROWS, ids=[f"{rack}-{row[0]}" for rack, row in ROWS])
def test_each_knob_is_caught_on_its_position_and_only_there(runs: dict[str, Any], rack: str, row: Row) -> None:
    name, knob, _, catches = row
    outcomes = _functions(position_outcomes(runs[rack].result(), name))
    assert outcomes, f"no test ran on position {name}"
    for test, outcome in outcomes.items():
        if test in catches:
            assert outcome == "failed", (name, test, outcomes)
        else:
            assert outcome == "passed", (name, test, outcomes)
    assert knob is None or catches == () or any(o == "failed" for o in outcomes.values())
