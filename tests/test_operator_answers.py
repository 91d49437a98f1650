"""Unattended bench runs: prepared operator answers come from a file, are recorded as such, and a
question the file does not answer still goes to the person (or fails clearly when nobody is there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.operator import AnswersFileOperator, NoOperator, OperatorError, Question


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
        operator.ask(Question("Replace the battery, then confirm", "confirm", "battery.replaced"))


@pytest.mark.parametrize(("text", "message"), [("- a list\n", "must map topics"), ("a: [unclosed\n", "answers file")])
def test_bad_answers_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(OperatorError, match=message):
        AnswersFileOperator(_answers(tmp_path, text), NoOperator("x"))


def test_answer_that_does_not_fit_the_question_names_the_topic(tmp_path: Path) -> None:
    operator = AnswersFileOperator(_answers(tmp_path, "ambient.temperature_c: warm\n"), NoOperator("x"))
    with pytest.raises(OperatorError, match=r"topic 'ambient\.temperature_c'"):
        operator.ask(Question("Ambient temperature?", "number", "ambient.temperature_c"))
