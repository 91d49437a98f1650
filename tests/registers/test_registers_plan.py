"""The register plans (testplans/registers) pass on the healthy twin, on one position and on the six-position
rack, and catch every knob of their catalogue (testplans/registers/mutations.py): set outside on one position
of a knob rack, the tests named in its row fail there; set inside, every test passes there.

Four real `rig run` processes (tests/conftest.py `rig_run`), two at a time: the tariff knob rack (its day of bench
time on a small rack of its own), the rack of every other knob (a healthy position and one position per knob
value), the six-position twin rack and the one-position default twin."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rig.config import BENCHES_DIR, DEFAULT_BENCH, load_bench
from testplans.registers.mutations import MUTATIONS, REGISTERS

RACK = BENCHES_DIR / "twin-rack.yaml"
PLAN = "testplans/registers"
HEALTHY = "healthy"
RELAY_PLAN = "testplans/security/test_relay.py"
TARIFF_PLAN = "testplans/registers/test_tariffs.py"
RACK_POSITIONS = 6

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
    if rack == "tariffs":  # six positions: the tariff day on a six-position rack, healthy meters beside the knobs
        rows += [(f"{HEALTHY}{n}", None, None, ()) for n in range(2, 2 + max(0, RACK_POSITIONS - len(rows)))]
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


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, rig_run: Callable[..., Any]
         ) -> Iterator[dict[str, concurrent.futures.Future[Any]]]:
    """The four runs, two at a time."""
    root = tmp_path_factory.mktemp("registers")
    knobs = _knob_bench(root / "knobs.yaml", _rows("knobs"))
    tariffs = _knob_bench(root / "tariffs.yaml", _rows("tariffs"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        yield {
            # The tariff plan's day is for the whole rack: it runs on the tariff knob rack only. The relay's knob
            # is caught by the security plan's relay test: it runs on its position and the healthy one, over the
            # UART.
            "tariffs": pool.submit(rig_run, TARIFF_PLAN, "--bench", str(tariffs), reports=root / "tariffs"),
            "knobs": pool.submit(rig_run, PLAN, RELAY_PLAN, "--bench", str(knobs), "--",
                                 "-k(not test_tariff and not test_relay) or ((healthy or relay_welded) and uart and "
                                 "follows)", reports=root / "knobs"),
            # The tariff day on six positions is the tariff knob rack's (a day of bench time costs per meter).
            "rack": pool.submit(rig_run, PLAN, "--bench", str(RACK), "--", "-knot test_tariff", reports=root / "rack"),
            "default": pool.submit(rig_run, PLAN, "--bench", str(DEFAULT_BENCH), reports=root / "default"),
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
    run = runs[bench_name].result()
    assert run.exit_code == 0, run.output[-4000:]
    assert all(t["outcome"] == "passed" for t in run.tests), run.output[-4000:]
    positions = RACK_POSITIONS if bench_name == "rack" else 1
    assert len(run.tests) >= 6 * positions  # every register test on every position (the rack: but the tariffs)


@pytest.mark.parametrize(("rack", "row"), ROWS, ids=[f"{rack}-{row[0]}" for rack, row in ROWS])
def test_each_knob_is_caught_on_its_position_and_only_there(runs: dict[str, Any], rack: str, row: Row) -> None:
    name, knob, _, catches = row
    outcomes = _functions(runs[rack].result().outcomes(name))
    assert outcomes, f"no test ran on position {name}"
    for test, outcome in outcomes.items():
        if test in catches:
            assert outcome == "failed", (name, test, outcomes)
        else:
            assert outcome == "passed", (name, test, outcomes)
    assert knob is None or catches == () or any(o == "failed" for o in outcomes.values())
