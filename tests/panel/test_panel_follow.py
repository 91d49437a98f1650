"""`rig panel --db URL`: the panel follows the newest run of a lab database, records and completed steps as
they are committed, and moves on to a newer run when one starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rig.panel import PanelState
from rig.panel.follow import JournalFollower
from rig.results import ItemOutcome, Journal, Record, utc_now

POSITIONS = [{"name": "P1", "address": "000000000001"}, {"name": "P2", "address": "000000000002"}]
META = {"positions": POSITIONS, "meter_type": {"nameplate": "220 V 5(60) A"}}


def _record(test: str, position: str, value: float, verdict: str) -> Record:
    return Record(test=test, position=position, quantity="error at Ib PF 1", value=value, unit="%", low=-1.0,
                  high=1.0, verdict=verdict, bench_time_s=120.0, meter=None)


def _item(test: str, position: str, outcome: str) -> ItemOutcome:
    return ItemOutcome(nodeid=test, session=0, position=position, outcome=outcome, duration_s=1.0,
                       finished_utc=utc_now(), doc=None, message=None)


def _lamps(state: PanelState) -> dict[str, Any]:
    return {p["name"]: (p["lamp"], p["step"]) for p in state.snapshot()["positions"]}


def test_the_panel_follows_the_newest_run_of_a_lab_database(tmp_path: Path) -> None:
    lab = Journal(f"sqlite:///{tmp_path / 'lab.sqlite'}")
    state = PanelState(title="lab", run_id="", positions=[], live=False)
    follower = JournalFollower(Journal(lab.url, create=False), state, None)
    follower.poll()
    assert state.snapshot()["notice"].startswith("no run in ") and "waiting for one" in state.snapshot()["notice"]

    lab.start_run("run-1", "bench-3", META)
    lab.start_session("run-1", {})
    lab.add("run-1", _record("plan.py::test_error[P1]", "P1", 0.2, "pass"))
    lab.add("run-1", _record("plan.py::test_error[P2]", "P2", 1.7, "fail"))
    follower.poll()
    snapshot = state.snapshot()
    assert (snapshot["run_id"], snapshot["title"]) == ("run-1", "bench-3: 220 V 5(60) A")
    assert _lamps(state) == {"P1": ("running", "test_error[P1]"), "P2": ("fail", "test_error[P2]")}, \
        "a failed point turns its lamp red at once, before its step ends"
    assert snapshot["notice"].startswith("run in progress on ")
    assert [r["text"] for r in snapshot["records"]] == [
        "P2 error at Ib PF 1 = 1.7 % (limits -1 .. 1): fail", "P1 error at Ib PF 1 = 0.2 % (limits -1 .. 1): pass"]

    lab.item_done("run-1", 0, _item("plan.py::test_error[P1]", "P1", "passed"))
    lab.item_done("run-1", 0, _item("plan.py::test_error[P2]", "P2", "failed"))
    lab.finish_run("run-1", "fail")
    follower.poll()
    assert _lamps(state) == {"P1": ("pass", None), "P2": ("fail", None)}
    assert (state.snapshot()["verdict"], state.snapshot()["done"]) == ("fail", 2)

    lab.start_run("run-2", "bench-3", META | {"positions": POSITIONS[:1]})
    follower.poll()
    snapshot = state.snapshot()
    assert (snapshot["run_id"], snapshot["verdict"], snapshot["records"]) == ("run-2", None, [])
    assert _lamps(state) == {"P1": ("idle", None)}, "a newer run starts from grey lamps"
