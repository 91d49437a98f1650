"""Operator prompts (composition layer): the one interface for steps that need a person at a real bench
(connect the meters, replace a battery, read a display, state the ambient conditions).

`TerminalOperator` asks on the terminal and waits on the bench clock with a timeout; on the twin its
provider's operator (rig.twin.provider.TwinOperator) answers from ground truth, so such plans run unattended.
Answers are recorded by the caller (the `operator` fixture, fixtures.operator_fixture, journals each one).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import select
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO

import yaml

from drivers.clock import Clock, Deadline
from drivers.errors import RigError

Kind = Literal["confirm", "number", "text"]
DEFAULT_TIMEOUT_S = 300.0
_YES = ("y", "yes", "j", "ja", "1", "true", "ok", "是")
_NO = ("n", "no", "nein", "0", "false", "否")


class OperatorError(RigError):
    """A question could not be answered (no terminal, the twin has no answer, terminal closed)."""


class OperatorTimeout(OperatorError):
    """Nobody answered within the question's timeout."""


@dataclass(frozen=True)
class Question:
    """What the rig asks a person; `topic` is the machine name the twin answers by."""

    text: str
    kind: Kind
    topic: str
    unit: str = ""
    position: str | None = None  # the position's name, for the prompt
    address: str | None = None  # the meter's address, for the twin's answer
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class Answer:
    """An answer: the parsed value, the text as given, who answered and after how long (bench s)."""

    question: Question
    value: bool | float | str
    text: str
    by: str
    waited_s: float


class Operator(Protocol):
    """Asks one question and returns the answer (OperatorTimeout / OperatorError otherwise)."""

    def ask(self, question: Question) -> Answer:
        """Ask and wait for the answer."""
        ...


@dataclass(frozen=True)
class Topic:
    """What the rig may ask by one topic: the kind of answer, its unit and the range a real answer lies in."""

    kind: Kind
    unit: str = ""
    low: float | None = None
    high: float | None = None


# Every topic a plan or the rig asks, with the range a true answer lies in: an answers file naming another
# topic is refused at the start, a number outside its range is asked again (or refused from a file).
TOPICS: dict[str, Topic] = {
    "meter.connected": Topic("confirm"),
    "meter.display.energy_kwh": Topic("number", "kWh", 0.0, 999999.99),  # XXXXXX.XX kWh on the display
    "meter.display.battery_low": Topic("confirm"),
    "meter.battery.replace": Topic("confirm"),
    "meter.battery.current_ua": Topic("number", "µA", 0.0, 10000.0),
    # the lab's test cells in the battery holder, measured with a DMM (a lithium cell: below 5 V)
    **{f"meter.battery.fit_cell.{cell}": Topic("number", "V", 0.0, 5.0) for cell in ("low", "between", "recovery")},
    # A lab is heated and not a sauna: IEC 62052-11's extended operating range; humidity is a percentage.
    "ambient.temperature_c": Topic("number", "°C", -40.0, 70.0),
    "ambient.humidity_pct": Topic("number", "%", 0.0, 100.0),
}


def _range(question: Question) -> tuple[float | None, float | None]:
    topic = TOPICS.get(question.topic)
    return (topic.low, topic.high) if topic is not None and topic.kind == question.kind else (None, None)


def parse_answer(question: Question, text: str) -> bool | float | str:
    """The typed value of an answer; ValueError with a hint when it does not fit the question (a number
    outside its topic's range included: 150 % relative humidity is a typing error)."""
    cleaned = text.strip()
    if question.kind == "confirm":
        word = cleaned.lower()
        if word in _YES:
            return True
        if word in _NO:
            return False
        raise ValueError("answer y (yes) or n (no)")
    if question.kind == "number":
        try:
            number = float(cleaned.replace(",", ".").removesuffix(question.unit).strip())
        except ValueError:
            raise ValueError(f"answer a number{f' in {question.unit}' if question.unit else ''}") from None
        low, high = _range(question)
        if (low is not None and number < low) or (high is not None and number > high):
            span = (f"from {low:g}" if high is None else f"up to {high:g}" if low is None
                    else f"from {low:g} to {high:g}")
            raise ValueError(f"{number:g} is not plausible: answer a number {span}"
                             f"{f' {question.unit}' if question.unit else ''}")
        return number
    if not cleaned:
        raise ValueError("answer something (an empty line is not an answer)")
    return cleaned


