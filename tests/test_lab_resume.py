"""Journal and resume: `rig run` killed with SIGKILL in the middle of an item, then `rig run --resume`,
ends with the same records and outcomes as a run that was never interrupted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
RIG = [sys.executable, "-m", "rig.cli"]
# Without noise the twin's readings depend only on the load point, not on when (in bench time) they
# are taken, so a resumed part that starts the twin afresh must reproduce the values exactly.
NOISE_FREE = ["--set", "twin.meter.metering.noise_pct=0", "--set", "twin.reference.uncertainty_pct=0",
              "--set", "twin.source.amplitude_noise_pct=0"]
KILLED_ITEM = "test_accuracy.py::test_basic_error[PF0.5L-Ib-P1]"
# What must be equal between the two runs (bench time, timestamps, sequence numbers and hashes differ).
SAME = ("test", "position", "meter", "quantity", "value", "unit", "low", "high", "verdict", "detail")


def rig(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(HERE / "data"), **(env or {})}
    return subprocess.run([*RIG, *args], capture_output=True, text=True, timeout=timeout, env=full_env)


def results(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "results.json").read_text())


def comparable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: r[k] for k in SAME} for r in records]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An uninterrupted run, and a run SIGKILLed mid-item then resumed (same plan, same twin)."""
    base = tmp_path_factory.mktemp("resume")
    whole = rig("run", "testplans/accuracy", *NOISE_FREE, "--reports", str(base / "whole"))
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = rig("run", "testplans/accuracy", *NOISE_FREE, "--reports", str(base / "killed"), "--", "-pkill_switch",
                 env={"RIG_KILL_AT": KILLED_ITEM, "RIG_KILL_WHEN": "call"})
    (run_id,) = [p.name for p in (base / "killed").iterdir() if p.name != "latest"]
    folder = base / "killed" / run_id
    after_kill = sorted(p.name for p in folder.iterdir())
    from rig.results import Journal

    journal = Journal.in_folder(folder, create=False)
    journaled = [r.test for r in journal.records(run_id)]
    completed = journal.completed_items(run_id)
    journal.close()
    verify_after_kill = rig("verify", run_id, "--reports", str(base / "killed"))
    resumed = rig("run", "--resume", run_id, "--reports", str(base / "killed"))
    return {"whole": base / "whole" / "latest", "killed": killed, "folder": folder, "run_id": run_id,
            "after_kill": after_kill, "journaled": journaled, "completed": completed,
            "verify_after_kill": verify_after_kill, "resumed": resumed,
            "reports": base / "killed"}


def test_killed_run_keeps_its_completed_records(runs: dict[str, Any]) -> None:
    assert runs["killed"].returncode == -9, "the kill switch must SIGKILL the run"
    assert "journal.sqlite" in runs["after_kill"] and "results.json" not in runs["after_kill"]
    tests = runs["journaled"]
    assert tests[-1].endswith(KILLED_ITEM), "the killed item's record was journaled before the kill"
    assert KILLED_ITEM not in "".join(runs["completed"]), "but the item never completed"
    assert len(runs["completed"]) == len(tests) - 1 >= 5
    # The unfinished session cannot vouch for itself: verify says so instead of passing.
    assert runs["verify_after_kill"].returncode == 1
    assert "no session signed it" in runs["verify_after_kill"].stdout


