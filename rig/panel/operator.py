"""The person at the bench answering on the panel alone (a run without a terminal: no standard input)."""

from __future__ import annotations

from drivers.clock import Clock
from rig.operator import Answer, OperatorTimeout, Question, parse_answer
from rig.panel.state import PanelState


class PanelOperator:
    """Shows each question on the panel and waits on the bench clock for an answer there, until its timeout."""

    def __init__(self, clock: Clock, state: PanelState, poll_s: float = 0.1) -> None:
        self.clock = clock
        self.state = state
        self.poll_s = poll_s

    def ask(self, question: Question) -> Answer:
        """The panel's answer; OperatorTimeout when nobody answered in time."""
        token = self.state.offer(question)
        start = self.clock.now()
        try:
            self.clock.wait_until(lambda: self.state.taken(token) is not None, question.timeout_s, self.poll_s)
            given = self.state.taken(token)
        finally:
            self.state.withdraw(token)
        if given is None:
            raise OperatorTimeout(f"no answer to {question.text!r} on the panel within {question.timeout_s:g} s")
        text, who = given
        return Answer(question, parse_answer(question, text), text, who, self.clock.now() - start)