def hint(question: Question) -> str:
    """What to answer: `y (yes) or n (no)`, `a number in % (0 to 100)`, `in words`."""
    if question.kind == "confirm":
        return "y (yes) or n (no)"
    if question.kind == "text":
        return "in words"
    low, high = _range(question)
    unit = f" in {question.unit}" if question.unit else ""
    span = f" ({low:g} to {high:g})" if low is not None and high is not None else ""
    return f"a number{unit}{span}"


def prompt_text(question: Question, width: int = 78) -> str:
    """What the terminal shows: a rule naming the position, the question, what to answer and by when."""
    where = f"operator: {question.position}" if question.position else "operator"
    if question.address and question.position:
        where += f" (meter {question.address})"
    return (f"\n{f' {where} '.center(width, '=')}\n{question.text}\n"
            f"[operator] answer {hint(question)} within {question.timeout_s:g} s: ")


class Rival(Protocol):
    """Another place the same question is shown while the terminal waits (the browser panel): whichever
    answers first wins, and the answer says where it was given."""

    def offer(self, question: Question) -> int:
        """Show the question there; a token for the calls below."""
        ...

    def taken(self, token: int) -> tuple[str, str] | None:
        """(answer text, who answered) once answered there (only answers that fit the question)."""
        ...

    def withdraw(self, token: int) -> None:
        """The question is answered (or timed out): stop showing it."""
        ...


class TerminalOperator:
    """A person at the bench's terminal. Waits on the injected clock (the wall clock on a bench).

    With a `rival` (the browser panel) the question is shown there too; the first answer wins, and `by`
    says where it came from ("operator alice (terminal)" or the panel's "operator alice (panel)"). A closed
    terminal then leaves the question to the rival until the timeout.

    Reads the process's own standard input (`sys.__stdin__`, not pytest's stand-in) and writes to its
    own standard output. `suspend` is a context that lifts pytest's output *and input* capture while
    asking (fixtures.gate.prompting, as pytest's debugger does): without it a prompt inside a test
    would read pytest's placeholder stdin.
    """

    def __init__(self, clock: Clock, *, stdin: TextIO | None = None, stdout: TextIO | None = None,
                 suspend: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
                 who: str | None = None, poll_s: float = 0.1, max_tries: int = 3, rival: Rival | None = None) -> None:
        self.clock = clock
        self.rival = rival
        self._token: int | None = None
        self._stdin = stdin
        self._stdout = stdout
        self._suspend = suspend or contextlib.nullcontext
        self.who = who or _user()
        self.poll_s = poll_s
        self.max_tries = max_tries
        self._pending = b""

    def ask(self, question: Question) -> Answer:
        """Show the question, wait for a line (re-ask on a malformed answer), until the timeout (bench s)."""
        if self.rival is None:
            return self._ask(question)
        self._token = self.rival.offer(question)
        try:
            return self._ask(question)
        finally:
            self.rival.withdraw(self._token)
            self._token = None

    def _rival_answer(self) -> tuple[str, str] | None:
        return self.rival.taken(self._token) if self.rival is not None and self._token is not None else None

    def _ask(self, question: Question) -> Answer:
        with self._suspend():
            stdin = self._stdin or sys.__stdin__ or sys.stdin
            stdout = self._stdout or sys.__stdout__ or sys.stdout
            start = self.clock.now()
            deadline = Deadline(self.clock, question.timeout_s)
            width = min(shutil.get_terminal_size((78, 24)).columns, 100)
            stdout.write(prompt_text(question, width))
            stdout.flush()
            for _ in range(self.max_tries):
                line = self._next_line(stdin, deadline)
                given = self._rival_answer()
                if given is not None:
                    stdout.write(f"\n[operator] answered by {given[1]}: {given[0]}\n")
                    stdout.flush()
                    return Answer(question, parse_answer(question, given[0]), given[0], given[1],
                                  self.clock.now() - start)
                if line is None:
                    stdout.write(f"\n[operator] no answer within {question.timeout_s:g} s\n")
                    stdout.flush()
                    raise OperatorTimeout(f"no answer to {question.text!r} within {question.timeout_s:g} s")
                try:
                    value = parse_answer(question, line)
                except ValueError as exc:
                    stdout.write(f"[operator] {exc}: ")
                    stdout.flush()
                    continue
                by = f"operator {self.who}" + (" (terminal)" if self.rival is not None else "")
                return Answer(question, value, line.strip(), by, self.clock.now() - start)
            raise OperatorError(f"no usable answer to {question.text!r} after {self.max_tries} tries")

    def _next_line(self, stdin: TextIO, deadline: Deadline) -> str | None:
        """The next line typed, None at the deadline or once the rival answered; OperatorError when the
        terminal closes (with a rival: the rival's answer is awaited until the deadline).

        Reads the file descriptor itself (no Python-level buffering) so that waiting for readiness on
        the descriptor never misses a line already read ahead.
        """
        try:
            fd = stdin.fileno()
        except (OSError, ValueError, AttributeError):
            text = stdin.readline()  # an in-memory stream: reading never blocks
            if text == "":
                return self._closed(deadline)
            return text
        while b"\n" not in self._pending:
            if not self.clock.wait_until(lambda: _readable(fd) or self._rival_answer() is not None,
                                         max(deadline.remaining_s(), 0.0), self.poll_s):
                return None
            if self._rival_answer() is not None:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                if self._pending:
                    break
                return self._closed(deadline)
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode("utf-8", errors="replace")

    def _closed(self, deadline: Deadline) -> str | None:
        """The terminal closed: no line will come, but the rival may still answer before the deadline (then
        None, as at the deadline); without a rival, OperatorError."""
        if self.rival is None:
            raise OperatorError("the terminal closed before an answer was given")
        self.clock.wait_until(lambda: self._rival_answer() is not None, max(deadline.remaining_s(), 0.0),
                              self.poll_s)
        return None


