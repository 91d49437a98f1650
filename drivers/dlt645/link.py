"""Host side of a meter's DL/T 645-2007 UART (drivers layer): request/reply over any pyserial URL with a
wake-up preamble, a reply timeout in bench time, bounded retry, measured reply latency and byte gaps;
the exchange record and reply checks are drivers.dlt645.exchange, the port drivers.dlt645.port, the read-only
tap of a line drivers.dlt645.tap (their names are importable from here too).

Ports come from `drivers.serial_transport` (pyserial's `serial_for_url`: device path, rfc2217://,
socket://, loop://); time from the injected clock, never slept on directly. Imports nothing above the
drivers layer.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable
from typing import Final

from drivers.clock import Clock
from drivers.dlt645.abnormal import abnormal_error
from drivers.dlt645.exchange import (
    PLUS_33,
    AbnormalReply,
    Attempt,
    Exchange,
    answers_request,
    di_text,
    requested_di,
    swapped_address,
    what_answers,
)
from drivers.dlt645.frame import (
    BROADCAST_ADDRESS,
    WILDCARD_ADDRESS,
    Dlt645Frame,
    Function,
    address_from_wire,
    address_to_wire,
    encode,
)
from drivers.dlt645.identifiers import Value, decode_value, encode_di, encode_value
from drivers.dlt645.payloads import baud_word, encode_broadcast_time
from drivers.dlt645.port import POLL_WALL_S, PortFactory, TrafficHook, open_serial_port
from drivers.dlt645.reader import BadFrame, FrameReader
from drivers.dlt645.tap import TapFrame, UartTap
from drivers.errors import FrameError, InstrumentError, InstrumentTimeout, LinkError, ValidationError
from drivers.retry import RetryPolicy
from drivers.serial_link import SerialLink
from drivers.serial_transport import (
    LineSettings,
    SerialPort,
    carries_baud,
    carries_parity,
    is_pty,
)

__all__ = ["POLL_WALL_S", "AbnormalReply", "Attempt", "Exchange", "LineSettings", "MeterLink", "PortFactory",
           "SerialPort", "TapFrame", "TrafficHook", "UartTap", "answers_request", "carries_baud", "carries_parity",
           "open_serial_port"]

DATE_DI: Final = 0x04000101
TIME_DI: Final = 0x04000102



# ------------------------------------------------------------------------------------ the link


class MeterLink(SerialLink):
    """Request/reply to one meter over a serial port (RS-485 adapter, RFC 2217, the twin).

    Nothing opens in `__init__`; `open()` and `close()` are explicit. Every exchange is kept in
    `history` (the last 256) with its attempts, bytes, bench times, latency and gaps.
    """

    def __init__(self, url: str, address: str, clock: Clock, *, line: LineSettings | None = None,
                 password: str = "02000000", operator: str = "00000000", reply_timeout_s: float = 1.0,
                 inter_byte_timeout_s: float = 0.5, retries: int = 1, preamble: int = 4,
                 port_factory: PortFactory = open_serial_port, traffic: TrafficHook | None = None,
                 retry: RetryPolicy | None = None) -> None:
        Dlt645Frame(address, 0x11)  # FrameError now, not at the first request, for a bad address
        super().__init__(url, clock, line=line if line is not None else LineSettings(),
                         reply_timeout_s=reply_timeout_s, inter_byte_timeout_s=inter_byte_timeout_s, retries=retries,
                         preamble=preamble, port_factory=port_factory, traffic=traffic, retry=retry)
        self.address = address
        self.password = password
        self.operator = operator
        self.history: deque[Exchange] = deque(maxlen=256)

    def reconfigure(self, line: LineSettings) -> None:
        """Change the host's line settings (the meter's stay as they are)."""
        port = self._require()
        try:
            port.apply_settings(line.pyserial(self.url))
        except Exception as exc:  # noqa: BLE001 - pyserial raises several types for a port that went away
            raise InstrumentError(f"{self.url}: cannot set {line}: {exc}") from None
        self.line = line

    @property
    def last(self) -> Exchange | None:
        """The most recent exchange."""
        return self.history[-1] if self.history else None

    @property
    def carries_parity(self) -> bool:
        """False when the port silently drops parity (a pty, socket://, loop://)."""
        return carries_parity(self.url)

    def _wire_time_s(self, nbytes: int) -> float:
        """Time `nbytes` occupy the line; none on a pty, which passes them at once (a meter behind one answers
        before a wire could have carried the request: modelling it would make latencies negative)."""
        return 0.0 if self.is_pty else self.line.wire_time_s(nbytes)

    @property
    def is_pty(self) -> bool:
        """True when the port is a pseudo-terminal (also through a symlink): no wire, bytes pass whatever rate
        either end is set to (only a twin reading the same pty's settings can act on the host's rate)."""
        return is_pty(self.url)

    # ---- bytes on the line

    def _drain(self, port: SerialPort) -> bytes:
        """Bytes already waiting (a late reply, noise): taken without waiting."""
        stray = b""
        try:
            while port.in_waiting:
                stray += port.read(port.in_waiting)
        except Exception as exc:  # noqa: BLE001
            raise LinkError(f"{self.url}: reading failed: {exc}") from None
        return stray

    def _collect(self, port: SerialPort, request: Dlt645Frame, sent_at: float, *, expect_reply: bool,
                 listen_s: float, reply_from: str | None = None) -> Attempt:
        """Read until the meter's answer to `request` (or a malformed frame) is complete, or the timeout
        passes, in bench time. A meter frame answering another request (a late reply to an earlier try) is
        logged as late and discarded: the wait for this request's answer goes on."""
        reader = FrameReader()
        chunks: list[tuple[float, bytes]] = []
        frames: list[Dlt645Frame] = []
        late: list[Dlt645Frame] = []
        bad: list[BadFrame] = []
        reply: Dlt645Frame | None = None
        reply_at: float | None = None
        frame_at: float | None = None  # when the read holding the first byte of the frame under way returned
        wait_s = self.reply_timeout_s if expect_reply else listen_s
        hard_end = sent_at + wait_s + self.inter_byte_timeout_s  # a trickle of noise cannot hold the link
        while True:
            data = self._read(port)
            now = self._clock.now()
            if data:
                chunks.append((now, data))
                frame_at = now if frame_at is None else frame_at
                for item in reader.feed(data):
                    if isinstance(item, BadFrame):
                        bad.append(item)
                    else:
                        frames.append(item)
                        if reply is None and item.is_reply:
                            if answers_request(item, request, reply_from):
                                reply, reply_at = item, frame_at
                            else:
                                late.append(item)
                                self._note_late(item)
                if reply is None and not reader.pending:
                    frame_at = None  # all heard so far was complete: an echo, another device, noise
                if expect_reply and (reply is not None or (bad and not reader.pending)):
                    break
            # A frame under way may take the inter-byte timeout; otherwise the reply timeout counts.
            deadline = chunks[-1][0] + self.inter_byte_timeout_s if reader.pending else sent_at + wait_s
            deadline = min(deadline, hard_end)
            if now >= deadline:
                bad += [b for b in reader.flush() if isinstance(b, BadFrame)]
                break
            if not data:
                self._wait_for_bytes(port, deadline - now)
        self._reply_on_line(chunks, reply_at)
        return Attempt(sent_at_s=sent_at, chunks=tuple(chunks), frames=tuple(frames), bad_frames=tuple(bad),
                       noise_bytes=reader.discarded, reply=reply, reply_at_s=reply_at, late=tuple(late))

    def _note_late(self, frame: Dlt645Frame) -> None:
        """A reply to another request, in the traffic log as `late` (its bytes were logged as they came, with
        '<'): the frame, discarded while the link waits for the answer to `request`."""
        if self._traffic is not None:
            self._traffic(self.url, "late", encode(frame, preamble=0))

    # ---- requests

    def exchange(self, frame: Dlt645Frame, *, preamble: int | None = None, retries: int | None = None,
                 expect_reply: bool = True, listen_s: float = 0.0, reply_from: str | None = None) -> Exchange:
        """`_exchange`; when the port itself breaks (vanished, reset) or the line garbles every try, the port
        is reopened and the request sent again under the bench's `RetryPolicy` (BenchFault when that budget
        is spent; LinkError at once without a policy). Never raises for what the meter does."""
        def once() -> Exchange:
            exchange = self._exchange(frame, preamble=preamble, retries=retries, expect_reply=expect_reply,
                                      listen_s=listen_s, reply_from=reply_from)
            if expect_reply:
                self._check_line(exchange)
            return exchange

        if self.retry is None:
            return once()
        what = f"{frame.function.name.lower().replace('_', ' ')} to meter {frame.address}"
        return self.retry.run(f"{self.kind} {self.url}", what, once, recover=self._reopen)

    def _check_line(self, exchange: Exchange) -> None:
        """LinkError when no try got a valid reply and every try heard bytes, different each time, with no
        well-formed meter frame among them: a meter's fault repeats byte for byte (a wrong frame, or silence),
        and a late reply to another request is a meter's frame; bytes that differ every time are the line's."""
        if exchange.reply is not None or any(a.late for a in exchange.attempts):
            return
        received = [a.received for a in exchange.attempts]
        # A reply that came broken but with this meter's header every time (cut short, wrong checksum) is the
        # meter's, even when its value changed between tries (a clock, a measurement).
        theirs = all(any(self._meter_shaped(bad.raw, exchange.request) for bad in a.bad_frames)
                     for a in exchange.attempts)
        if len(received) > 1 and all(received) and len(set(received)) == len(received) and not theirs:
            bad = [b.reason for a in exchange.attempts for b in a.bad_frames]
            raise LinkError(f"meter {self.address} on {self.url}: no valid reply to {what_answers(exchange.request)} "
                            f"in {len(received)} attempt(s) and different bytes each time "
                            f"({bad[-1] if bad else 'noise'}): line noise or a loose connection on {self.url}, "
                            "not the meter")

    def _meter_shaped(self, raw: bytes, request: Dlt645Frame) -> bool:
        """True when `raw` starts as this meter's reply to `request`: 68, its address (either byte order), 68,
        a control byte answering the request's function."""
        if len(raw) < 9 or raw[0] != 0x68 or raw[7] != 0x68:
            return False
        if not raw[8] & 0x80 or raw[8] & 0x1F != request.function_code:
            return False
        try:
            address = address_from_wire(raw[1:7])
        except FrameError:
            return False
        wanted = {a for a in (request.address, self.address) if "A" not in a}
        return not wanted or address in wanted or swapped_address(address) in wanted

    def _exchange(self, frame: Dlt645Frame, *, preamble: int | None = None, retries: int | None = None,
                  expect_reply: bool = True, listen_s: float = 0.0, reply_from: str | None = None) -> Exchange:
        """Send `frame` and collect what comes back; never raises for what the meter does (see
        `Exchange.problems`). Retries (bounded) when no meter frame answering it arrives in time.
        `expect_reply=False` (broadcasts): send once and listen for `listen_s` of bench time."""
        port = self._require()
        preamble = self.preamble if preamble is None else preamble
        raw = encode(frame, preamble=preamble)
        stray = self._drain(port)
        attempts: list[Attempt] = []
        tries = 1 + (self.retries if retries is None else retries) if expect_reply else 1
        for _ in range(tries):
            sent_at = self._send(port, raw)
            attempt = self._collect(port, frame, sent_at, expect_reply=expect_reply, listen_s=listen_s,
                                    reply_from=reply_from)
            attempts.append(attempt)
            if attempt.reply is not None or not expect_reply:
                break
        exchange = Exchange(request=frame, preamble=preamble, attempts=tuple(attempts), stray=stray)
        self.history.append(exchange)
        return exchange

    def request(self, frame: Dlt645Frame, *, preamble: int | None = None, retries: int | None = None,
                reply_from: str | None = None) -> Exchange:
        """`exchange`, then insist on a normal reply from this meter (or `reply_from`) to this function.

        InstrumentTimeout: nothing came; FrameError: only malformed frames, or only a reply to another
        request, came, or the reply breaks the frame rules; AbnormalReply: the meter refused (its error word
        attached); LinkError / BenchFault: the line or port failed, not the meter.
        """
        exchange = self.exchange(frame, preamble=preamble, retries=retries, reply_from=reply_from)
        what = f"{frame.function.name.lower().replace('_', ' ')} ({frame.function_code:02X}H)"
        if requested_di(frame) is not None:
            what += f" DI {di_text(frame.data[:4])}"
        meter = f"meter {self.address} on {self.url}"
        reply = exchange.reply
        attempts = len(exchange.attempts)
        if reply is None:
            bad = [b.reason for a in exchange.attempts for b in a.bad_frames]
            late = [f for a in exchange.attempts for f in a.late]
            if late:
                raise FrameError(f"{meter}: reply to {what} carries {what_answers(late[-1])} (from {late[-1].address}) "
                                 f"in {attempts} attempt(s): an answer to another request")
            if bad:
                raise FrameError(f"{meter}: no valid reply to {what} in {attempts} attempt(s): {bad[-1]}")
            heard = sum(len(a.received) for a in exchange.attempts)
            raise InstrumentTimeout(
                f"{meter}: no reply to {what} within {self.reply_timeout_s:g} s in {attempts} attempt(s) "
                f"({heard} byte(s) heard, line {self.line}; is the meter powered and the line setting right?)"
            )
        expected_address = reply_from or (self.address if "A" not in frame.address else None)
        if expected_address is not None and reply.address != expected_address:
            swap = " (its address high byte first)" if swapped_address(reply.address) == expected_address else ""
            raise FrameError(f"{meter}: reply to {what} comes from address {reply.address}{swap}")
        if reply.function_code != frame.function_code:
            raise FrameError(f"{meter}: reply to {what} carries function {reply.function_code:02X}H")
        if reply.is_abnormal:
            try:
                error = abnormal_error(reply)
            except FrameError as exc:
                raise FrameError(f"{meter}: abnormal reply to {what}: {exc}") from None
            name = error.name or "unknown error bits"
            raise AbnormalReply(f"{meter} refused {what}: {name} (error word 0x{int(error):02X})", error, reply)
        if reply.has_follow_up:
            raise FrameError(f"{meter}: reply to {what} announces follow-up frames (control 0x{reply.control:02X});"
                             " no item this link reads spans frames")
        return exchange

    def read_frame(self, di: int, *, preamble: int | None = None) -> Dlt645Frame:
        """The checked reply to a read of `di` (its data starts with the DI)."""
        request = Dlt645Frame.request(self.address, Function.READ, encode_di(di))
        reply = self.request(request, preamble=preamble).reply
        assert reply is not None
        if reply.data[:4] != encode_di(di):
            offset = " (the +33H offset is missing)" if reply.data[:4].translate(PLUS_33) == encode_di(di) else ""
            raise FrameError(f"meter {self.address}: reply to read DI {di:08X} carries DI "
                             f"{di_text(reply.data[:4])}{offset}")
        return reply

    def read(self, di: int, *, preamble: int | None = None) -> Value:
        """The value of data identifier `di` (unit: `drivers.dlt645.data_item(di).unit`)."""
        reply = self.read_frame(di, preamble=preamble)
        try:
            return decode_value(di, reply.data[4:])
        except FrameError as exc:
            raise FrameError(f"meter {self.address}: {exc}") from None

    def read_number(self, di: int) -> float:
        """A numeric data item as a float (kWh, V, A, kW, Hz, ...)."""
        value = self.read(di)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FrameError(f"DI {di:08X} is not a number: {value!r}")
        return float(value)

    def password_field(self, password: str | None = None) -> bytes:
        """PA P0 P1 P2 of a write: level (2 hex digits) then 6 password digits, sent lowest byte first."""
        text = self.password if password is None else password
        if len(text) != 8 or not text.isalnum():
            raise ValidationError(f"password {text!r} must be 8 characters: level (e.g. 02) and 6 digits")
        try:
            return bytes((int(text[:2], 16),)) + bytes.fromhex(text[2:])[::-1]
        except ValueError:
            raise ValidationError(f"password {text!r} must be hex digits") from None

    def write(self, di: int, value: Value, *, password: str | None = None) -> Exchange:
        """Write `value` to `di` (14H) with the link's (or the given) password and operator code."""
        try:
            operator = bytes.fromhex(self.operator)[::-1]
        except ValueError:
            raise ValidationError(f"operator code {self.operator!r} must be 8 hex digits") from None
        data = encode_di(di) + self.password_field(password) + operator + encode_value(di, value)
        return self.request(Dlt645Frame.request(self.address, Function.WRITE, data))

    def read_address(self) -> str:
        """The meter's address, asked with the all-AA wildcard (13H)."""
        exchange = self.request(Dlt645Frame.request(WILDCARD_ADDRESS, Function.READ_ADDRESS))
        reply = exchange.reply
        assert reply is not None
        address = address_from_wire(reply.data) if len(reply.data) == 6 else None
        if address is None or address != reply.address:
            raise FrameError(f"read-address reply from {reply.address} carries data {reply.data.hex(' ')}")
        return address

    def write_address(self, new_address: str, *, wildcard: bool = False) -> Exchange:
        """Give the meter a new address (15H; it answers from the new one); the link uses it from then on."""
        target = WILDCARD_ADDRESS if wildcard else self.address
        exchange = self.request(Dlt645Frame.request(target, Function.WRITE_ADDRESS, address_to_wire(new_address)),
                                reply_from=new_address)
        self.address = new_address
        return exchange

    def change_baud(self, baud: int) -> Exchange:
        """Ask the meter for a new baud rate (17H, one-hot word); after its reply the host follows."""
        exchange = self.change_baud_word(baud_word(baud))
        self.reconfigure(LineSettings(baud, self.line.bytesize, self.line.parity, self.line.stopbits))
        return exchange

    def change_baud_word(self, word: int) -> Exchange:
        """Send a raw baud word (17H) and insist the meter echoes it; the host's settings stay."""
        exchange = self.request(Dlt645Frame.request(self.address, Function.CHANGE_BAUD, bytes((word,))))
        reply = exchange.reply
        assert reply is not None
        if reply.data != bytes((word,)):
            raise FrameError(f"meter {self.address}: baud change reply carries {reply.data.hex(' ') or 'no data'}, "
                             f"expected the word {word:02X}")
        return exchange

    def broadcast_time(self, moment: dt.datetime, *, listen_s: float = 0.0, data: bytes | None = None) -> Exchange:
        """Broadcast time sync (08H to 999999999999); no meter replies. `listen_s`: bench time to listen
        for (wrong) replies; `data`: a different data field, to test refusals."""
        payload = encode_broadcast_time(moment) if data is None else data
        frame = Dlt645Frame.request(BROADCAST_ADDRESS, Function.BROADCAST_TIME, payload)
        return self.exchange(frame, expect_reply=False, listen_s=listen_s)

    def read_datetime(self) -> dt.datetime:
        """The meter's calendar time (date and time items; read again when the date rolled over)."""
        for _ in range(3):
            day = self.read(DATE_DI)
            clock = self.read(TIME_DI)
            if self.read(DATE_DI) == day and isinstance(day, dt.date) and isinstance(clock, dt.time):
                return dt.datetime.combine(day, clock)
        raise InstrumentError(f"meter {self.address}: date kept changing while reading the time")

    def write_datetime(self, moment: dt.datetime | Callable[[], dt.datetime], *, password: str | None = None) -> None:
        """Set the meter's date and time (14H, two writes). Given a callable (e.g. the clock's
        `datetime_now`) it is asked again right before each write, and the time goes to the nearest second."""
        now: Callable[[], dt.datetime] = moment if callable(moment) else (lambda: moment)
        self.write(DATE_DI, now().date(), password=password)
        nearest = now() + dt.timedelta(microseconds=500_000)
        self.write(TIME_DI, nearest.time().replace(microsecond=0), password=password)


