"""What the operator panel shows, kept in one thread-safe model: each position's lamp and current step, bench
time and the wall-time estimate, the last records with their verdicts, and the questions waiting for a person.

The run (or a journal follower) writes into it from its own thread; the web server reads snapshots and is
told of every change. Nothing here blocks the run: every method takes the lock only to copy plain data.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rig.operator import Question, hint, parse_answer
from rig.results import BENCH_FAULT, FAIL, INFO, PASS, Record

# Lamps: a position is idle until its first step, running while a step is about it, and keeps the worst
# verdict it has seen (a failed point stays red however many pass after it).
IDLE, RUNNING = "idle", "running"
_WORST = {IDLE: 0, RUNNING: 0, PASS: 1, BENCH_FAULT: 2, FAIL: 3}
LAST_RECORDS = 25


@dataclass
class PositionView:
    """One meter position as the panel shows it."""

    name: str
    address: str
    verdict: str = IDLE  # the worst verdict so far: idle, pass, bench-fault or fail
    step: str | None = None  # the step running now about this position

    def lamp(self) -> str:
        """The lamp's colour name: fail and bench-fault stay lit; else running while a step is about it."""
        if self.verdict in (FAIL, BENCH_FAULT):
            return self.verdict
        return RUNNING if self.step else self.verdict

    def note(self, verdict: str) -> None:
        """Keep the worse of what it had and `verdict`."""
        if _WORST.get(verdict, 0) > _WORST.get(self.verdict, 0):
            self.verdict = verdict


@dataclass
class Prompt:
    """A question shown on the panel; answered once, by whoever is first (the panel or the terminal)."""

    id: int
    question: Question
    answer: tuple[str, str] | None = None  # (text, who) once answered on the panel
    closed: bool = False  # answered anywhere, or withdrawn


@dataclass
class _Progress:
    total: int = 0
    done: int = 0
    bench_s: float = 0.0
    wall_start: float = field(default_factory=time.monotonic)
    step: str | None = None  # the bench-wide step (an item about no single position)
    verdict: str | None = None  # the run's verdict once it ended
    notice: str | None = None


