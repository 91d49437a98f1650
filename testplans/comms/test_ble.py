"""DL/T 645-2007 over the meter's Bluetooth LE: what only BLE has. The meter advertises its name and its
transparent-UART service is there; the ATT MTU is negotiated and kept (requests longer than one write are
taken, no notification is longer than the MTU allows); replies longer than one notification arrive whole;
after a link drop the link reconnects and a command sent once acts once (the programming count moves by
one, no unasked frame comes); pairing is required when the bench file says so. Per position, over BLE (a
position without BLE skips, saying so). The framing, clock and consistency plans run over BLE too."""

from __future__ import annotations

import contextlib

import pytest

from drivers.dlt645 import Dlt645Frame, FrameReader, Function, encode_di
from drivers.dlt645.ble_link import BleMeterLink
from drivers.errors import RigError
from rig.bench import Bench, Position
from rig.procedures import RackCache
from testplans.comms import spec
from testplans.comms.helpers import power_meters, restore_clock
from testplans.transports import BLE, meter_link

pytestmark = pytest.mark.plan


@pytest.fixture
def ble_link(bench: Bench, rack: RackCache, position: Position) -> BleMeterLink:
    """The position's DL/T 645 link over BLE, its meter powered (skips a position without BLE)."""
    link = meter_link(position, BLE)
    assert isinstance(link, BleMeterLink)
    power_meters(bench, rack)
    return link


def _connect(link: BleMeterLink) -> str:
    """Connect (if not yet); '' or what went wrong."""
    try:
        link.ble.connect()
    except RigError as exc:
        return str(exc)
    return ""


def test_advertising_and_service(ble_link: BleMeterLink, position: Position, record) -> None:
    """The meter advertises (under the bench file's name, when it gives one), its GATT table holds the
    transparent-UART service with a writable and a notifying characteristic, and it answers a read there."""
    ble = ble_link.ble
    ble.drop()  # a meter advertises while no central holds it
    heard = ble.scan()
    adv = heard[1] if heard is not None else None
    record("meter heard advertising", int(adv is not None), "", low=1, high=1, position=position,
           target=ble_link.target.label, devices_heard=sorted(a.local_name or a.address for a in ble.seen.values()))
    if ble_link.target.name is not None:
        name = adv.local_name if adv is not None else None
        record("advertised name is the bench file's", int(name == ble_link.target.name), "", low=1, high=1,
               position=position, advertised=name, expected=ble_link.target.name)
    if adv is not None:
        record("transparent-UART service in the advertising", int(ble_link.target.service_uuid in adv.service_uuids),
               "", position=position, advertised=list(adv.service_uuids), rssi_dbm=adv.rssi)
    problem = _connect(ble_link)
    offered = {s.uuid: s for s in ble.services}
    service = offered.get(ble_link.target.service_uuid)
    record("transparent-UART service in the GATT table", int(service is not None and not problem), "", low=1,
           high=1, position=position, service=ble_link.target.service_uuid, offered=sorted(offered), problem=problem)
    chars = {c.uuid: c.properties for c in service.characteristics} if service is not None else {}
    for role, uuid, wanted in (("write", ble_link.target.write_uuid, ("write", "write-without-response")),
                               ("notify", ble_link.target.notify_uuid, ("notify", "indicate"))):
        ok = bool(set(chars.get(uuid, ())) & set(wanted))
        record(f"{role} characteristic present with its property", int(ok), "", low=1, high=1, position=position,
               characteristic=uuid, properties=list(chars.get(uuid, ())))
    try:
        ble_link.read_number(spec.FORWARD_ENERGY)
        answered, why = 1, ""
    except RigError as exc:
        answered, why = 0, str(exc)
    record("read answered over the service", answered, "", low=1, high=1, position=position, problem=why)


def test_mtu_negotiation(bench: Bench, ble_link: BleMeterLink, position: Position, record) -> None:
    """The ATT MTU is negotiated (23 up to 517); a request longer than one write (a 14H write) is taken and
    answered; no notification of the meter is longer than the negotiated MTU allows (MTU - 3)."""
    ble = ble_link.ble
    problem = _connect(ble_link)
    mtu = ble.mtu if not problem else None
    limit = spec.ATT_MTU
    record("negotiated ATT MTU", mtu, limit.unit, low=limit.low, high=limit.high, position=position,
           source=limit.source, problem=problem)
    if mtu is None:
        return
    payload = mtu - spec.ATT_HEADER_BYTES
    before = (ble.stats.writes, ble.stats.oversized_notifications)
    problems: list[str] = []
    try:
        for di in spec.MANDATORY_ITEMS:
            ble_link.read(di)
        ble_link.write(spec.TIME, bench.clock.datetime_now().time().replace(microsecond=0))
    except RigError as exc:
        problems.append(str(exc))
    finally:
        restore_clock(bench, ble_link)
    request = ble_link.last.request if ble_link.last is not None else None
    record("requests longer than one write answered", int(not problems), "", low=1, high=1, position=position,
           problems=problems, request_bytes=len(request.data) + 12 + ble_link.preamble if request else None,
           write_payload=payload)
    record("largest write of the rig", ble.stats.largest_write, "bytes", low=1, high=payload, position=position,
           writes=ble.stats.writes - before[0], source=spec.BLE_CORE + " 3.4.5.1")
    record("notifications longer than the negotiated MTU allows", ble.stats.oversized_notifications - before[1],
           "notifications", low=0, high=0, position=position, largest=ble.stats.largest_notification,
           allowed=payload, source=spec.BLE_CORE + " 3.4.7.1: a notification carries at most ATT_MTU - 3 bytes")