def test_resume_reruns_only_what_did_not_complete(runs: dict[str, Any]) -> None:
    proc = runs["resumed"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    whole = results(runs["whole"])
    done_before = len(runs["completed"])
    assert f"{len(whole['tests']) - done_before} passed, {done_before} deselected" in proc.stdout
    resumed = results(runs["folder"])
    assert [s["session"] for s in resumed["sessions"]] == [0, 1]
    assert resumed["sessions"][0]["verdict"] is None, "session 0 was killed: it never closed"
    assert resumed["run_id"] == runs["run_id"]


def test_resumed_run_has_the_records_of_an_uninterrupted_run(runs: dict[str, Any]) -> None:
    whole, resumed = results(runs["whole"]), results(runs["folder"])
    assert comparable(resumed["records"]) == comparable(whole["records"])
    assert sorted((t["test"], t["outcome"]) for t in resumed["tests"]) == sorted(
        (t["test"], t["outcome"]) for t in whole["tests"])
    assert resumed["verdict"] == whole["verdict"] == "pass"
    # The killed attempt's record stays in the journal (and the chain), out of the report.
    (superseded,) = resumed["superseded_records"]
    assert superseded["test"].endswith(KILLED_ITEM) and superseded["session"] == 0
    redone = [r for r in resumed["records"] if r["test"].endswith(KILLED_ITEM)]
    assert [r["session"] for r in redone] == [1]


def test_resume_makes_one_report_for_the_whole_run(runs: dict[str, Any]) -> None:
    folder = runs["folder"]
    suite = ET.parse(folder / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert int(suite.get("tests", 0)) == len(results(runs["whole"])["tests"])
    assert suite.get("failures") == "0" and suite.get("errors") == "0"
    certificate = (folder / "certificate.html").read_text()
    assert "error at Imax PF 0.8C" in certificate and "error at 0.05Ib PF 1" in certificate
    assert {"report.s1.html", "traffic.log", "traffic.s1.log"} <= {p.name for p in folder.iterdir()}
    verified = rig("verify", runs["run_id"], "--reports", str(runs["reports"]))
    assert verified.returncode == 3, verified.stdout  # consistent; the twin's throwaway keys are never pinned
    assert "traffic.log: SM3 matches" in verified.stdout and "traffic.s1.log: SM3 matches" in verified.stdout


def test_resume_of_a_finished_run_runs_nothing_and_keeps_its_results(runs: dict[str, Any]) -> None:
    before = results(runs["folder"])
    again = rig("run", "--resume", runs["run_id"], "--reports", str(runs["reports"]))
    assert again.returncode == 0, again.stderr[-2000:]
    after = results(runs["folder"])
    assert comparable(after["records"]) == comparable(before["records"])
    assert [s["session"] for s in after["sessions"]] == [0, 1, 2]


def test_resume_usage_errors_exit_2_without_traceback(tmp_path: Path, runs: dict[str, Any]) -> None:
    unknown = rig("run", "--resume", "no-such-run", "--reports", str(tmp_path))
    assert unknown.returncode == 2 and "cannot resume 'no-such-run'" in unknown.stderr
    mixed = rig("run", "testplans/smoke", "--resume", runs["run_id"], "--reports", str(runs["reports"]))
    assert mixed.returncode == 2 and "give only the run id" in mixed.stderr
    damaged = tmp_path / "broken-run"
    damaged.mkdir()
    (damaged / "run.json").write_text("{not json")
    broken = rig("run", "--resume", "broken-run", "--reports", str(tmp_path))
    assert broken.returncode == 2 and "damaged" in broken.stderr
    for proc in (unknown, mixed, broken):
        assert "Traceback" not in proc.stderr


def test_rack_killed_between_positions_resumes_per_point_and_position(tmp_path: Path) -> None:
    """Six positions measured together per load point: killed as P3's item of a point starts, the resume
    measures that point again for the positions still missing and keeps what the others completed."""
    rack = str(HERE.parent / "benches" / "twin-rack.yaml")
    plan = "testplans/accuracy/test_accuracy.py::test_basic_error"
    killed = rig("run", plan, "--bench", rack, "--reports", str(tmp_path), "--", "-kPF1-", "-pkill_switch",
                 env={"RIG_KILL_AT": "test_basic_error[PF1-0.5Ib-P3]", "RIG_KILL_WHEN": "setup"})
    assert killed.returncode == -9
    (run_id,) = [p.name for p in tmp_path.iterdir() if p.name != "latest"]
    resumed = rig("run", "--resume", run_id, "--reports", str(tmp_path))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    done = results(tmp_path / run_id)
    points = ["0.05Ib", "0.1Ib", "0.2Ib", "0.5Ib", "Ib", "0.5Imax", "Imax"]
    expected = [f"testplans/accuracy/test_accuracy.py::test_basic_error[PF1-{point}-P{n}]"
                for point in points for n in range(1, 7)]
    assert [t["test"] for t in done["tests"]] == expected
    assert {t["outcome"] for t in done["tests"]} == {"passed"}
    assert [r["test"] for r in done["records"]] == expected, "one record per point and position, in plan order"
    assert done["superseded_records"] == [], "killed before its body: nothing to supersede"
    sessions = {r["test"].split("[PF1-")[1]: r["session"] for r in done["records"]}
    assert sessions["0.5Ib-P2]"] == 0 and sessions["0.5Ib-P3]"] == 1 and sessions["0.5Ib-P6]"] == 1
    assert len({r["meter"] for r in done["records"]}) == 6
