"""What a session's items did: records journaled with their verdicts, bench faults (an instrument or link
failed, never the meter), retries that cured one, and item completions (a resume skips those)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from drivers.errors import BenchFault, LinkError
from drivers.retry import RetryEvent
from rig.endings import STOP
from rig.results import BENCH_FAULT, FAIL, INFO, ItemOutcome, Record, judge, utc_now

if TYPE_CHECKING:
    from rig.run.session import RunSession


class Tally:
    """Items selected, started, completed, and how each ended."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.outcomes: dict[str, str] = {}  # item id -> passed / failed / skipped / error / bench-fault
        self.failed_tests = 0  # items that failed for the meter (not for the bench)
        self.bench_faults = 0  # items that ended in a bench fault
        self.retried = 0  # bench operations that failed and were retried ok
        # Items in which a bench operation failed for good (item id -> what failed): a plan that caught the
        # error cannot judge the meter from there on, so what it then records outside limits is a bench fault.
        self.faulted_items: dict[str, RetryEvent] = {}
        self.selected: list[str] | None = None  # item ids after collection (None: collection never finished)
        self.open_items: set[str] = set()  # started, not completed (an interrupt leaves them here)
        self.completed: set[str] = set()
        self.current_item: str | None = None  # the item running now (bench-fault events go to it)
        self.current_position: str | None = None
        # Told of every record as it is journaled (the live panel); each must be quick and never raise.
        self.listeners: list[Callable[[Record], None]] = []

    def unfinished(self) -> list[str]:
        """Selected items this session did not complete (all of them when collection never finished)."""
        if self.selected is None:
            return ["<collection>"] if STOP.interrupted else []
        return [item for item in self.selected if item not in self.completed]

    def meter_failed(self) -> bool:
        """Whether any item failed or erred (for the meter, not for the bench)."""
        return any(outcome in ("failed", "error") for outcome in self.outcomes.values())

    def note_outcome(self, item: str, kind: str) -> None:
        """An item's outcome: the first that is not a pass sticks."""
        if self.outcomes.get(item) in (None, "passed"):
            self.outcomes[item] = kind


def _store(run: RunSession, record: Record) -> Record:
    stored = run.open_journal(None).add(run.run_id, record, run.session).record
    run.tally.records.append(stored)
    for listener in run.tally.listeners:
        listener(stored)
    return stored


def record(run: RunSession, item: str, quantity: str, value: float | None, unit: str, *, low: float | None,
           high: float | None, position: str | None, meter: str | None, detail: dict[str, Any]) -> Record:
    """Journal a value at once (chained into the run's SM3 chain) with its verdict."""
    tally = run.tally
    verdict = judge(value, low, high)
    if verdict == FAIL and value is None:
        # Nothing measured because a bench operation failed for good earlier (a plan keeps the reason it
        # caught, e.g. from a reading shared by several items): not the meter's doing either.
        reason = next((v for v in detail.values() if isinstance(v, str) and v.startswith("bench fault: ")), None)
        if reason is not None:
            tally.faulted_items.setdefault(item, RetryEvent(
                "the bench", "a reading this point uses", reason, 0, False, run.bench_time_s()))
    if verdict == FAIL and item in tally.faulted_items:
        verdict = BENCH_FAULT  # measured after the bench failed for good in this item: not the meter's doing
    return _store(run, Record(
        test=item, position=position, quantity=quantity, value=None if value is None else float(value), unit=unit,
        low=low, high=high, verdict=verdict, bench_time_s=run.bench_time_s(), detail=detail or None, meter=meter,
    ))


def info(run: RunSession, item: str, quantity: str, value: float | None, *, position: str | None,
         meter: str | None, detail: dict[str, Any]) -> Record:
    """An info record: context, not a verdict on the meter."""
    return _store(run, Record(test=item, position=position, quantity=quantity, value=value, unit="", low=None,
                              high=None, verdict=INFO, bench_time_s=run.bench_time_s(), detail=detail, meter=meter))


def bench_fault(run: RunSession, item: str, position: str | None, exc: BaseException,
                phase: str) -> tuple[str, Record | None] | None:
    """An item's phase failed for a bench fault (an instrument or port, never the meter): journal a
    `bench-fault` record naming the instrument and what it did. Returns the reason and the record (None
    when it was not a bench fault)."""
    if not isinstance(exc, BenchFault | LinkError):
        return None
    reason = str(exc)
    run.tally.bench_faults += 1
    if run.journal is None:
        return reason, None
    detail: dict[str, Any] = {"event": "bench fault", "message": reason, "phase": phase}
    if isinstance(exc, BenchFault):
        detail |= {"instrument": exc.instrument, "what": exc.what, "attempts": exc.attempts}
    return reason, _store(run, Record(test=item, position=position, quantity="bench fault", value=None, unit="",
                                      low=None, high=None, verdict=BENCH_FAULT, bench_time_s=run.bench_time_s(),
                                      detail=detail))


def journal_retry(run: RunSession, event: RetryEvent) -> None:
    """A bench operation that failed and was retried: a run event (traffic log) and, inside a test item, an
    info record of that item saying which instrument, what happened and that the retry cured it."""
    tally = run.tally
    run.bench.note("#", f"bench fault: {event.describe()}")
    if not event.recovered and tally.current_item is not None:
        tally.faulted_items.setdefault(tally.current_item, event)
    if not event.recovered or tally.current_item is None or run.journal is None:
        return  # one that was not cured ends its item as a bench fault
    tally.retried += 1
    _store(run, Record(
        test=tally.current_item, position=tally.current_position,
        quantity=f"bench fault retried: {event.instrument}", value=float(event.attempts), unit="tries", low=None,
        high=None, verdict=INFO, bench_time_s=run.bench_time_s(),
        detail={"event": "bench fault, retried ok", "instrument": event.instrument, "what": event.what,
                "problem": event.problem},
    ))


def item_done(run: RunSession, item: str, *, position: str | None, outcome: str, duration_s: float,
              doc: str | None, message: str | None) -> None:
    """Journal an item's completion (every phase ran): a resume will not run it again."""
    run.tally.open_items.discard(item)
    run.tally.completed.add(item)
    if run.journal is None:
        return
    run.journal.item_done(run.run_id, run.session, ItemOutcome(
        nodeid=item, session=run.session, position=position, outcome=outcome, duration_s=round(duration_s, 6),
        finished_utc=utc_now(), doc=" ".join(doc.strip().split("\n\n")[0].split()) if doc else None,
        message=message))


def resumable(run: RunSession) -> set[str]:
    """Items the run's journal has seen complete; one that ended in a bench fault was not measured (a
    resume measures it again)."""
    if not run.resume or run.journal is None:
        return set()
    return {k for k, v in run.journal.completed_items(run.run_id).items() if v != BENCH_FAULT}
