"""The host-side DL/T 645 link against a scripted serial port on a manual clock: byte-exact requests,
replies with a modelled delay, and every way a reply can be bad giving a clear error (never a deep
traceback); plus the UART tap and a real pyserial loop:// port."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from drivers.clock import ManualClock
from drivers.dlt645 import (
    Dlt645Frame,
    ErrorCode,
    Function,
    abnormal_reply,
    address_to_wire,
    encode,
    encode_di,
    encode_value,
)
from drivers.dlt645.link import AbnormalReply, LineSettings, MeterLink, UartTap
from drivers.errors import FrameError, InstrumentError, InstrumentTimeout, NotOpenError, ValidationError

ADDRESS = "000000000001"
ENERGY = 0x00010000
Responder = Callable[[bytes], list[tuple[float, bytes]]]


class ScriptedPort:
    """A serial port whose device answers each write with (delay s, bytes) chunks, on the line the way
    the twin models it: reception takes the request's wire time (after the line is free), the reply
    follows its delay, and the line stays busy while the reply is sent."""

    def __init__(self, clock: ManualClock, line: LineSettings, respond: Responder) -> None:
        self.clock = clock
        self.line = line
        self.respond = respond
        self.written: list[bytes] = []
        self.settings: list[dict[str, Any]] = []
        self._pending: list[tuple[float, bytes]] = []
        self.busy_until = 0.0
        self.closed = False

    @property
    def in_waiting(self) -> int:
        return sum(len(d) for t, d in self._pending if t <= self.clock.now())

    def read(self, size: int = 1) -> bytes:
        ready = [(t, d) for t, d in self._pending if t <= self.clock.now()]
        if not ready and self._pending:
            # Nothing ready yet: the device is still "sending"; let its next chunk become due.
            t, d = self._pending[0]
            self.clock.t = max(self.clock.t, t)
            ready = [(t, d)]
        out = b""
        for item in ready:
            self._pending.remove(item)
            out += item[1]
        return out

    def write(self, data: bytes) -> int:
        self.written.append(bytes(data))
        self.clock.t = max(self.clock.t, self.busy_until) + self.line.wire_time_s(len(data))
        self.busy_until = at = self.clock.t
        chunks = self.respond(bytes(data))
        for delay, chunk in chunks:
            at += delay
            self._pending.append((at, chunk))
        if chunks:
            first = self._pending[-len(chunks)][0]
            self.busy_until = first + self.line.wire_time_s(sum(len(c) for _, c in chunks))
        return len(data)

    def apply_settings(self, d: dict[str, Any]) -> None:
        self.settings.append(d)

    def close(self) -> None:
        self.closed = True


def reply_to_read(di: int, value: Any, *, delay: float = 0.06, mutate: Callable[[bytes], bytes] = lambda b: b,
                  address: str = ADDRESS) -> Responder:
    frame = Dlt645Frame.reply(address, Function.READ, encode_di(di) + encode_value(di, value))
    return lambda request: [(delay, mutate(encode(frame)))]


def make_link(respond: Responder, **kwargs: Any) -> tuple[MeterLink, ScriptedPort, ManualClock]:
    clock = ManualClock(100.0)
    ports: list[ScriptedPort] = []

    def factory(url: str, line: LineSettings) -> ScriptedPort:
        ports.append(ScriptedPort(clock, line, respond))
        return ports[-1]

    link = MeterLink("scripted://meter", ADDRESS, clock, port_factory=factory, **kwargs)
    link.open()
    return link, ports[0], clock


def test_read_sends_the_golden_request_and_measures_latency() -> None:
    link, port, _ = make_link(reply_to_read(ENERGY, 1234.56))
    assert link.read(ENERGY) == 1234.56
    # reference golden frame: read DI 00010000 from 000000000001, after 4 FE wake-up bytes
    assert port.written == [encode(Dlt645Frame.request(ADDRESS, Function.READ, encode_di(ENERGY)), preamble=4)]
    exchange = link.last
    assert exchange is not None and exchange.latency_s == pytest.approx(0.06)
    assert exchange.problems() == [] and not exchange.retried


def test_golden_frame_on_the_wire() -> None:
    link, port, _ = make_link(reply_to_read(0x02010100, 220.0))
    link.address = "000012345678"
    with pytest.raises(FrameError):  # the reply comes from another address
        link.read(0x02010100)
    assert port.written[0] == bytes.fromhex("FE FE FE FE 68 78 56 34 12 00 00 68 11 04 33 34 34 35 C9 16")


def test_silence_is_a_timeout_after_bounded_retries_in_bench_time() -> None:
    link, port, clock = make_link(lambda request: [], retries=2, reply_timeout_s=0.8)
    start = clock.now()
    with pytest.raises(InstrumentTimeout, match=r"meter 000000000001 on scripted://meter: no reply to read \(11H\) "
                                                r"DI 00010000 within 0.8 s in 3 attempt\(s\) \(0 byte\(s\) heard"):
        link.read(ENERGY)
    assert len(port.written) == 3
    assert clock.now() - start == pytest.approx(3 * (0.8 + link.line.wire_time_s(20)), abs=0.01)


def test_bad_checksum_names_it() -> None:
    def bad_cs(raw: bytes) -> bytes:
        return raw[:-2] + bytes(((raw[-2] + 1) & 0xFF,)) + raw[-1:]

    link, port, _ = make_link(reply_to_read(ENERGY, 1.0, mutate=bad_cs))
    with pytest.raises(FrameError, match=r"no valid reply .* in 2 attempt.*bad checksum: got 0x"):
        link.read(ENERGY)
    assert len(port.written) == 2
    exchange = link.last
    assert exchange is not None
    assert any("bad checksum" in p for p in exchange.problems())


def test_short_frame_is_reported_as_truncated() -> None:
    link, _, _ = make_link(reply_to_read(ENERGY, 1.0, mutate=lambda raw: raw[:-5]), retries=0)
    with pytest.raises(FrameError, match="truncated"):
        link.read(ENERGY)


def test_garbled_bytes_only_are_a_timeout_that_says_bytes_came() -> None:
    link, _, _ = make_link(lambda request: [(0.05, bytes(range(1, 40)))], retries=0)
    with pytest.raises(InstrumentTimeout, match=r"\(39 byte\(s\) heard, line 2400 8E1"):
        link.read(ENERGY)
    exchange = link.last
    assert exchange is not None and "39 byte(s) of line noise around the reply" in exchange.problems()


def test_split_reply_with_noise_and_the_own_echo() -> None:
    reply = encode(Dlt645Frame.reply(ADDRESS, Function.READ, encode_di(ENERGY) + encode_value(ENERGY, 7.5)))

    def respond(request: bytes) -> list[tuple[float, bytes]]:
        # RS-485 echo of the request, then the reply in three pieces with gaps
        return [(0.0, request), (0.05, b"\x00" + reply[:7]), (0.01, reply[7:15]), (0.02, reply[15:])]

    link, _, _ = make_link(respond)
    assert link.read(ENERGY) == 7.5
    exchange = link.last
    assert exchange is not None and exchange.latency_s == pytest.approx(0.05)  # the echo does not count
    assert exchange.max_gap_s == pytest.approx(0.02)


def test_abnormal_reply_carries_the_error_word() -> None:
    frame = abnormal_reply(ADDRESS, Function.READ, ErrorCode.NO_DATA)
    link, _, _ = make_link(lambda request: [(0.05, encode(frame))])
    with pytest.raises(AbnormalReply, match=r"refused read .* NO_DATA") as info:
        link.read(0x0F000000)
    assert info.value.error == ErrorCode.NO_DATA
    exchange = link.last
    assert exchange is not None and exchange.problems() == []


@pytest.mark.parametrize(("wire", "problem", "error"), [
    (lambda f: encode(Dlt645Frame("010000000000", f.control, f.data)), "high byte first", "high byte first"),
    (lambda f: encode(Dlt645Frame(f.address, f.control, bytes((b - 0x33) & 0xFF for b in f.data))),
     "without the +33H offset", r"\+33H offset is missing"),
    (lambda f: encode(Dlt645Frame(f.address, f.control | 0x20, f.data)), "D5 (follow-up frames) set",
     "announces follow-up frames"),
])
def test_nonconforming_replies_are_named(wire: Callable[[Dlt645Frame], bytes], problem: str, error: str) -> None:
    frame = Dlt645Frame.reply(ADDRESS, Function.READ, encode_di(ENERGY) + encode_value(ENERGY, 3.0))
    link, _, _ = make_link(lambda request: [(0.05, wire(frame))])
    with pytest.raises(FrameError, match=error):
        link.read(ENERGY)
    exchange = link.last
    assert exchange is not None and any(problem in p for p in exchange.problems(ADDRESS))


def test_back_to_back_reads_keep_their_latency() -> None:
    """The line stays busy while a reply is sent: both ends account for it, so the next request's
    latency is the meter's delay again, not the delay less the last reply's wire time."""
    link, _, _ = make_link(reply_to_read(ENERGY, 1.0, delay=0.07))
    for _ in range(3):
        link.read(ENERGY)
        exchange = link.last
        assert exchange is not None and exchange.latency_s == pytest.approx(0.07)


def test_write_frames_password_operator_and_value() -> None:
    link, port, _ = make_link(lambda r: [(0.05, encode(Dlt645Frame.reply(ADDRESS, Function.WRITE)))],
                              password="02123456")
    link.write(0x04000102, dt.time(10, 20, 30))
    # Worked by hand from DL/T 645-2007: wake-up FE x4, 68 A0..A5 68, C=14, L=15, DI 04000102 + password level 02
    # 123456 + operator 00000000 + time 10:20:30 (BCD, lowest byte first), each data byte +33H, CS, 16.
    assert port.written[-1] == bytes.fromhex("fe fe fe fe 68 01 00 00 00 00 00 68 14 0f 35 34 33 37 35 89 67 45 "
                                             "33 33 33 33 63 53 43 f6 16")
    with pytest.raises(ValidationError, match="password"):
        link.write(0x04000102, dt.time(10), password="0x")


def test_read_address_with_wildcard() -> None:
    reply = Dlt645Frame.reply(ADDRESS, Function.READ_ADDRESS, address_to_wire(ADDRESS))
    link, port, _ = make_link(lambda r: [(0.05, encode(reply))])
    assert link.read_address() == ADDRESS
    assert port.written[-1] == bytes.fromhex("fe fe fe fe 68 aa aa aa aa aa aa 68 13 00 df 16")  # C=13, L=0


def test_change_baud_follows_after_the_reply() -> None:
    reply = Dlt645Frame.reply(ADDRESS, Function.CHANGE_BAUD, b"\x20")
    link, port, _ = make_link(lambda r: [(0.05, encode(reply))])
    link.change_baud(9600)
    assert link.line.baud == 9600 and port.settings[-1]["baudrate"] == 9600


def test_use_before_open_and_unopenable_port() -> None:
    link = MeterLink("/dev/does-not-exist", ADDRESS, ManualClock(100.0))
    with pytest.raises(NotOpenError, match="call open"):
        link.read(ENERGY)
    with pytest.raises(InstrumentError, match="cannot open serial port /dev/does-not-exist at 2400 8E1"):
        link.open()
    with pytest.raises(FrameError, match="12 digits"):
        MeterLink("loop://", "12345", ManualClock(100.0))


def test_line_settings_char_time_and_validation() -> None:
    assert LineSettings().char_time_s == pytest.approx(11 / 2400)
    assert LineSettings(9600, 8, "N", 1).char_time_s == pytest.approx(10 / 9600)
    assert str(LineSettings()) == "2400 8E1"
    with pytest.raises(ValidationError, match="parity"):
        LineSettings(parity="X")


def test_loop_port_hears_only_its_own_echo() -> None:
    """A real pyserial loop:// port (wall clock): the link ignores its echo (D7 clear) and times out."""
    from drivers.clock import WallClock

    link = MeterLink("loop://", ADDRESS, WallClock(), reply_timeout_s=0.1, retries=0)
    link.open()
    try:
        with pytest.raises(InstrumentTimeout, match="20 byte"):
            link.read(ENERGY)
        exchange = link.last
        assert exchange is not None and exchange.attempts[0].frames[0].function_code == Function.READ
    finally:
        link.close()


def test_tap_decodes_both_directions_and_counts_noise() -> None:
    clock = ManualClock(100.0)
    request = encode(Dlt645Frame.request(ADDRESS, Function.READ, encode_di(ENERGY)), preamble=2)
    reply = encode(Dlt645Frame.reply(ADDRESS, Function.READ, encode_di(ENERGY) + encode_value(ENERGY, 2.0)))
    port = ScriptedPort(clock, LineSettings(9600), lambda r: [])
    port._pending = [(0.0, b"\x01\x02" + request), (0.0, reply[:9]), (0.0, reply[9:])]
    tap = UartTap("scripted://tap", clock, port_factory=lambda url, line: port)
    with pytest.raises(NotOpenError):
        tap.read()
    tap.open()
    frames = tap.read()
    assert [f.frame.is_reply for f in frames] == [False, True]  # type: ignore[union-attr]
    assert tap.noise_bytes == 2 and all(f.at_s == clock.now() for f in frames)
