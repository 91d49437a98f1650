"""Journal and resume: `rig run` killed with SIGKILL in the middle of an item, then `rig run --resume`,
ends with the same records and outcomes as a run that was never interrupted."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
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


# ------------------------------------------------------------------ the resume pin: inputs must not change

PIN_PLAN = "testplans/accuracy/test_accuracy.py::test_basic_error"
PIN_KILLED = "test_basic_error[PF1-Ib-P1]"
GAIN = "twin.meter.metering.gain_error_pct"


@pytest.fixture(scope="module")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A class 1 run of a meter 1.5 % fast (it fails class 1), with a bench file, an override and an answers
    file of its own, SIGKILLed in the middle of a point."""
    base = tmp_path_factory.mktemp("pin")
    bench = base / "bench.yaml"
    bench.write_text((HERE.parent / "benches" / "twin.yaml").read_text())
    assert 'accuracy_class: "1"' in bench.read_text()
    answers = base / "answers.yaml"
    answers.write_text("ambient.temperature_c: 23\n")
    killed = rig("run", PIN_PLAN, "--bench", str(bench), "--set", f"{GAIN}=1.5", "--operator-answers", str(answers),
                 "--reports", str(base / "reports"), "--", "-kPF1-", "-pkill_switch",
                 env={"RIG_KILL_AT": PIN_KILLED, "RIG_KILL_WHEN": "call"})
    assert killed.returncode == -9, killed.stderr[-3000:]
    (run_id,) = [p.name for p in (base / "reports").iterdir() if p.name != "latest"]
    return {"bench": bench, "answers": answers, "reports": base / "reports", "run_id": run_id,
            "folder": base / "reports" / run_id}


def sessions_of(folder: Path, run_id: str) -> int:
    from rig.results import Journal

    journal = Journal.in_folder(folder, create=False)
    try:
        return len(journal.sessions(run_id))
    finally:
        journal.close()


@contextlib.contextmanager
def changed(*edits: tuple[Path, str, str]) -> Iterator[None]:
    """Files edited (old text -> new) for the block, put back after it."""
    originals = {path: path.read_text() for path, _, _ in edits}
    try:
        for path, old, new in edits:
            assert old in path.read_text()
            path.write_text(path.read_text().replace(old, new))
        yield
    finally:
        for path, text in originals.items():
            path.write_text(text)


def refused_resume(pinned: dict[str, Any], *edits: tuple[Path, str, str]) -> str:
    """Resume the pinned run with `edits` expecting a refusal: exit 2, one line, no new session, run.json as
    it was."""
    with changed(*edits):
        run_file = (pinned["folder"] / "run.json").read_text()
        proc = rig("run", "--resume", pinned["run_id"], "--reports", str(pinned["reports"]))
        assert (pinned["folder"] / "run.json").read_text() == run_file
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot resume {pinned['run_id']}: changed since"), lines
    assert sessions_of(pinned["folder"], pinned["run_id"]) == 1, "a refused resume starts no session"
    return lines[0]


def test_resume_refuses_a_changed_bench_file(pinned: dict[str, Any]) -> None:
    line = refused_resume(pinned, (pinned["bench"], 'accuracy_class: "1"', 'accuracy_class: "2"'))
    assert f"bench file {pinned['bench']}: content changed since the first session" in line
    assert "--accept-changed" in line and "override" not in line and "answers" not in line


def test_resume_refuses_changed_overrides_in_run_json_naming_the_key_not_the_value(pinned: dict[str, Any]) -> None:
    line = refused_resume(pinned, (pinned["folder"] / "run.json", f'"{GAIN}=1.5"',
                                   f'"{GAIN}=0.04", "meter.accuracy_class=2"'))
    assert f"override {GAIN} changed" in line and "override meter.accuracy_class added" in line
    assert "0.04" not in line and "1.5" not in line and "bench file" not in line


def test_resume_refuses_a_changed_answers_file(pinned: dict[str, Any]) -> None:
    line = refused_resume(pinned, (pinned["answers"], "23", "31"))
    assert f"operator answers file {pinned['answers']}: content changed since the first session" in line


def test_resume_names_every_difference_at_once(pinned: dict[str, Any]) -> None:
    line = refused_resume(pinned, (pinned["bench"], 'accuracy_class: "1"', 'accuracy_class: "2"'),
                          (pinned["answers"], "23", "24"))
    assert line.count("content changed since the first session") == 2


def test_resume_with_accept_changed_runs_and_every_certificate_says_so(pinned: dict[str, Any]) -> None:
    reason = "nameplate re-read: the meters are class 2"
    with changed((pinned["bench"], 'accuracy_class: "1"', 'accuracy_class: "2"')):
        proc = rig("run", "--resume", pinned["run_id"], "--reports", str(pinned["reports"]),
                   "--accept-changed", reason)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    assert "accepted changes" in proc.stderr and "Traceback" not in proc.stderr
    document = results(pinned["folder"])
    (accepted,) = document["accepted_changes"]
    assert accepted["session"] == 1 and accepted["reason"] == reason
    assert accepted["differences"] == [f"bench file {pinned['bench']}: content changed since the first session "
                                       f"{accepted['differences'][0].split('session ', 1)[1]}"]
    # The resumed points were judged against class 2 (±2 %): they pass although the meter is 1.5 % fast.
    resumed = [r for r in document["records"] if r["session"] == 1]
    assert resumed and {r["verdict"] for r in resumed} == {"pass"} and {r["high"] for r in resumed} == {2.0}
    certificate = (pinned["folder"] / "certificate.html").read_text()
    assert "Session 1 resumed the run although its inputs had changed since the first session" in certificate
    assert reason in certificate
    report = rig("report", pinned["run_id"], "--reports", str(pinned["reports"]), "--format", "html",
                 "--out", str(pinned["reports"] / "again" / "certificate.html"))
    assert report.returncode == 0, report.stderr
    assert reason in (pinned["reports"] / "again" / "certificate.html").read_text()
    verified = rig("verify", pinned["run_id"], "--reports", str(pinned["reports"]))
    assert "ALTERED" not in verified.stdout, verified.stdout


def test_accept_changed_without_resume_and_damaged_run_json_types_exit_2(tmp_path: Path) -> None:
    alone = rig("run", PIN_PLAN, "--accept-changed", "why", "--reports", str(tmp_path))
    assert alone.returncode == 2 and "--accept-changed goes with --resume" in alone.stderr
    for bad, named in (({"plans": "testplans"}, "'plans'"), ({"overrides": [3]}, "'overrides.0'"),
                       ({"bench_file": 7}, "'bench_file'"), ({"resumes": "none"}, "'resumes'")):
        folder = tmp_path / "typed-run"
        folder.mkdir(exist_ok=True)
        asked = {"run_id": "typed-run", "plans": [], "bench_file": None, "overrides": [], "pytest_extra": [],
                 "resumes": []} | bad
        (folder / "run.json").write_text(json.dumps(asked))
        proc = rig("run", "--resume", "typed-run", "--reports", str(tmp_path))
        assert proc.returncode == 2 and "run.json is damaged" in proc.stderr and named in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
