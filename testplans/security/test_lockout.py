"""MAC-error lockout: protected data that fails verification (tampered MAC or ciphertext, replays) is
counted; the 200th failure of the day suspends the meter (remote control 0x01, authentication SERR
0x0100) and its daily reset, at the meter's midnight, lifts it. Per position.

The meter's clock is set just before its midnight first, so failures of earlier tests do not count;
command deadlines follow the meter's clock."""

from __future__ import annotations

import pytest

from drivers.security import MAC_LEVEL, MeterSecurityClient, RemoteControl, SecureRequest
from rig.bench import Bench, Position
from testplans.security import spec
from testplans.security.helpers import cross_meter_midnight, meter_deadline, refusal

pytestmark = pytest.mark.plan


def _failure(bench: Bench, secure: MeterSecurityClient, number: int, replay: SecureRequest) -> SecureRequest:
    """The `number`th bad request of a mix: tampered MAC, tampered ciphertext, a replayed frame, a write
    with a tampered MAC."""
    kind = number % 4
    if kind == 0:
        return secure.control_request(RemoteControl.TRIP).tampered("mac", bit=number % 8)
    if kind == 1:
        return secure.control_request(RemoteControl.TRIP).tampered("ciphertext", bit=number % 8)
    if kind == 2:
        return replay
    return secure.session.write_request(spec.TIME, bench.clock.datetime_now().time().replace(microsecond=0),
                                        level=MAC_LEVEL, now_s=bench.clock.now()).tampered("mac", bit=number % 8)


def test_lockout_after_threshold_and_daily_reset(bench: Bench, secure: MeterSecurityClient, position: Position,
                                                 record) -> None:
    """199 failures leave the meter working; the 200th suspends it; after its midnight it works again."""
    link = secure.link
    cross_meter_midnight(bench.clock, link)
    secure.authenticate()
    secure.set_validity(spec.WORKING_VALIDITY_MIN)
    threshold = spec.LOCKOUT_THRESHOLD
    replay = secure.control_request(RemoteControl.ALARM_OFF, meter_deadline(link, 600.0))
    secure.send(replay)  # taken once; every later copy is a replay
    accepted = 0
    for number in range(threshold - 1):
        accepted += refusal(lambda n=number: secure.send(_failure(bench, secure, n, replay)))[0] == 0
    record(f"bad requests accepted among the first {threshold - 1}", accepted, "requests", low=0, high=0,
           position=position)
    outcome = refusal(lambda: secure.control(RemoteControl.ALARM_OFF, meter_deadline(link, 600.0)))
    record(f"error word of a valid command after {threshold - 1} failures", outcome[0], "", low=0, high=0,
           position=position, outcome=outcome[1], source=spec.LOCKOUT_SOURCE)
    refusal(lambda: secure.send(_failure(bench, secure, threshold, replay)))
    expected = spec.SUSPENDED_CONTROL
    outcome = refusal(lambda: secure.control(RemoteControl.ALARM_OFF, meter_deadline(link, 600.0)))
    record(f"error word of a valid command after {threshold} failures", outcome[0], "", low=expected.word,
           high=expected.word, position=position, outcome=outcome[1], expected=expected.name,
           source=spec.LOCKOUT_SOURCE)
    expected = spec.SUSPENDED_AUTHENTICATION
    outcome = refusal(secure.authenticate)
    record(f"error word of an authentication after {threshold} failures", outcome[0], "", low=expected.word,
           high=expected.word, position=position, outcome=outcome[1], expected=expected.name,
           source=spec.LOCKOUT_SOURCE)
    cross_meter_midnight(bench.clock, link)
    outcome = refusal(secure.authenticate)
    record("error word of an authentication after the meter's midnight", outcome[0], "", low=0, high=0,
           position=position, outcome=outcome[1], source=spec.LOCKOUT_SOURCE)
    outcome = refusal(lambda: secure.control(RemoteControl.ALARM_OFF, meter_deadline(link, 600.0)))
    record("error word of a valid command after the meter's midnight", outcome[0], "", low=0, high=0,
           position=position, outcome=outcome[1], source=spec.LOCKOUT_SOURCE)
