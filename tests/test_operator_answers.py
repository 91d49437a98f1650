"""Unattended bench runs: prepared operator answers come from a file, are recorded as such, and a
question the file does not answer still goes to the person (or fails clearly when nobody is there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.operator import AnswersFileOperator, NoOperator, OperatorError, Question, load_answers


def _answers(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(text)
    return path


def test_prepared_answers_are_used_and_attributed(tmp_path: Path) -> None:
    path = _answers(tmp_path, "meter.connected: yes\nambient.temperature_c: 23.5\n")
    operator = AnswersFileOperator(path, NoOperator("nobody is at the bench"))
    confirm = operator.ask(Question("Is the meter connected?", "confirm", "meter.connected"))
    assert confirm.value is True and confirm.by == "answers file answers.yaml"
    number = operator.ask(Question("Ambient temperature?", "number", "ambient.temperature_c", unit="°C"))
    assert number.value == pytest.approx(23.5)


def test_unprepared_question_goes_to_the_fallback(tmp_path: Path) -> None:
    operator = AnswersFileOperator(_answers(tmp_path, "meter.connected: yes\n"), NoOperator("nobody is at the bench"))
    with pytest.raises(OperatorError, match="needs a person at the bench, but nobody is at the bench"):
        operator.ask(Question("Replace the battery, then confirm", "confirm", "meter.battery.replace"))


@pytest.mark.parametrize(("text", "message"), [("- a list\n", "must map topics"), ("a: [unclosed\n", "answers file")])
def test_bad_answers_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(OperatorError, match=message):
        AnswersFileOperator(_answers(tmp_path, text), NoOperator("x"))


@pytest.mark.parametrize(("text", "message"), [
    ("ambient.temperature_c: warm\n", r"topic 'ambient\.temperature_c': answer a number in °C"),
    ("ambient.humidity_pct: 150\n", r"ambient\.humidity_pct.: 150 is not plausible: answer a number from 0 to 100"),
    ("meter.connected: perhaps\n", r"topic 'meter\.connected': answer y \(yes\) or n \(no\)"),
    ("meter.conected: yes\n", r"unknown topic 'meter\.conected'; the topics the rig asks: .*meter\.connected"),
])
def test_an_answer_or_topic_that_does_not_fit_is_refused_when_the_file_is_read(tmp_path: Path, text: str,
                                                                                 message: str) -> None:
    """Checked before the run starts (a misspelt topic would otherwise be silently ignored)."""
    with pytest.raises(OperatorError, match=message):
        load_answers(_answers(tmp_path, text))
    with pytest.raises(OperatorError, match=message):
        AnswersFileOperator(_answers(tmp_path, text), NoOperator("x"))
