"""The panel fed from a journal (`rig panel`): a run in progress in another process, a finished run, or the
newest run of a lab database (moving on to each new run as it starts). Records, completed steps and the run's
verdict are read as they are committed; questions are answered on the run's own panel or terminal, not here.
"""

from __future__ import annotations

import threading
from typing import Any

from rig.panel.state import PanelState
from rig.results import Journal, JournalError, RunRow


def _positions(header: RunRow) -> list[tuple[str, str]]:
    return [(str(p.get("name")), str(p.get("address"))) for p in header.meta.get("positions", [])
            if isinstance(p, dict)]


def _title(header: RunRow) -> str:
    meter = header.meta.get("meter_type", {})
    nameplate = meter.get("nameplate") if isinstance(meter, dict) else None
    return f"{header.bench}: {nameplate}" if nameplate else header.bench


class JournalFollower:
    """Polls a journal every `poll_s` wall seconds (in its own thread) into a PanelState."""

    def __init__(self, journal: Journal, state: PanelState, run_id: str | None, *, poll_s: float = 1.0,
                 elsewhere: str | None = None) -> None:
        self.journal = journal
        self.state = state
        self.run_id = run_id  # None: the newest run, whichever it is
        self.poll_s = poll_s
        self.elsewhere = elsewhere  # where a running run's questions are answered
        self._current: str | None = None
        self._seq = 0
        self._items = 0
        self._open: dict[str, str] = {}  # test item -> position, records seen but item not completed
        self._ended = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Read what is there now, then follow in a daemon thread."""
        self.poll()
        self._thread = threading.Thread(target=self._follow, name="rig-panel-journal", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop following."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.poll()

    def poll(self) -> None:
        """One look at the journal; a journal that cannot be read is said on the page, and asked again."""
        try:
            self._poll()
        except JournalError as exc:
            self.state.notify(f"cannot read the journal: {exc}")

    def _poll(self) -> None:
        run_id = self.run_id
        if run_id is None:
            runs = self.journal.runs()
            if not runs:
                self.state.notify(f"no run in {self.journal.shown_url} yet: waiting for one")
                return
            run_id = runs[-1].run_id
        header = self.journal.run(run_id)
        if run_id != self._current:
            self._current, self._seq, self._items, self._open, self._ended = run_id, 0, 0, {}, False
            self.state.reset(title=_title(header), run_id=run_id, positions=_positions(header))
        for stored in self.journal.stored_records(run_id):
            if stored.seq <= self._seq:
                continue
            self._seq = stored.seq
            record = stored.record
            if record.test not in self._open:
                self._open[record.test] = record.position or ""
                self.state.step_started(record.test.rsplit("::", 1)[-1], record.position)
            self.state.recorded(record, stored.seq)
        items = self.journal.items(run_id)
        for item in items[self._items:]:
            self._open.pop(item.nodeid, None)
            self.state.step_done(item.position, item.outcome)
        self._items = len(items)
        if header.finished_utc is not None and not self._ended:
            self._ended = True
            self.state.finished(header.verdict or "ended")
        elif header.finished_utc is None:
            self.state.notify(_running_notice(self.journal, run_id, self.elsewhere))


def _running_notice(journal: Journal, run_id: str, elsewhere: str | None) -> str:
    sessions: list[Any] = journal.sessions(run_id)
    where = f" on {sessions[-1].host} (pid {sessions[-1].pid})" if sessions else ""
    answer = f"its own panel {elsewhere} or its terminal" if elsewhere else "its terminal (or its own panel)"
    return f"run in progress{where}: following its journal; questions are answered on {answer}"
