"""DL/T 645-2007 on the meter's UART: frame conformance of every reply, wake-up preamble, wildcard and
broadcast addressing, abnormal replies, reply timing, line settings, baud change, password-checked
writes and the address write. Per position; values in the standard's units and data identifiers."""

from __future__ import annotations

import pytest

from drivers.dlt645 import WILDCARD_ADDRESS, Dlt645Frame, ErrorCode, Function, abnormal_error, baud_word, encode_di
from drivers.dlt645.link import AbnormalReply, LineSettings, MeterLink
from drivers.errors import FrameError, InstrumentTimeout, RigError
from rig.bench import Bench, Position
from testplans.comms import spec
from testplans.comms.helpers import clock_offset_s, restore_line

pytestmark = pytest.mark.plan


def findings(problems: list[str]) -> str:
    """What the meter did against the standard, for a record's name: a failure shows its record's name
    wherever it is reported (console, JUnit, report.html, certificate), the detail only in results.json."""
    return f": {'; '.join(problems)}" if problems else ""


def refusal(reply: Dlt645Frame | None) -> str:
    """'refused it: <error word>' for an abnormal reply ('' otherwise)."""
    if reply is None or not reply.is_abnormal:
        return ""
    try:
        error = abnormal_error(reply)
    except RigError as exc:
        return f"refused it ({exc})"
    return f"refused it: error word 0x{int(error):02X} ({error.name or 'unknown bits'})"


def _problems(record, link: MeterLink, what: str, position: Position, extra: tuple[str, ...] = ()) -> None:
    """Record the nonconformities of the link's last exchange (limit: none), named in the record."""
    exchange = link.last
    assert exchange is not None
    problems = [*exchange.problems(link.address), *extra]
    record(f"nonconformities in the reply to {what}{findings(problems)}", len(problems), "", low=0, high=0,
           position=position, problems=problems, source=spec.REFERENCE + " 'Frame')")


def test_reply_frames_conform(link: MeterLink, position: Position, record) -> None:
    """Every reply to a read of the mandatory items is a well-formed frame: start and end bytes, address
    lowest byte first, control byte = request | 80H, +33H on the data, checksum, DI echoed, value in
    the item's format; the read-address reply too."""
    for di in spec.MANDATORY_ITEMS:
        link.exchange(Dlt645Frame.request(link.address, Function.READ, encode_di(di)))
        _problems(record, link, f"read DI {di:08X}", position)
        reply = link.last.reply if link.last else None
        normal = reply is not None and not reply.is_abnormal
        why = "" if normal else f": the meter {refusal(reply) or 'did not answer'}"
        record(f"normal reply to read DI {di:08X}{why}", int(normal), "", low=1, high=1, position=position)
    link.exchange(Dlt645Frame.request(WILDCARD_ADDRESS, Function.READ_ADDRESS))
    _problems(record, link, "read address", position)


def test_preamble_handling(link: MeterLink, position: Position, record) -> None:
    """A request is answered with 0 to 4 FE wake-up bytes before it."""
    for count in spec.PREAMBLES:
        link.exchange(Dlt645Frame.request(link.address, Function.READ, encode_di(spec.FORWARD_ENERGY)),
                      preamble=count)
        exchange = link.last
        assert exchange is not None
        # Only a normal reply that conforms shows the request was understood: an abnormal one may be the
        # meter refusing what it could not parse.
        problems = exchange.problems(link.address)
        refused = refusal(exchange.reply)
        problems += [f"the meter {refused}"] if refused else []
        ok = exchange.reply is not None and not problems
        record(f"normal, conforming reply with {count} FE wake-up byte(s){findings(problems)}", int(ok), "",
               low=1, high=1, position=position, problems=problems)


def test_wildcard_and_broadcast(bench: Bench, link: MeterLink, position: Position, record) -> None:
    """The all-AA read-address request gets the meter's own address; an abbreviated address (high
    bytes AA) reaches it too; nothing answers a broadcast."""
    try:
        address = link.read_address()
    except RigError as exc:
        address = f"error: {exc}"
    why = ""
    if address != position.address:
        why = (f": the meter sends its address high byte first (read {address}; the standard sends "
               f"{position.address} lowest byte first)" if address == _high_byte_first(position.address)
               else f": read {address}")
    record(f"address read with the AA wildcard is the nameplate's{why}", int(address == position.address), "",
           low=1, high=1, position=position, read=address, nameplate=position.address)
    abbreviated = "AAAAAAAAAA" + position.address[-2:]
    exchange = link.exchange(Dlt645Frame.request(abbreviated, Function.READ, encode_di(spec.FORWARD_ENERGY)))
    problems = exchange.problems(link.address)
    reply = exchange.reply
    if reply is not None and reply.address == abbreviated:
        problems.append(f"the meter echoes the abbreviated address {abbreviated} instead of its own")
    refused = refusal(reply)
    problems += [f"the meter {refused}: it does not take an address abbreviated with AA"] if refused else []
    record(f"nonconformities in the reply to a read addressed {abbreviated}{findings(problems)}", len(problems), "",
           low=0, high=0, position=position, problems=problems)
    # A sync the meter must refuse (beyond 5 min), so the plan leaves its clock and daily quota alone.
    moment = bench.clock.datetime_now().replace(microsecond=0)
    heard = link.broadcast_time(moment.replace(hour=(moment.hour + 2) % 24), listen_s=0.5)
    frames = [f for attempt in heard.attempts for f in attempt.frames if f.is_reply]
    record("frames answering a broadcast", len(frames), "frames", low=0, high=0, position=position)