def test_replies_longer_than_one_notification(ble_link: BleMeterLink, position: Position, record) -> None:
    """Replies that take several notifications (the reading of every mandatory item, at the negotiated MTU)
    arrive whole: a valid, conforming frame each time, without a retry."""
    ble = ble_link.ble
    problem = _connect(ble_link)
    if problem:
        record("link to the meter", 0, "", low=1, high=1, position=position, problem=problem)
        return
    payload = (ble.mtu or 23) - spec.ATT_HEADER_BYTES
    spanning = broken = 0
    details: list[str] = []
    for di in spec.MANDATORY_ITEMS:
        before = ble.stats.notifications
        exchange = ble_link.exchange(Dlt645Frame.request(ble_link.address, Function.READ, encode_di(di)))
        received = sum(len(a.received) for a in exchange.attempts)
        if received <= payload and ble.stats.notifications - before <= 1:
            continue
        spanning += 1
        issues = exchange.problems(ble_link.address) + (["needed a retry"] if exchange.retried else [])
        if exchange.reply is None or issues:
            broken += 1
            details.append(f"DI {di:08X}: {'; '.join(issues) or 'no reply'}")
    if not spanning:
        pytest.skip(f"{position.name}: at ATT MTU {ble.mtu} every reply fits one notification: nothing to reassemble")
    record("replies that spanned several notifications", spanning, "replies", low=1, position=position,
           notification_payload=payload)
    record("replies spanning several notifications that arrived broken", broken, "replies", low=0, high=0,
           position=position, problems=details)


def _unasked(stray: bytes) -> int:
    """Frames in bytes that came before a request was sent (none of them asked for)."""
    return sum(1 for item in FrameReader().feed(stray) if isinstance(item, Dlt645Frame))


def test_reconnect_command_once(bench: Bench, ble_link: BleMeterLink, position: Position, record) -> None:
    """After a link drop the link reconnects by itself and a write (14H, the bench file's password) sent once is
    taken once: the programming count moves by exactly one across that and a second drop and reconnect, the
    write is answered normally, and no unasked frame comes after a reconnect (a module that replays the last
    request to the MCU makes the meter act twice)."""
    ble = ble_link.ble
    problem = _connect(ble_link)
    if problem:
        record("link to the meter", 0, "", low=1, high=1, position=position, problem=problem)
        return
    stray = b""
    answered, why = 1, ""
    connections = ble.stats.connections
    try:
        first = ble_link.read_number(spec.PROGRAMMING_COUNT)
        ble.drop()
        try:
            exchange = ble_link.write(spec.TIME, bench.clock.datetime_now().time().replace(microsecond=0))
            stray += exchange.stray
        except RigError as exc:
            answered, why = 0, str(exc)
        ble.drop()
        ble.connect()
        ble_link.read_number(spec.PROGRAMMING_COUNT)  # what an unasked reply left waiting is taken as stray
        stray += ble_link.last.stray if ble_link.last is not None else b""
        last = ble_link.read_number(spec.PROGRAMMING_COUNT)
    finally:
        with contextlib.suppress(RigError):
            restore_clock(bench, ble_link)
    record("write sent after a link drop answered normally", answered, "", low=1, high=1, position=position,
           problem=why, reconnects=ble.stats.connections - connections)
    once = spec.ONCE
    record("programming events from one write across two reconnects", last - first, once.unit, low=once.low,
           high=once.high, position=position, before=first, after=last, source=once.source)
    record("unasked frames after reconnecting", _unasked(stray), "frames", low=0, high=0, position=position,
           stray_bytes=len(stray))


def test_pairing_required(ble_link: BleMeterLink, position: Position, record) -> None:
    """When the bench file says the meter requires pairing: a request written without pairing is refused
    (insufficient encryption or authentication), and the paired link is answered."""
    if not ble_link.target.pairing:
        pytest.skip(f"{position.name}: the bench file does not ask for pairing (ble.pairing)")
    refusal = ble_link.ble.write_without_pairing(ble_link.request_bytes(spec.FORWARD_ENERGY))
    record("request written without pairing refused", int(refusal is not None), "", low=1, high=1,
           position=position, refusal=refusal)
    try:
        ble_link.read_number(spec.FORWARD_ENERGY)
        answered, why = 1, ""
    except RigError as exc:
        answered, why = 0, str(exc)
    record("read answered over the paired link", answered, "", low=1, high=1, position=position, problem=why)
