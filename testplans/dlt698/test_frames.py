"""DL/T 698.45 on the meter's UART and BLE: frame conformance of every reply (HCS, FCS, length, control bits,
addresses, PIID, the attributes answered, values of the standard's types), the association (CONNECT,
RELEASE), refusals named with the right DAR, and reply timing."""

from __future__ import annotations

import pytest

from drivers.dlt698 import DarRefused, Data, Dlt698Link, oad, oad_text
from drivers.dlt698.link import FULL_CONFORMANCE
from rig.bench import Position
from testplans.dlt698 import spec

pytestmark = pytest.mark.plan


def _findings(problems: list[str]) -> str:
    return f": {'; '.join(problems)}" if problems else ""


def test_reply_frames_conform(link698: Dlt698Link, position: Position, record) -> None:
    """Every reply to a GET of the mandatory objects is a conforming frame and APDU, and carries a value."""
    for oi in spec.MANDATORY:
        attribute = oad(oi)
        exchange = link698.exchange(_get(link698, attribute))
        problems = exchange.problems(server=link698.server, client=link698.client)
        record(f"nonconformities in the reply to GET {oad_text(attribute)}{_findings(problems)}", len(problems), "",
               low=0, high=0, position=position, problems=problems, source=spec.STANDARD + " clause 8 (link layer)")


def _get(link: Dlt698Link, attribute: object) -> bytes:
    from dlt698 import codec
    from dlt698._native import GetRequest

    return codec.encode_apdu(GetRequest(attributes=[attribute], piid=link.next_piid()))  # type: ignore[list-item]


def test_get_list_answers_every_attribute_in_order(link698: Dlt698Link, position: Position, record) -> None:
    """GET-Request list: one reply carrying each asked attribute, in the asked order."""
    asked = [oad(oi) for oi in (spec.VOLTAGE, spec.FREQUENCY, spec.COMM_ADDRESS)]
    results = link698.get_results(asked)
    got = [oad_text(r.attribute) for r in results]
    problems = [] if got == [oad_text(a) for a in asked] else [f"answered {', '.join(got)}"]
    problems += [f"{oad_text(r.attribute)} refused (DAR {r.result})" for r in results if isinstance(r.result, int)]
    record(f"GET list of {len(asked)} attributes answered in order{_findings(problems)}", len(problems), "", low=0,
           high=0, position=position, source=spec.STANDARD + " GET-Request-NormalList")


def test_association_negotiated(link698: Dlt698Link, position: Position, record) -> None:
    """CONNECT: the meter agrees (result 0), speaks the protocol version asked, grants no conformance bit the
    client did not ask for, and no frame or APDU size above the client's; RELEASE is answered."""
    link698.release()
    response = link698.connect()
    granted = response.parameters
    problems = []
    if granted.version != spec.PROTOCOL_VERSION:
        problems.append(f"protocol version {granted.version:04X}H")
    extra = [i for i, (g, a) in enumerate(zip(granted.protocol, FULL_CONFORMANCE.protocol)) if g & ~a]
    if extra:
        problems.append(f"protocol conformance bytes {extra} grant bits not asked")
    if not any(granted.protocol):
        problems.append("no protocol conformance bit granted")
    for name, value, limit in (("send frame size", granted.send_frame_bytes, FULL_CONFORMANCE.receive_frame_bytes),
                               ("receive frame size", granted.receive_frame_bytes, FULL_CONFORMANCE.send_frame_bytes),
                               ("APDU size", granted.apdu_bytes, FULL_CONFORMANCE.apdu_bytes)):
        if not 0 < value <= limit:
            problems.append(f"{name} {value} (asked at most {limit})")
    record(f"CONNECT result{_findings(problems)}", response.result, "", low=0, high=0, position=position,
           source=spec.STANDARD + " CONNECT-Response")
    record(f"association parameters as negotiated{_findings(problems)}", len(problems), "", low=0, high=0,
           position=position, problems=problems)
    link698.release()
    link698.connect()
    assert link698.last is not None
    record("nonconformities in the CONNECT reply", len(link698.last.problems()), "", low=0, high=0,
           position=position, problems=link698.last.problems())


def test_refusals_name_the_reason(link698: Dlt698Link, position: Position, record) -> None:
    """An object the standard does not define is refused with DAR 6 (object does not exist); a SET of a
    measured value with DAR 3 (read/write denied); and the refused SET changes nothing."""
    try:
        link698.get(oad(spec.UNDEFINED_OI))
        dar = 0
    except DarRefused as refused:
        dar = refused.dar
    record(f"DAR of a GET of undefined OI {spec.UNDEFINED_OI:04X}", dar, "", low=spec.DAR_NO_OBJECT,
           high=spec.DAR_NO_OBJECT, position=position, source=spec.STANDARD + " DAR 6 object does not exist")
    before = link698.get(oad(spec.COMM_ADDRESS))
    try:
        link698.set(oad(spec.VOLTAGE), Data.array([Data.uint16(1)]))
        dar = 0
    except DarRefused as refused:
        dar = refused.dar
    record("DAR of a SET of the voltage (a measured value)", dar, "", low=spec.DAR_DENIED, high=spec.DAR_DENIED,
           position=position, source=spec.STANDARD + " DAR 3 read/write denied")
    after = link698.get(oad(spec.COMM_ADDRESS))
    record("communication address unchanged by refused requests", int(before.value == after.value), "", low=1,
           high=1, position=position)


def test_reply_timing(link698: Dlt698Link, position: Position, record) -> None:
    """Reply latency (end of request to first byte of the reply, bench time) within the reply window."""
    latencies = []
    for _ in range(5):
        link698.get(oad(spec.FREQUENCY))
        assert link698.last is not None
        latencies.append(link698.last.latency_s)
    worst = max((x for x in latencies if x is not None), default=None)
    limit = spec.REPLY_LATENCY
    record("longest reply latency over 5 GETs", worst, limit.unit, low=limit.low, high=limit.high,
           position=position, latencies=latencies, source=limit.source)
