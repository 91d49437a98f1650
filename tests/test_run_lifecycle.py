"""The run lifecycle without pytest (rig.run): a runner other than the pytest plugin starts a session on the
twin, opens and admits the bench, records, finishes, signs and seals; a resume runs only what did not complete;
`rig verify`'s checks find the run intact; an expired calibration refuses the session (results.json says why)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rig.config import load_bench
from rig.operator import NoOperator
from rig.results import PASS, Journal
from rig.run import tally
from rig.run.admit import admit
from rig.run.finish import Status, finish, settle
from rig.run.folder import conclude, seal
from rig.run.session import Refused, RunSession, traffic_name
from rig.verify import verify_run

AMBIENT = {"temperature_c": 23.0, "humidity_pct": 45.0, "source": "given to the runner"}


def _session(run_dir: Path, items: dict[str, float], *, resume: bool = False, stop_after: int | None = None,
             overrides: tuple[str, ...] = ()) -> RunSession:
    """One session of run `life` measuring `items` (name -> value, limits -1..1), as a runner would."""
    config = load_bench(None, overrides)
    run = RunSession(run_dir, "life", resume=resume, ambient=AMBIENT)
    run.start(config, plans=["lifecycle"], argv=[])
    todo = [item for item in items if item not in tally.resumable(run)]
    run.tally.selected = todo
    traffic = run_dir / traffic_name(run.session)
    run.bench.open_traffic(traffic, config, f"run life session {run.session}")
    run.bench.open(config, traffic)
    bench = run.bench.opened
    assert bench is not None
    run.bench.started()
    try:
        admit(run, bench, lambda: bench.provider.operator(NoOperator("nobody at this bench")), accept_expired=None,
              plans=["lifecycle"])
        for item in todo[:stop_after]:
            run.tally.open_items.add(item)
            stored = tally.record(run, item, "error", items[item], "%", low=-1.0, high=1.0, position=None,
                                  meter=None, detail={})
            outcome = "passed" if stored.verdict == PASS else "failed"
            run.tally.note_outcome(item, outcome)
            tally.item_done(run, item, position=None, outcome=outcome, duration_s=0.1, doc=None, message=None)
    except Refused:
        pass
    finally:
        run.bench.drive_safe()
        run.bench.close()
    status = Status.TESTS_FAILED if run.tally.meter_failed() else Status.OK
    if stop_after is not None:
        status = Status.INTERRUPTED
    if run.refused is not None:
        status = Status.USAGE_ERROR
    verdict, status = settle(run, status)
    finish(run, verdict, status, junit=run_dir / "junit.xml")
    return run


def _results(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "results.json").read_text())


def test_a_run_outside_pytest_is_journaled_signed_sealed_and_verifiable(tmp_path: Path) -> None:
    said: list[str] = []
    run = _session(tmp_path, {"a": 0.2, "b": -0.3})
    seal(tmp_path, said.append)
    document = _results(tmp_path)
    assert document["verdict"] == "pass" and {t["test"] for t in document["tests"]} == {"a", "b"}
    assert [r["value"] for r in document["records"]] == [0.2, -0.3]
    assert [s["signed"] for s in document["sessions"]] == [True]
    assert run.session_meta["ending"]["source_confirmed_safe"] is True
    assert run.session_meta["conditions"] == AMBIENT
    assert conclude(tmp_path, Status.OK, said.append, resumed=False, db=None) == 0
    verification = verify_run(Journal.in_folder(tmp_path, create=False), "life", tmp_path)
    assert verification.ok, verification.text()
    assert said == [f"report: {tmp_path / 'report.html'}  results: {tmp_path / 'results.json'}"]


def test_a_resume_runs_only_what_did_not_complete(tmp_path: Path) -> None:
    items = {"a": 0.1, "b": 0.2, "c": 0.3}
    _session(tmp_path, items, stop_after=1)
    first = _results(tmp_path)
    assert first["verdict"] == "interrupted"
    assert "b" in (tmp_path / "junit.xml").read_text(), "the whole-run junit names the unfinished items"
    second = _session(tmp_path, items, resume=True)
    assert second.session == 1 and second.tally.selected == ["b", "c"]
    document = _results(tmp_path)
    assert document["verdict"] == "pass" and len(document["sessions"]) == 2
    assert sorted(r["test"] for r in document["records"]) == ["a", "b", "c"]


def test_a_record_outside_its_limits_fails_the_run(tmp_path: Path) -> None:
    _session(tmp_path, {"a": 0.1, "b": 4.0})
    assert _results(tmp_path)["verdict"] == "fail"
    assert conclude(tmp_path, Status.TESTS_FAILED, lambda line: None, resumed=False, db=None) == 1


def test_an_expired_calibration_refuses_the_session(tmp_path: Path) -> None:
    said: list[str] = []
    run = _session(tmp_path, {"a": 0.1}, overrides=("twin.reference.calibration_due=2020-01-01",))
    assert run.refused is not None and "expired on 2020-01-01" in run.refused
    document = _results(tmp_path)
    assert document["verdict"] == "refused" and document["refused_because"] == run.refused
    assert conclude(tmp_path, Status.USAGE_ERROR, said.append, resumed=False, db=None) == 2
    assert said == [f"[red]refused:[/red] {run.refused}"]


@pytest.mark.parametrize("status, code", [(Status.OK, 0), (Status.TESTS_FAILED, 1), (Status.INTERRUPTED, 130),
                                          (Status.NO_TESTS_COLLECTED, 2), (Status.INTERNAL_ERROR, 2)])
def test_the_runner_status_maps_to_rig_run_exit_codes(tmp_path: Path, status: Status, code: int) -> None:
    assert conclude(tmp_path, status, lambda line: None, resumed=False, db=None) == code