def _readable(fd: int) -> bool:
    ready, _, _ = select.select([fd], [], [], 0)
    return bool(ready)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def load_answers(path: Path) -> dict[str, str]:
    """The answers file's answers by topic, checked against what the rig asks (`TOPICS`): an unknown topic
    (a misspelling would be silently ignored and the question go to a terminal nobody watches) or an
    answer that does not fit its topic (`ambient.humidity_pct: 150`) is an OperatorError naming it."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise OperatorError(f"operator answers file {path}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise OperatorError(f"operator answers file {path} must map topics to answers, e.g. 'meter.connected: yes'")
    answers = {k: "yes" if v is True else "no" if v is False else str(v) for k, v in data.items()}
    for name, text in answers.items():
        topic = TOPICS.get(name)
        if topic is None:
            raise OperatorError(f"operator answers file {path}: unknown topic {name!r}; the topics the rig asks: "
                                f"{', '.join(sorted(TOPICS))}")
        try:
            parse_answer(Question(name, topic.kind, name, unit=topic.unit), text)
        except ValueError as exc:
            raise OperatorError(f"operator answers file {path}, topic {name!r}: {exc}") from None
    return answers


class AnswersFileOperator:
    """Unattended runs (nightly benches): answers prepared in a YAML file, by topic; anything else goes
    to `fallback` (the terminal, or nobody). The record says the answer came from the file."""

    def __init__(self, path: Path, fallback: Operator) -> None:
        self.path = path
        self.answers = load_answers(path)
        self.fallback = fallback

    def ask(self, question: Question) -> Answer:
        """The prepared answer for the question's topic, else the fallback's."""
        text = self.answers.get(question.topic)
        if text is None:
            return self.fallback.ask(question)
        try:
            value = parse_answer(question, text)
        except ValueError as exc:
            raise OperatorError(f"operator answers file {self.path}, topic {question.topic!r}: {exc}") from None
        return Answer(question, value, text, f"answers file {self.path.name}", 0.0)


class NoOperator:
    """A real bench with no terminal to ask on: every question fails at once, saying why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def ask(self, question: Question) -> Answer:
        """Raise OperatorError: nobody can be asked."""
        raise OperatorError(f"{question.text!r} needs a person at the bench, but {self.reason}")

