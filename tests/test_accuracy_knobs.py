"""Every metering knob: a value just outside the class limit fails the plan test that must catch it,
a value just inside keeps it passing, for class 1 (direct) and class 0.5S (CT). Also `rig mutate`."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rig.config import BENCHES_DIR, load_bench
from testplans.mutations import MUTATIONS

BENCHES = {"class1": BENCHES_DIR / "twin.yaml", "class0.5S": BENCHES_DIR / "twin-ct-0.5S.yaml"}
METERING = [m for m in MUTATIONS if m.knob.startswith("twin.meter.metering.")]
CASES = [(bench, m.knob, violating) for bench in BENCHES for m in METERING for violating in (True, False)]


def _rig_run(tests: list[str], bench: Path, override: str, reports: Path) -> dict[str, str]:
    """Outcome per test function: failed when any of its items failed."""
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", *tests, "--bench", str(bench), "--set", override,
                           "--reports", str(reports)], capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    results = json.loads((reports / "latest" / "results.json").read_text())
    outcome: dict[str, str] = {}
    for test in results["tests"]:
        function = test["test"].split("[", 1)[0]
        if outcome.get(function) != "failed":
            outcome[function] = test["outcome"]
    return outcome


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str, bool], dict[str, str]]:
    """Run every case once (two twins at a time); outcome per catching test function."""
    root = tmp_path_factory.mktemp("knobs")
    by_knob = {m.knob: m for m in METERING}

    def run(index: int, case: tuple[str, str, bool]) -> dict[str, str]:
        bench, knob, violating = case
        mutation = by_knob[knob]
        meter = load_bench(BENCHES[bench]).meter
        return _rig_run(list(mutation.catches), BENCHES[bench], mutation.override(meter, violating=violating),
                        root / f"case-{index:02d}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {case: pool.submit(run, i, case) for i, case in enumerate(CASES)}
        return {case: future.result() for case, future in futures.items()}


@pytest.mark.parametrize(("bench", "knob", "violating"), CASES,
                         ids=[f"{b}-{k.rsplit('.', 1)[-1]}-{'outside' if v else 'inside'}" for b, k, v in CASES])
def test_knob_outside_fails_inside_passes(outcomes, bench: str, knob: str, violating: bool) -> None:
    mutation = next(m for m in METERING if m.knob == knob)
    result = outcomes[(bench, knob, violating)]
    for test in mutation.catches:
        assert result.get(test) == ("failed" if violating else "passed"), (mutation.why, result)


def test_rig_mutate_catches_every_metering_knob(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "mutate", "testplans/accuracy", "--reports",
                           str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    matrix = json.loads(next(tmp_path.glob("mutate-*/matrix.json")).read_text())
    verdicts = {row["knob"]: row["verdict"] for row in matrix["rows"]}
    assert verdicts.pop("healthy twin") == "clean"
    assert set(verdicts) == {m.knob for m in METERING}
    assert set(verdicts.values()) == {"caught"}


def test_rig_mutate_exits_1_on_a_false_alarm(tmp_path: Path) -> None:
    """A twin that is unhealthy to begin with (every meter 5 % fast) makes the healthy run fail: exit 1."""
    plan = "testplans/accuracy/test_accuracy.py::test_starting_current"
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "mutate", plan, "testplans/smoke", "--reports",
                           str(tmp_path), "--set", "twin.meter.metering.constant_error_pct=30"],
                          capture_output=True, text=True, timeout=300)
    matrix = json.loads(next(tmp_path.glob("mutate-*/matrix.json")).read_text())
    assert [row["knob"] for row in matrix["rows"]] == ["healthy twin", "twin.meter.metering.start_current_a"]
    assert matrix["rows"][0]["verdict"] == "false alarm"
    assert proc.returncode == 1