class PanelState:
    """The panel's model; `listen(callback)` is called (from the writer's thread) after every change."""

    def __init__(self, *, title: str, run_id: str, positions: list[tuple[str, str]], live: bool,
                 who: str = "operator") -> None:
        self.title = title
        self.run_id = run_id
        self.live = live  # True: the run itself (prompts answerable); False: following a journal
        self.who = who
        self._lock = threading.Lock()
        self._positions = {name: PositionView(name, address) for name, address in positions}
        self._records: deque[dict[str, Any]] = deque(maxlen=LAST_RECORDS)
        self._prompts: dict[int, Prompt] = {}
        self._ids = itertools.count(1)
        self._progress = _Progress()
        self._listeners: list[Callable[[], None]] = []
        self.version = 0

    # ----------------------------------------------------------------------------------- listening

    def listen(self, callback: Callable[[], None]) -> None:
        """Call `callback()` after every change (it must be quick and never raise)."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        with self._lock:
            self.version += 1
        for callback in list(self._listeners):
            callback()

    # ------------------------------------------------------------------------------------- the run

    def reset(self, *, title: str, run_id: str, positions: list[tuple[str, str]]) -> None:
        """Show another run from the start (a journal follower moving on to a newer run)."""
        with self._lock:
            self.title, self.run_id = title, run_id
            self._positions = {name: PositionView(name, address) for name, address in positions}
            self._records.clear()
            self._progress = _Progress()
        self._changed()

    def planned(self, total: int) -> None:
        """The number of steps (test items) the run sets out to do."""
        with self._lock:
            self._progress.total = total
        self._changed()

    def step_started(self, step: str, position: str | None, bench_s: float | None = None) -> None:
        """A step begins: about one position, or the bench as a whole."""
        with self._lock:
            if position in self._positions:
                self._positions[position].step = step
            else:
                self._progress.step = step
            if bench_s is not None:
                self._progress.bench_s = bench_s
        self._changed()

    def step_done(self, position: str | None, outcome: str, bench_s: float | None = None) -> None:
        """A step ended with pytest's outcome (passed, failed, skipped, error or bench-fault)."""
        verdict = {"passed": PASS, "failed": FAIL, "error": FAIL, BENCH_FAULT: BENCH_FAULT}.get(outcome)
        with self._lock:
            self._progress.done += 1
            view = self._positions.get(position) if position else None
            if view is not None:
                view.step = None
                if verdict is not None:
                    view.note(verdict)
            else:
                self._progress.step = None
            if bench_s is not None:
                self._progress.bench_s = bench_s
        self._changed()

    def recorded(self, record: Record, seq: int | None = None) -> None:
        """A record as it is journaled: the list of last records, and its position's lamp at once."""
        row = {"seq": seq, "test": record.test.rsplit("::", 1)[-1], "position": record.position,
               "quantity": record.quantity, "value": record.value, "unit": record.unit, "low": record.low,
               "high": record.high, "verdict": record.verdict, "bench_s": record.bench_time_s,
               "text": record.describe(), "by": (record.detail or {}).get("answered_by")}
        with self._lock:
            self._records.append(row)
            view = self._positions.get(record.position or "")
            if view is not None and record.verdict != INFO:
                view.note(record.verdict if record.verdict in (FAIL, BENCH_FAULT) else PASS)
            self._progress.bench_s = max(self._progress.bench_s, record.bench_time_s)
        self._changed()

    def finished(self, verdict: str, notice: str | None = None) -> None:
        """The run ended with `verdict`; open questions are withdrawn."""
        with self._lock:
            self._progress.verdict = verdict
            self._progress.notice = notice
            self._progress.step = None
            for view in self._positions.values():
                view.step = None
            for prompt in self._prompts.values():
                prompt.closed = True
        self._changed()

    def notify(self, notice: str | None) -> None:
        """A line of context for the operator (e.g. where prompts are answered)."""
        with self._lock:
            self._progress.notice = notice
        self._changed()

    # ------------------------------------------------------------------------------------- prompts

    def offer(self, question: Question) -> int:
        """Show a question; its prompt id."""
        with self._lock:
            prompt = Prompt(next(self._ids), question)
            self._prompts[prompt.id] = prompt
        self._changed()
        return prompt.id

    def answer(self, prompt_id: int, text: str, who: str) -> str | None:
        """An answer given on the panel: None when taken, else why not (it does not fit the question, or the
        question was answered already, elsewhere or by another browser, or withdrawn)."""
        with self._lock:
            prompt = self._prompts.get(prompt_id)
            if prompt is None or prompt.closed:
                return "this question was answered already (or is no longer asked)"
            try:
                parse_answer(prompt.question, text)
            except ValueError as exc:
                return str(exc)
            prompt.answer = (text.strip(), who)
            prompt.closed = True
        self._changed()
        return None

    def taken(self, prompt_id: int) -> tuple[str, str] | None:
        """(text, who) once the prompt was answered on the panel."""
        with self._lock:
            prompt = self._prompts.get(prompt_id)
            return prompt.answer if prompt is not None else None

    def withdraw(self, prompt_id: int) -> None:
        """The question was answered elsewhere or timed out: no longer shown."""
        with self._lock:
            prompt = self._prompts.pop(prompt_id, None)
        if prompt is not None:
            self._changed()

    # ------------------------------------------------------------------------------------ snapshot

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, as plain JSON-able data."""
        with self._lock:
            progress = self._progress
            wall_s = time.monotonic() - progress.wall_start
            left = progress.total - progress.done
            eta = wall_s / progress.done * left if progress.done and progress.total and progress.verdict is None \
                else None
            return {
                "version": self.version, "title": self.title, "run_id": self.run_id, "live": self.live,
                "positions": [{"name": v.name, "address": v.address, "lamp": v.lamp(), "step": v.step}
                              for v in self._positions.values()],
                "step": progress.step, "total": progress.total, "done": progress.done,
                "bench_s": round(progress.bench_s, 3), "wall_s": round(wall_s, 1),
                "eta_wall_s": None if eta is None else round(eta, 1),
                "records": list(reversed(self._records)),
                "prompts": [_prompt_view(p) for p in self._prompts.values() if not p.closed],
                "verdict": progress.verdict, "notice": progress.notice,
            }


def _prompt_view(prompt: Prompt) -> dict[str, Any]:
    q = prompt.question
    return {"id": prompt.id, "text": q.text, "kind": q.kind, "unit": q.unit, "topic": q.topic,
            "position": q.position, "address": q.address, "hint": hint(q), "timeout_s": q.timeout_s}
