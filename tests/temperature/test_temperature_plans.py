"""The temperature and RTC-on-mains plans pass on the healthy twin in a climate chamber (one position; the
temperature plan on a six-position rack too) and catch every knob of their catalogues
(testplans/temperature/mutations.py, testplans/rtc/mutations.py): set outside on one position of a knob rack,
the tests named in its row fail there; the inside values (on one position) pass, and so does every healthy
position.

Four real `rig run` processes, two at a time, each on the twin's virtual clock (a day and more of bench time
in tens of seconds of wall time)."""

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

from rig.config import BENCHES_DIR, load_bench
from rig.mutate import position_outcomes
from testplans.mutations import Mutation
from testplans.rtc.mutations import MUTATIONS as RTC_MUTATIONS
from testplans.temperature.mutations import CLIMATE
from testplans.temperature.mutations import MUTATIONS as TEMPERATURE_MUTATIONS

ROOT = Path(__file__).resolve().parents[2]
ONE = BENCHES_DIR / "twin-chamber.yaml"
RACK = BENCHES_DIR / "twin-chamber-rack.yaml"
TEMPERATURE = "testplans/temperature"
RTC = "testplans/rtc"
HEALTHY = "healthy"
INSIDE = "inside"

pytestmark = pytest.mark.slow


def _knob(m: Mutation) -> str:
    return m.knob.removeprefix(CLIMATE + ".")


MUTATIONS = {_knob(m): m for m in (*TEMPERATURE_MUTATIONS, *RTC_MUTATIONS)}
Row = tuple[str, dict[str, float], tuple[str, ...]]  # position name, climate knobs, tests that must fail there


def _rows(knobs: list[str], extra_healthy: int) -> list[Row]:
    """A knob rack: healthy positions, one per knob outside, and one with every knob inside."""
    meter = load_bench(RACK).meter
    rows: list[Row] = [(HEALTHY, {}, ())] if extra_healthy else []
    rows += [(f"{knob}_outside", {knob: MUTATIONS[knob].outside(meter)}, MUTATIONS[knob].catches) for knob in knobs]
    rows.append((INSIDE, {knob: MUTATIONS[knob].inside(meter) for knob in knobs}, ()))
    rows += [(f"{HEALTHY}{n + 2}", {}, ()) for n in range(extra_healthy - 1)]
    return rows


def _knob_bench(path: Path, rows: list[tuple[str, dict[str, float], tuple[str, ...]]]) -> Path:
    data = yaml.safe_load(RACK.read_text())
    data["name"] = path.stem
    data["positions"] = [{"name": name, "address": f"{i + 1:012d}", "serial": "twin", "pulse_channel": i + 1}
                         for i, (name, _, _) in enumerate(rows)]
    overrides = {i: {"climate": knobs} for i, (_, knobs, _) in enumerate(rows) if knobs}
    data["twin"] = {"seed": 1, "reference": {"channels": len(rows)}, "positions": overrides}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _rig_run(reports: Path, *args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", *args, "--reports", str(reports)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    results: dict[str, Any] = json.loads(((reports / "latest").resolve() / "results.json").read_text())
    results["exit_code"] = proc.returncode
    results["output"] = proc.stdout[-4000:]
    return results


# The temperature plan's knob rack has six positions (two healthy). The RTC plan's gates are a day and a quarter
# of bench time on mains, every meter stepped each second: each of its knobs gets a run of its own test on two
# positions (the knob outside, inside), and its healthy meter is the one-position run's.
RUNS: dict[str, tuple[str, list[str], int]] = {
    "temperature": (TEMPERATURE, [_knob(m) for m in TEMPERATURE_MUTATIONS], 2),
    **{_knob(m): (m.catches[0], [_knob(m)], 0) for m in RTC_MUTATIONS},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, concurrent.futures.Future[dict[str, Any]]]]:
    """The one-position healthy run and one knob rack per plan, two at a time."""
    root = tmp_path_factory.mktemp("climate")
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {"one": pool.submit(_rig_run, root / "one", TEMPERATURE, RTC, "--bench", str(ONE))}
        for name, (plan, knobs, healthy) in RUNS.items():
            bench = _knob_bench(root / f"twin-{name.replace('_', '-')}-knobs.yaml", _rows(knobs, healthy))
            futures[name] = pool.submit(_rig_run, root / name, plan, "--bench", str(bench))
        yield futures


def test_both_plans_pass_on_one_healthy_position_with_a_day_of_bench_time(runs: dict[str, Any]) -> None:
    one = runs["one"].result()
    outcomes = {t["test"]: t["outcome"] for t in one["tests"]}
    assert one["exit_code"] == 0, one["output"]
    assert len(outcomes) == 5 and set(outcomes.values()) == {"passed"}, outcomes
    assert one["bench_s"] > 30 * 3600, "the plans' bench time holds the 24 h and 6 h gates and the soaks"


@pytest.mark.parametrize("run", list(RUNS))
def test_each_knob_outside_fails_its_catching_tests_and_the_rest_of_the_rack_passes(runs: dict[str, Any],
                                                                                     run: str) -> None:
    results = runs[run].result()
    _, knobs, healthy = RUNS[run]
    rows = _rows(knobs, healthy)
    assert len(rows) == (6 if run == "temperature" else 2)
    for name, _, catches in rows:
        outcomes = position_outcomes(results, name)
        assert outcomes, (name, results["output"])
        if not catches:
            assert set(outcomes.values()) == {"passed"}, (name, outcomes)
            continue
        for test in catches:
            caught = {k: v for k, v in outcomes.items() if k.split("[")[0] == test}
            assert caught and "failed" in caught.values(), (name, test, outcomes)