def test_error_replies(bench: Bench, link: MeterLink, position: Position, record) -> None:
    """A read of data the meter does not have gets an abnormal reply 'no such data'; a write with a
    wrong password gets 'unauthorised' and changes nothing."""
    for what, call, expected in (
        (f"read of undefined DI {spec.UNDEFINED_DI:08X}", lambda: link.read(spec.UNDEFINED_DI), spec.NO_DATA),
        ("write of the time with a wrong password",
         lambda: link.write(spec.TIME, bench.clock.datetime_now().time().replace(microsecond=0),
                            password=_wrong(link.password)), spec.UNAUTHORISED),
    ):
        try:
            call()
            error, outcome = 0, "accepted"
        except AbnormalReply as exc:
            error, outcome = int(exc.error), "abnormal reply"
        except RigError as exc:
            error, outcome = 0, str(exc)
        said = f"0x{error:02X} ({ErrorCode(error).name or 'several bits'})" if outcome == "abnormal reply" else outcome
        record(f"error word of the abnormal reply to a {what} (the standard's: 0x{int(expected):02X} "
               f"{expected.name}){'' if error == int(expected) else f': the meter answered {said}'}", error, "",
               low=int(expected), high=int(expected), position=position, outcome=outcome, expected=expected.name)
        _problems(record, link, f"the {what}", position)


def _timing(value: float | None, limit: spec.Limit) -> str:
    """': the meter answers sooner/later than ...' when `value` is outside `limit` ('' inside)."""
    if value is None:
        return ": the meter did not answer"
    if limit.low is not None and value < limit.low:
        return f": the meter answers after {value * 1000:.0f} ms, sooner than the {limit.low * 1000:.0f} ms allowed"
    if limit.high is not None and value > limit.high:
        return f": the meter answers after {value * 1000:.0f} ms, later than the {limit.high * 1000:.0f} ms allowed"
    return ""


def _wrong(password: str) -> str:
    return password[:-1] + str((int(password[-1]) + 1) % 10)


def test_write_with_password(bench: Bench, link: MeterLink, position: Position, record) -> None:
    """A 14H write with the right password is taken (the clock is set to the bench's time and reads
    back so); with a wrong password it is refused and the clock keeps its time."""
    target = bench.clock.datetime_now().replace(microsecond=0)
    link.write_datetime(bench.clock.datetime_now)
    _problems(record, link, "a write with the right password", position)
    offset = clock_offset_s(bench, link)
    limit = spec.CLOCK_UNMOVED
    record("clock after writing the bench's time, against the bench", offset, "s", low=limit.low, high=limit.high,
           position=position, source=limit.source)
    shifted = (bench.clock.datetime_now().replace(microsecond=0)).replace(minute=(target.minute + 30) % 60)
    with pytest.raises(RigError):
        link.write(spec.TIME, shifted.time(), password=_wrong(link.password))
    offset = clock_offset_s(bench, link)
    record("clock after a write with a wrong password, against the bench", offset, "s", low=limit.low,
           high=limit.high, position=position, source=limit.source)


def test_reply_latency(link: MeterLink, position: Position, record) -> None:
    """Reply latency (end of request to first reply byte) within 20..500 ms and no gap over 500 ms
    between reply bytes, over several reads; no request needs a retry."""
    latencies: list[float] = []
    gaps: list[float] = []
    retried = 0
    for _ in range(spec.LATENCY_READS):
        exchange = link.exchange(Dlt645Frame.request(link.address, Function.READ, encode_di(spec.FORWARD_ENERGY)))
        retried += exchange.retried
        for attempt in exchange.attempts:
            if attempt.latency_s is not None:
                latencies.append(attempt.latency_s)
            if attempt.max_gap_s is not None:
                gaps.append(attempt.max_gap_s)
    lat, gap = spec.REPLY_LATENCY, spec.INTER_BYTE_GAP
    common = {"position": position, "check": lat.check}
    shortest, longest = (min(latencies), max(latencies)) if latencies else (None, None)
    record(f"shortest reply latency{_timing(shortest, lat)}", shortest, lat.unit, low=lat.low, high=lat.high,
           source=lat.source, **common)
    record(f"longest reply latency{_timing(longest, lat)}", longest, lat.unit, low=lat.low, high=lat.high,
           source=lat.source, latencies_s=latencies, **common)
    record("largest gap between reply bytes", max(gaps) if gaps else None, gap.unit, low=gap.low, high=gap.high,
           source=gap.source, **common)
    record("reads that needed a retry", retried, "reads", low=0, high=0, position=position)


