"""Operator prompts: one interface; a terminal with a timeout on the bench clock, the twin answering for
itself, and every answer recorded (the smoke plan's 'meter mounted and wired' step uses it)."""

from __future__ import annotations

import datetime as dt
import io
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from drivers.clock import poll_until
from fixtures.plugin import RecordingOperator
from rig.operator import (
    Answer,
    OperatorError,
    OperatorTimeout,
    Question,
    TerminalOperator,
    TwinOperator,
    parse_answer,
)
from rig.results import Record, judge


class ManualClock:
    """A clock that only moves when slept on: a 300 s prompt timeout takes no wall time."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, duration_s: float) -> None:
        self.t += max(duration_s, 0.0)

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
        return poll_until(self, predicate, timeout_s, poll_s)

    def datetime_now(self) -> dt.datetime:
        return dt.datetime(2026, 1, 1) + dt.timedelta(seconds=self.t)


@pytest.fixture
def pipe() -> Iterator[tuple[Any, Any]]:
    """A real file descriptor pair, so the terminal operator's readiness check (select) is exercised."""
    read_fd, write_fd = os.pipe()
    reader, writer = os.fdopen(read_fd, "r"), os.fdopen(write_fd, "w")
    try:
        yield reader, writer
    finally:
        reader.close()
        if not writer.closed:
            writer.close()


def test_terminal_operator_asks_and_reasks_until_the_answer_fits(pipe: tuple[Any, Any]) -> None:
    reader, writer = pipe
    writer.write("maybe\nyes\n")
    writer.flush()
    shown = io.StringIO()
    operator = TerminalOperator(ManualClock(), stdin=reader, stdout=shown, who="alice")
    answer = operator.ask(Question("Is meter 000000000001 mounted?", "confirm", "meter.connected", position="P1"))
    assert answer.value is True and answer.text == "yes" and answer.by == "operator alice"
    assert "[operator] P1 Is meter 000000000001 mounted? [y/n] (within 300 s): " in shown.getvalue()
    assert "answer y (yes) or n (no)" in shown.getvalue()


def test_terminal_operator_times_out_on_the_bench_clock(pipe: tuple[Any, Any]) -> None:
    reader, _writer = pipe
    clock = ManualClock()
    operator = TerminalOperator(clock, stdin=reader, stdout=io.StringIO())
    with pytest.raises(OperatorTimeout, match="no answer to 'Ambient temperature\\?' within 120 s"):
        operator.ask(Question("Ambient temperature?", "number", "ambient.temperature_c", unit="°C", timeout_s=120))
    assert 120 <= clock.now() < 121


def test_terminal_operator_says_when_the_terminal_closes(pipe: tuple[Any, Any]) -> None:
    reader, writer = pipe
    writer.close()
    with pytest.raises(OperatorError, match="terminal closed"):
        TerminalOperator(ManualClock(), stdin=reader, stdout=io.StringIO()).ask(
            Question("Replace the battery of P1, then answer y", "confirm", "meter.battery_replaced"))


def test_answers_are_parsed_by_kind() -> None:
    number = Question("Display reading?", "number", "meter.display.energy_kwh", unit="kWh")
    assert parse_answer(number, " 12,34 kWh ") == pytest.approx(12.34)
    assert parse_answer(Question("ok?", "confirm", "x"), "N") is False
    with pytest.raises(ValueError, match="number in kWh"):
        parse_answer(number, "twelve")


class Truth:
    def __init__(self) -> None:
        self.meters = [{"address": "000000000001", "forward_kwh": 12.3456, "pulses": 10}]

    def state(self) -> dict[str, Any]:
        return {"meters": self.meters}


def test_twin_answers_from_its_ground_truth() -> None:
    twin = TwinOperator(Truth())
    connected = twin.ask(Question("mounted?", "confirm", "meter.connected", address="000000000001"))
    assert (connected.value, connected.text, connected.by) == (True, "yes", "twin")
    assert twin.ask(Question("mounted?", "confirm", "meter.connected", address="000000000009")).value is False
    display = twin.ask(Question("display?", "number", "meter.display.energy_kwh", address="000000000001"))
    assert display.value == 12.35
    with pytest.raises(OperatorError, match=r"topics it answers: ambient\.humidity_pct"):
        twin.ask(Question("Seal intact?", "confirm", "meter.seal"))


class Scripted:
    def __init__(self, answer: Answer | Exception) -> None:
        self.answer = answer

    def ask(self, question: Question) -> Answer:
        if isinstance(self.answer, Exception):
            raise self.answer
        return Answer(question, self.answer.value, self.answer.text, self.answer.by, 3.0)


def _recorder() -> tuple[list[Record], Callable[..., Record]]:
    taken: list[Record] = []

    def record(quantity: str, value: float | None, unit: str, *, low: float | None = None,
               high: float | None = None, position: Any = None, **detail: Any) -> Record:
        rec = Record("t", None, quantity, value, unit, low, high, judge(value, low, high), 0.0, detail)
        taken.append(rec)
        return rec

    return taken, record


def test_every_answer_becomes_a_record_with_its_verdict() -> None:
    question = Question("q", "confirm", "meter.connected")
    taken, record = _recorder()
    no = RecordingOperator(Scripted(Answer(question, False, "n", "operator bob", 0.0)), record)
    assert no.confirm("Is the meter wired?", topic="meter.connected", quantity="wired") is False
    (rec,) = taken
    assert (rec.quantity, rec.value, rec.verdict) == ("wired", 0.0, "fail"), "a 'no' fails the step"
    assert rec.detail is not None and rec.detail["answered_by"] == "operator bob" and rec.detail["answer"] == "n"
    taken, record = _recorder()
    silent = RecordingOperator(Scripted(OperatorTimeout("no answer to 'x' within 300 s")), record)
    with pytest.raises(OperatorTimeout):
        silent.number("Display reading?", "kWh", topic="meter.display.energy_kwh", low=0.0)
    (rec,) = taken
    assert rec.value is None and rec.verdict == "fail" and rec.detail is not None
    assert "within 300 s" in rec.detail["problem"]
