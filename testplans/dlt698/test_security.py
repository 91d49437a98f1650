"""DL/T 698.45 security, over the UART and BLE: a symmetric-security association backed by the bench's ESAM key
source; GET and SET in the modes a master station uses (plaintext + RN, plaintext + SID_MAC, ciphertext +
SID_MAC), each reply's MAC checked; and the negative cases — a wrong MAC, a replayed counter, a session opened
with the wrong key, an expired session — refused with the standard's DAR and without effect.

What the ESAM computes is the rig's documented SM4 emulation (the real algorithms are unpublished); the
messages are the standard's."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

import pytest

from drivers.dlt698 import DarRefused, Dlt698Link, oad
from drivers.dlt698.apdu import as_datetime, date_time_s
from drivers.dlt698.security import MODES, SecureLink
from drivers.errors import RigError
from drivers.security import KeySource, SoftwareKeySource
from rig.bench import Bench, Position
from testplans.dlt698 import spec

pytestmark = pytest.mark.plan

CLOCK = oad(spec.DATE_TIME)
FAR = dt.datetime(2030, 6, 1, 12, 0, 0)  # a clock value no meter shows unless a refused SET took effect


@pytest.fixture
def secure(bench: Bench, link698: Dlt698Link, position: Position, esam_keys: KeySource) -> Iterator[SecureLink]:
    """A fresh security session with the position's meter; its clock put back and the session closed after."""
    client = SecureLink(link698, esam_keys, position.address)
    client.associate()
    yield client
    with contextlib.suppress(RigError):
        client.associate()
        client.set(CLOCK, date_time_s(bench.clock.datetime_now() + dt.timedelta(seconds=0.5)), "cipher+sid_mac")
    client.close()
    link698.connected = None  # the next plan associates plainly again


def _meter_clock_s(bench: Bench, link: Dlt698Link) -> float:
    """The meter's clock against the bench's calendar, s."""
    return (as_datetime(link.get(CLOCK)) - bench.clock.datetime_now()).total_seconds()


@pytest.mark.parametrize("mode", MODES)
def test_secured_reads_and_writes(bench: Bench, secure: SecureLink, position: Position, mode: str, record) -> None:
    """In each mode: a GET of the address comes back with a MAC that checks and the nameplate address; in the
    SID_MAC modes a SET of the clock is accepted and takes effect."""
    address = secure.get(oad(spec.COMM_ADDRESS), mode)  # type: ignore[arg-type]
    text = address.value.hex() if isinstance(address.value, bytes) else str(address.value)
    record(f"secured GET ({mode}) of the address, MAC checked", int(text == position.address), "", low=1, high=1,
           position=position, read=text, source=spec.STANDARD + " SECURITY-Request/Response")
    if mode == "plain+rn":
        return  # RN protects reads; a meter takes writes with SID_MAC
    target = bench.clock.datetime_now() + dt.timedelta(hours=1)
    secure.set(CLOCK, date_time_s(target), mode)  # type: ignore[arg-type]
    moved = _meter_clock_s(bench, secure.link)
    record(f"secured SET ({mode}) of the clock took effect (one hour ahead)", moved, "s", low=3600 - 5, high=3600 + 5,
           position=position)


def _refused(action: object) -> int:
    try:
        action()  # type: ignore[operator]
    except DarRefused as refused:
        return refused.dar
    return 0


def test_wrong_mac_and_replay_refused_without_effect(bench: Bench, secure: SecureLink, position: Position,
                                                     record) -> None:
    """A SET with a wrong MAC gets DAR 22 (ESAM verification failed); a SET under an already used counter
    DAR 23 (security authentication failed); the clock moves for neither."""
    secure.set(CLOCK, date_time_s(bench.clock.datetime_now()), "plain+sid_mac")
    used = secure.counter
    for what, kwargs, dar in (("a wrong MAC", {"bad_mac": True}, spec.DAR_MAC_WRONG),
                              ("a replayed counter", {"counter": used}, spec.DAR_REPLAY)):
        got = _refused(lambda kwargs=kwargs: secure.set(CLOCK, date_time_s(FAR), "plain+sid_mac", **kwargs))
        record(f"DAR of a SET with {what}", got, "", low=dar, high=dar, position=position,
               source=spec.STANDARD + " DAR (security)")
        offset = _meter_clock_s(bench, secure.link)
        record(f"meter clock unmoved by the SET with {what}", offset, "s", low=-5, high=5, position=position)


def test_wrong_key_and_expired_session_refused(bench: Bench, secure: SecureLink, position: Position,
                                               record) -> None:
    """A symmetric association from another master key is refused (CONNECT result 2, symmetric decryption
    error); a SET after the session's validity has passed gets DAR 20 and does not act."""
    stranger = SecureLink(secure.link, SoftwareKeySource.generate("a key that is not the bench's"), position.address)
    result = 0
    try:
        stranger.associate()
    except DarRefused as refused:
        result = refused.dar
    record("CONNECT result with another master key", result, "", low=spec.CONNECT_SYMMETRIC_ERROR,
           high=spec.CONNECT_SYMMETRIC_ERROR, position=position, source=spec.STANDARD + " ConnectResult")
    secure.associate()
    bench.clock.sleep(spec.SESSION_VALIDITY_S + 5.0)
    got = _refused(lambda: secure.set(CLOCK, date_time_s(FAR), "plain+sid_mac"))
    record("DAR of a SET after the session expired", got, "", low=spec.DAR_NO_SESSION, high=spec.DAR_NO_SESSION,
           position=position, source=spec.STANDARD + " DAR 20 security authentication mismatch")
    record("meter clock unmoved by the SET after expiry", _meter_clock_s(bench, secure.link), "s", low=-5, high=5,
           position=position)
