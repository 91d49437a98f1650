"""The harmonic plans (testplans/harmonics) pass on the healthy twin, on one position and on the six-position
rack, and catch every knob of their catalogue (testplans/harmonics/mutations.py): set outside on one position
of a knob rack, the tests named in its row fail there; set inside, every test passes there.

Four real `rig run` processes, two at a time: the knob rack (a healthy position and one position per knob
value, measured together as a rack does), the six-position twin rack, the one-position default twin, and the
twin speaking Fluke (a source without sub-harmonics, a reference without a harmonic analyser)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rig.config import BENCHES_DIR, DEFAULT_BENCH, load_bench
from testplans.harmonics.mutations import HARMONICS, MUTATIONS

RACK = BENCHES_DIR / "twin-rack.yaml"
FLUKE = BENCHES_DIR / "twin-fluke.yaml"
PLAN = "testplans/harmonics"
HEALTHY = "healthy"

Row = tuple[str, str | None, Any, tuple[str, ...]]  # position name, knob, value, tests that must fail


def _rows() -> list[Row]:
    meter = load_bench(RACK).meter
    rows: list[Row] = [(HEALTHY, None, None, ())]
    for m in MUTATIONS:
        knob = m.knob.removeprefix(HARMONICS + ".")
        rows.append((f"{knob}_outside", knob, m.outside(meter), m.catches))
        rows.append((f"{knob}_inside", knob, m.inside(meter), ()))
    return rows


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, rig_run: Callable[..., Any],
         bench_file: Callable[..., Any]) -> Iterator[dict[str, concurrent.futures.Future[Any]]]:
    """The four runs, two at a time."""
    root = tmp_path_factory.mktemp("harmonics")
    rows = _rows()
    knobs = bench_file(root / "knobs.yaml", [{"name": name, "protocol": "both"} for name, *_ in rows],
                       name="twin-harmonics-knobs",
                       twin={"positions": {i: {"harmonics": {knob: value}} for i, (_, knob, value, _) in
                                           enumerate(rows) if knob is not None}})
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        yield {
            "knobs": pool.submit(rig_run, PLAN, "--bench", str(knobs), reports=root / "knobs"),
            "rack": pool.submit(rig_run, PLAN, "--bench", str(RACK), reports=root / "rack"),
            "default": pool.submit(rig_run, PLAN, "--bench", str(DEFAULT_BENCH), reports=root / "default"),
            "fluke": pool.submit(rig_run, PLAN, "--bench", str(FLUKE), reports=root / "fluke"),
        }


@pytest.mark.parametrize("bench_name", ["default", "rack"])
def test_healthy_twin_passes_the_harmonic_plans(runs: dict[str, Any], bench_name: str) -> None:
    run = runs[bench_name].result()
    assert run.exit_code == 0, run.output[-3000:]
    assert all(t["outcome"] == "passed" for t in run.tests), run.output[-3000:]
    positions = 6 if bench_name == "rack" else 1
    # The 5th harmonic and the three distorted currents of a direct-connected meter, per position.
    assert len(run.tests) >= 4 * positions
    assert run.results["wall_s"] < 60, "the harmonic plans run on the twin in seconds of wall time"


@pytest.mark.parametrize("row", _rows(), ids=[row[0] for row in _rows()])
def test_each_knob_is_caught_on_its_position_and_only_there(runs: dict[str, Any], row: Row) -> None:
    name, knob, _, catches = row
    outcomes: dict[str, str] = {}
    for test, outcome in runs["knobs"].result().outcomes(name).items():
        function = test.split("[", 1)[0]
        outcomes[function] = "failed" if "failed" in (outcome, outcomes.get(function)) else outcome
    assert outcomes, f"no test ran on position {name}"
    assert {t for t, o in outcomes.items() if o != "passed"} == set(catches), (name, outcomes)
    assert knob is None or catches == () or any(o == "failed" for o in outcomes.values())


def test_a_bench_without_the_instruments_skips_those_tests_naming_what_they_need(runs: dict[str, Any]) -> None:
    run = runs["fluke"].result()
    assert run.exit_code == 0, run.output[-3000:]
    outcomes = {t["test"]: t["outcome"] for t in run.tests}
    assert [t for t, o in outcomes.items() if o == "passed"] == [
        "testplans/harmonics/test_influence.py::test_fifth_harmonic[P1]",
        "testplans/harmonics/test_influence.py::test_distorted_current[dc_even-P1]",
        "testplans/harmonics/test_influence.py::test_distorted_current[odd-P1]"], outcomes
    assert "(fluke-6100b) generates whole harmonic orders only: this test needs a source that generates " \
        "sub-harmonics" in run.output
    assert "(fluke-6105a-energy) has no harmonic analyser" in run.output
