"""The terminal and the panel asked at once: the first answer wins and says where it was given; the panel
alone when there is no terminal. On the manual clock: a person who answers after some bench seconds."""

from __future__ import annotations

import io
from typing import Any

import pytest

from drivers.clock import ManualClock
from rig.operator import OperatorTimeout, Question, TerminalOperator
from rig.panel import PanelOperator, PanelState

MOUNTED = Question("Is meter 000000000002 mounted at P2?", "confirm", "meter.connected", position="P2",
                   address="000000000002", timeout_s=300.0)


class PanelPerson(ManualClock):
    """Bench time in which someone at the panel answers `text` once `after_s` bench seconds have passed."""

    def __init__(self, state: PanelState, text: str | None, after_s: float) -> None:
        super().__init__()
        self.state, self.text, self.after_s = state, text, after_s
        self.replies: list[str | None] = []

    def sleep(self, duration_s: float) -> None:
        super().sleep(duration_s)
        waiting = self.state.snapshot()["prompts"]
        if self.text is not None and self.t >= self.after_s and waiting and not self.replies:
            self.replies.append(self.state.answer(waiting[0]["id"], self.text, "operator bob (panel)"))


@pytest.fixture
def state() -> PanelState:
    return PanelState(title="t", run_id="r", positions=[("P2", "000000000002")], live=True, who="operator bob")


def test_the_panel_answers_while_the_terminal_waits(state: PanelState, pipe: tuple[Any, Any]) -> None:
    reader, _ = pipe
    clock = PanelPerson(state, "yes", after_s=12.0)
    shown = io.StringIO()
    answer = TerminalOperator(clock, stdin=reader, stdout=shown, who="alice", rival=state).ask(MOUNTED)
    assert (answer.value, answer.by) == (True, "operator bob (panel)")
    assert 12.0 <= answer.waited_s < 12.5
    assert shown.getvalue().endswith("\n[operator] answered by operator bob (panel): yes\n")
    assert state.snapshot()["prompts"] == [], "the question leaves the page once answered"


def test_the_terminal_answers_first_and_the_panel_stops_asking(state: PanelState,
                                                               pipe: tuple[Any, Any]) -> None:
    reader, writer = pipe
    writer.write("n\n")
    writer.flush()
    clock = PanelPerson(state, None, after_s=0.0)
    answer = TerminalOperator(clock, stdin=reader, stdout=io.StringIO(), who="alice", rival=state).ask(MOUNTED)
    assert (answer.value, answer.by) == (False, "operator alice (terminal)")
    assert state.snapshot()["prompts"] == []
    assert state.answer(1, "yes", "operator bob (panel)") == "this question was answered already (or is no " \
                                                             "longer asked)"


def test_a_closed_terminal_leaves_the_question_to_the_panel(state: PanelState, pipe: tuple[Any, Any]) -> None:
    reader, writer = pipe
    writer.close()  # end of input: nobody can type here
    clock = PanelPerson(state, "y", after_s=30.0)
    answer = TerminalOperator(clock, stdin=reader, stdout=io.StringIO(), who="alice", rival=state).ask(MOUNTED)
    assert (answer.value, answer.by) == (True, "operator bob (panel)")


def test_without_a_terminal_the_panel_alone_is_asked_until_the_timeout(state: PanelState) -> None:
    clock = PanelPerson(state, "23.5", after_s=60.0)
    ambient = Question("Ambient temperature at the bench?", "number", "ambient.temperature_c", unit="°C")
    answer = PanelOperator(clock, state).ask(ambient)
    assert (answer.value, answer.text, answer.by) == (23.5, "23.5", "operator bob (panel)")

    nobody = PanelPerson(state, None, after_s=0.0)
    with pytest.raises(OperatorTimeout, match="no answer to 'Is meter 000000000002 mounted at P2\\?' on the panel "
                                              "within 300 s"):
        PanelOperator(nobody, state).ask(MOUNTED)
    assert nobody.t == pytest.approx(300.0, abs=0.2)
    assert state.snapshot()["prompts"] == [], "a question that timed out leaves the page"
