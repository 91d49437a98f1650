"""The session's validity on the bench's clock: set with MAC (03H, DI 07 00 01 FF), a session takes
protected commands until it has run that long and refuses them after (0x08), and the status word drops
it. Per position."""

from __future__ import annotations

import pytest

from drivers.security import MeterSecurityClient, RemoteControl
from rig.bench import Bench, Position
from testplans.security import spec
from testplans.security.helpers import refusal, status_word_3

pytestmark = pytest.mark.plan


def test_session_expires_on_the_clock(bench: Bench, secure: MeterSecurityClient, position: Position,
                                      record) -> None:
    """With the validity set to a short time, a command just before it runs out is taken and one just
    after is refused ('identity authentication timed out'); the status word follows."""
    secure.authenticate()
    outcome = refusal(lambda: secure.set_validity(spec.TEST_VALIDITY_MIN))
    record(f"error word of the validity write ({spec.TEST_VALIDITY_MIN} min, with MAC)", outcome[0], "", low=0, high=0,
           position=position, outcome=outcome[1])
    validity_s = 60.0 * spec.TEST_VALIDITY_MIN
    bench.clock.sleep(validity_s - spec.EXPIRY_MARGIN_S)
    outcome = refusal(lambda: secure.control(RemoteControl.ALARM_OFF, even_if_closed=True))
    record(f"error word of a command {spec.EXPIRY_MARGIN_S:g} s before the validity ends", outcome[0], "", low=0,
           high=0, position=position, outcome=outcome[1])
    word = status_word_3(secure.link) or 0
    record("status word 3 shows the session before it ends", int(bool(word & spec.AUTHENTICATED)), "", low=1, high=1,
           position=position, source=spec.STATUS_SOURCE, check=True)
    bench.clock.sleep(2 * spec.EXPIRY_MARGIN_S)
    expected = spec.NO_SESSION
    outcome = refusal(lambda: secure.control(RemoteControl.TRIP, even_if_closed=True))
    record(f"error word of a trip {spec.EXPIRY_MARGIN_S:g} s after the validity ended", outcome[0], "",
           low=expected.word, high=expected.word, position=position, outcome=outcome[1], expected=expected.name,
           source=expected.source)
    word = status_word_3(secure.link) or 0
    record("status word 3 shows the session after it ended", int(bool(word & spec.AUTHENTICATED)), "", low=0, high=0,
           position=position, source=spec.STATUS_SOURCE, check=True)
    record("status word 3, relay open after the refused trip", int(bool(word & spec.RELAY_OPEN)), "", low=0, high=0,
           position=position, source=spec.STATUS_SOURCE, check=True)
