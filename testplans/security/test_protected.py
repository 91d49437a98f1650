"""Protected commands: remote control (1CH) in ciphertext and parameter writes (14H) with MAC are taken
only in an open session, intact, once, and before their deadline. Without a session, with a tampered MAC
or ciphertext, replayed, or past the deadline they are refused with the reference's error word and change
nothing. Per position."""

from __future__ import annotations

import datetime as dt

import pytest

from drivers.security import CIPHERTEXT_LEVEL, MAC_LEVEL, MeterSecurityClient, RemoteControl
from rig.bench import Bench, Position
from testplans.security import spec
from testplans.security.helpers import meter_deadline, refusal, status_word_3

pytestmark = pytest.mark.plan


def _refused(record, position: Position, what: str, outcome: tuple[int, str], expected: spec.Expect) -> None:
    record(f"error word of the reply to {what}", outcome[0], "", low=expected.word, high=expected.word,
           position=position, outcome=outcome[1], expected=expected.name, source=expected.source,
           check=expected.check)


def _bit(record, position: Position, secure: MeterSecurityClient, what: str, bit: int, expected: bool) -> None:
    word = status_word_3(secure.link)
    value = None if word is None else int(bool(word & bit))
    record(f"status word 3: {what}", value, "", low=int(expected), high=int(expected), position=position,
           source=spec.STATUS_SOURCE, check=True)


def test_protected_command_without_session_refused(secure: MeterSecurityClient, position: Position,
                                                   record) -> None:
    """After the session is ended (07 00 02 FF) a remote-control command made with its keys is refused
    ('identity authentication timed out', 0x08) and does nothing; the status word drops the session."""
    secure.authenticate()
    secure.end()
    _bit(record, position, secure, "identity authenticated after the session end", spec.AUTHENTICATED, False)
    outcome = refusal(lambda: secure.control(RemoteControl.TRIP, even_if_closed=True))
    _refused(record, position, "a trip without a session", outcome, spec.NO_SESSION)
    _bit(record, position, secure, "relay open after the refused trip", spec.RELAY_OPEN, False)


def test_tampered_mac_refused(bench: Bench, secure: MeterSecurityClient, position: Position, record) -> None:
    """A trip, a level-99 clock write and a validity write whose MAC was altered are refused (1C: MAC error
    0x02; 14H: unauthorised; 03H: ESAM verification failed) and change nothing; the session survives."""
    secure.authenticate()
    trip = secure.control_request(RemoteControl.TRIP).tampered("mac", bit=0)
    _refused(record, position, "a trip with a tampered MAC", refusal(lambda: secure.send(trip)), spec.MAC_ERROR)
    _bit(record, position, secure, "relay open after the refused trip", spec.RELAY_OPEN, False)
    before = secure.link.read_datetime()
    shifted = (before + dt.timedelta(hours=3)).time().replace(microsecond=0)
    write = secure.session.write_request(spec.TIME, shifted, level=MAC_LEVEL, now_s=bench.clock.now())
    _refused(record, position, "a level-99 clock write with a tampered MAC",
             refusal(lambda: secure.send(write.tampered("mac", bit=5))), spec.WRITE_REFUSED)
    moved = (secure.link.read_datetime() - before).total_seconds()
    record("meter clock moved by the refused write", moved, "s", low=-5.0, high=5.0, position=position)
    validity = secure.session.validity_request(spec.WORKING_VALIDITY_MIN, now_s=bench.clock.now())
    _refused(record, position, "a validity write with a tampered MAC",
             refusal(lambda: secure.send(validity.tampered("mac", bit=7))), spec.TAMPERED_VALIDITY)
    outcome = refusal(lambda: secure.control(RemoteControl.ALARM_OFF))
    record("error word of an intact command after the refusals", outcome[0], "", low=0, high=0, position=position,
           outcome=outcome[1])


def test_tampered_ciphertext_refused(secure: MeterSecurityClient, position: Position, record) -> None:
    """A trip whose ciphertext was altered is refused (MAC error 0x02) and the relay stays closed."""
    secure.authenticate()
    trip = secure.control_request(RemoteControl.TRIP).tampered("ciphertext", bit=1)
    _refused(record, position, "a trip with a tampered ciphertext", refusal(lambda: secure.send(trip)),
             spec.MAC_ERROR)
    _bit(record, position, secure, "relay open after the refused trip", spec.RELAY_OPEN, False)


def test_replayed_frame_refused(secure: MeterSecurityClient, position: Position, record) -> None:
    """A remote-control frame sent a second time is refused (0x02): the alarm switched on by it and off
    by the next command stays off."""
    secure.authenticate()
    alarm_on = secure.control_request(RemoteControl.ALARM_ON)
    outcome = refusal(lambda: secure.send(alarm_on))
    record("error word of the first alarm-on command", outcome[0], "", low=0, high=0, position=position,
           outcome=outcome[1])
    secure.control(RemoteControl.ALARM_OFF)
    _refused(record, position, "the alarm-on frame replayed", refusal(lambda: secure.send(alarm_on)), spec.MAC_ERROR)
    _bit(record, position, secure, "alarm on after the replay", spec.ALARM, False)


def test_expired_deadline_refused(secure: MeterSecurityClient, position: Position, record) -> None:
    """A trip whose deadline lies a minute before the meter's clock is refused (0x10) and does nothing; one
    whose deadline lies ahead is taken (an alarm command, to leave the load on)."""
    secure.authenticate()
    passed = meter_deadline(secure.link, -60.0)
    _refused(record, position, "a trip whose deadline passed a minute ago",
             refusal(lambda: secure.control(RemoteControl.TRIP, passed)), spec.DEADLINE_PASSED)
    _bit(record, position, secure, "relay open after the refused trip", spec.RELAY_OPEN, False)
    ahead = meter_deadline(secure.link, 600.0)
    outcome = refusal(lambda: secure.control(RemoteControl.ALARM_OFF, ahead))
    record("error word of a command whose deadline lies ahead", outcome[0], "", low=0, high=0, position=position,
           outcome=outcome[1])


@pytest.mark.parametrize("level", [MAC_LEVEL, CIPHERTEXT_LEVEL], ids=["level99-mac", "level98-ciphertext"])
def test_parameter_write_with_mac(bench: Bench, secure: MeterSecurityClient, position: Position, level: int,
                                  record) -> None:
    """A clock write with MAC (level 99) or in ciphertext with MAC (level 98) in an open session is taken:
    the meter's clock shows the written time."""
    secure.authenticate()
    target = (bench.clock.datetime_now() + dt.timedelta(hours=2)).replace(microsecond=0)
    outcome = refusal(lambda: secure.write(spec.TIME, target.time(), level=level))
    record(f"error word of a level-{level:X} clock write", outcome[0], "", low=0, high=0, position=position,
           outcome=outcome[1])
    shown = secure.link.read_datetime().time()
    seconds = (shown.hour - target.hour) * 3600 + (shown.minute - target.minute) * 60 + shown.second - target.second
    offset = (seconds + 43200) % 86400 - 43200  # across midnight too
    record(f"meter clock after the level-{level:X} write, against the written time", offset, "s", low=-5.0,
           high=5.0, position=position)