MISMATCHES = {
    "baud": lambda line: LineSettings(spec.OTHER_BAUD if line.baud != spec.OTHER_BAUD else 2400, line.bytesize,
                                      line.parity, line.stopbits),
    "parity": lambda line: LineSettings(line.baud, line.bytesize, "N" if line.parity != "N" else "E", line.stopbits),
}


@pytest.mark.parametrize("setting", sorted(MISMATCHES))
def test_line_setting_mismatch_gives_no_reply(link: MeterLink, position: Position, setting: str, record) -> None:
    """With the host's baud rate or parity not the meter's, no valid reply comes (as on a wire); with
    the right settings again, the meter answers."""
    if setting == "parity" and not link.carries_parity:
        pytest.skip(f"{link.url} carries no parity (a pty or socket drops it, BLE has none): a mismatch cannot show")
    if setting == "baud" and not link.carries_baud:
        pytest.skip(f"{link.url} has no baud rate")
    original = link.line
    wrong = MISMATCHES[setting](original)
    try:
        link.reconfigure(wrong)
        exchange = link.exchange(Dlt645Frame.request(link.address, Function.READ, encode_di(spec.FORWARD_ENERGY)),
                                 retries=0)
        valid = exchange.reply is not None and not exchange.problems(link.address)
        if valid and setting == "baud" and link.is_pty:
            pytest.skip(f"{link.url} is a pty: it passes bytes whatever rate either end is set to, so a reply at "
                        f"{wrong} says nothing about the meter's UART (no verdict; check it over a real line)")
        record(f"valid replies with the host at {wrong} (meter at {original})", int(valid), "", low=0, high=0,
               position=position)
    finally:
        restore_line(link, original)
    link.read(spec.FORWARD_ENERGY)
    record(f"valid replies with the host back at {original}", 1, "", low=1, high=1, position=position)


def test_baud_change(link: MeterLink, position: Position, record) -> None:
    """Function 17H: the one-hot word switches the meter (it answers at the old rate, then talks at the
    new one) and back; a word with two bits set is refused ('baud cannot change') and nothing changes."""
    if not link.carries_baud:
        pytest.skip(f"{link.url} has no baud rate: 17H switches the meter's RS-485 port, checked over the UART")
    original = link.line
    try:
        word = baud_word(spec.OTHER_BAUD)
        try:
            link.change_baud(spec.OTHER_BAUD)
        except AbnormalReply:
            last = link.last
            record(f"change to {spec.OTHER_BAUD} bit/s with the standard's baud word 0x{word:02X} taken: the meter "
                   f"{refusal(last.reply if last else None)}", 0, "", low=1, high=1, position=position,
                   source=spec.REFERENCE + " 'Serial line': one-hot baud word)")
            return
        _problems(record, link, f"the change to {spec.OTHER_BAUD} bit/s", position)
        link.read(spec.FORWARD_ENERGY)
        record(f"meter answers at {spec.OTHER_BAUD} bit/s after the change", 1, "", low=1, high=1, position=position)
        link.change_baud(original.baud)
        link.read(spec.FORWARD_ENERGY)
        record(f"meter answers at {original.baud} bit/s after changing back", 1, "", low=1, high=1,
               position=position)
        two_bits = baud_word(spec.OTHER_BAUD) | baud_word(original.baud)
        try:
            link.change_baud_word(two_bits)
            error = 0
        except AbnormalReply as exc:
            error = int(exc.error)
        except (FrameError, InstrumentTimeout):
            error = 0
        expected = spec.BAUD_UNCHANGEABLE
        record("error word of the reply to a baud word with two bits set", error, "", low=int(expected),
               high=int(expected), position=position, expected=expected.name)
        link.read(spec.FORWARD_ENERGY)
        record(f"meter still answers at {original.baud} bit/s", 1, "", low=1, high=1, position=position)
    finally:
        restore_line(link, original)


def test_write_address(link: MeterLink, position: Position, record) -> None:
    """Function 15H gives the meter a new address: the wildcard read-address returns it and reads
    addressed to it are answered; the nameplate address is written back."""
    original = link.address
    new = original[:-2] + ("98" if original[-2:] == "99" else "99")
    try:
        link.write_address(new)
        _problems(record, link, "the address write", position)
        record("address read with the AA wildcard after the write", int(link.read_address() == new), "", low=1,
               high=1, position=position, written=new)
        link.read(spec.FORWARD_ENERGY)
        record("meter answers at its new address", 1, "", low=1, high=1, position=position)
    finally:
        try:
            link.write_address(original, wildcard=True)
        finally:
            link.address = original
    record("address read with the AA wildcard after writing it back", int(link.read_address() == original), "",
           low=1, high=1, position=position)


def _high_byte_first(address: str) -> str:
    """The address with its bytes in the other order (what a meter that sends it high byte first shows)."""
    return "".join(address[i:i + 2] for i in range(10, -1, -2))
