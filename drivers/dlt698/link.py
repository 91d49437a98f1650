"""Host side of a meter's DL/T 698.45 link (drivers layer): a client (master station) over any pyserial URL or
the BLE transparent-UART port, with the FE wake-up preamble, a reply timeout and byte gaps in bench time (the
injected clock), bounded retry, replies matched to requests (service and PIID), link-layer fragments
reassembled and acknowledged; every exchange is kept as an `Exchange698` (drivers.dlt698.exchange), whose
`problems` is the conformance report of its reply.

Frames and APDUs are encoded and decoded by the `dlt698` package; the link's timing, transports and reports
are the rig's. Imports nothing above the drivers layer.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import deque
from collections.abc import Sequence
from typing import Final

from dlt698 import Data, Oad, codec
from dlt698._native import (
    ActionMethod,
    ActionRequest,
    ActionResponse,
    AssociationParameters,
    AttributeResult,
    ConnectRequest,
    ConnectResponse,
    ErrorResponse,
    Fragment,
    FragmentType,
    GetNextRequest,
    GetRecord,
    GetRecordRequest,
    GetRecordResponse,
    GetRequest,
    GetResponse,
    LinkReassembler,
    NullSecurity,
    Omd,
    PasswordSecurity,
    ReleaseRequest,
    ReportNotification,
    ReportResponse,
    SetAttribute,
    SetRequest,
    SetResponse,
    SymmetrySecurity,
)
from dlt698.protocol.link import decode_fragment, encode_fragment

from drivers.clock import Clock
from drivers.dlt645.link import PortFactory, TrafficHook, open_serial_port
from drivers.dlt698.apdu import DAR_NAMES, decode_apdu, oad_text, piid_of, service_tag
from drivers.dlt698.exchange import Attempt698, Exchange698
from drivers.dlt698.frame import FRAGMENT, FUNCTION_DATA, BadFrame698, Dlt698Frame, FrameSplitter
from drivers.dlt698.port import SharedPort, ble_port, shared_port
from drivers.errors import FrameError, InstrumentError, InstrumentTimeout, LinkError, ValidationError
from drivers.retry import RetryPolicy
from drivers.serial_link import SerialLink
from drivers.serial_transport import LineSettings, SerialPort, is_pty

__all__ = ["Attempt698", "DarRefused", "Dlt698Link", "Exchange698", "ServiceRefused", "SharedPort", "ble_port",
           "shared_port"]

# A master station's usual association: every protocol conformance bit (the meter answers with the subset it
# supports), protocol version 16 (0010H, as the dlt698 package's server expects), APDU and frame sizes of
# 1 KiB, one frame in flight, 100 s before the association lapses.
FULL_CONFORMANCE: Final = AssociationParameters(protocol=[0xFF] * 8, function=[0xFF] * 16, version=0x0010,
                                                apdu_bytes=1024, receive_frame_bytes=1024, send_frame_bytes=1024,
                                                receive_window=1, timeout_seconds=100)


class ServiceRefused(InstrumentError):
    """The meter answered with ERROR-Response (service not supported / APDU not understood)."""


class DarRefused(InstrumentError):
    """The meter refused an attribute or method; `dar` is its data access result."""

    def __init__(self, message: str, dar: int) -> None:
        super().__init__(message)
        self.dar = dar


def dar_text(dar: int) -> str:
    """'DAR 15 (password wrong / not authorised)'."""
    return f"DAR {dar} ({DAR_NAMES.get(dar, 'unknown')})"


# ------------------------------------------------------------------------------------ the link


class Dlt698Link(SerialLink):
    """A DL/T 698.45 client to one meter over a serial port (RS-485 adapter, RFC 2217, pty, the twin) or any
    port a `port_factory` gives (BLE). Nothing opens in `__init__`; every exchange is kept in `history`."""

    kind = "DL/T 698.45 link"

    def __init__(self, url: str, server: str, clock: Clock, *, client: int = 0x10, logical: int = 0,
                 line: LineSettings | None = None, reply_timeout_s: float = 1.0, inter_byte_timeout_s: float = 0.5,
                 retries: int = 1, preamble: int = 4, port_factory: PortFactory = open_serial_port,
                 traffic: TrafficHook | None = None, retry: RetryPolicy | None = None) -> None:
        Dlt698Frame.request(server, client, b"\x05")  # ValidationError now for a bad address
        super().__init__(url, clock, line=line if line is not None else LineSettings(baud=9600, parity="E"),
                         reply_timeout_s=reply_timeout_s, inter_byte_timeout_s=inter_byte_timeout_s, retries=retries,
                         preamble=preamble, port_factory=port_factory, traffic=traffic, retry=retry)
        if not 0 <= client <= 0xFF:
            raise ValidationError(f"client address {client} must be 0..255")
        self.server = server
        self.client = client
        self.logical = logical
        self.history: deque[Exchange698] = deque(maxlen=256)
        self.reports: list[Dlt698Frame] = []  # REPORT-Notifications heard (answered with REPORT-Response)
        self.bad_reports: list[tuple[Dlt698Frame, str]] = []  # reports that do not decode, and why
        self.connected: ConnectResponse | None = None
        self._piid = itertools.cycle(range(64))

    def close(self) -> None:
        """Close the port (the association ends with it); safe when closed."""
        self.connected = None
        super().close()

    @property
    def last(self) -> Exchange698 | None:
        """The most recent exchange."""
        return self.history[-1] if self.history else None

    def next_piid(self) -> int:
        """The next PIID: service priority normal, serial number 0..63 in turn."""
        return next(self._piid)

    def _wire_time_s(self, nbytes: int) -> float:
        """Time `nbytes` occupy the line: none where no wire rate applies (a pty, socket://, loop://, BLE)."""
        return 0.0 if is_pty(self.url) or not self.carries_baud else self.line.wire_time_s(nbytes)

    def _frame(self, apdu: bytes, control: int | None = None) -> Dlt698Frame:
        frame = Dlt698Frame.request(self.server, self.client, apdu, logical=self.logical)
        if control is not None:
            frame = Dlt698Frame(frame.server, frame.client, control, apdu, frame.address_type,
                                frame.logical).with_raw()
        return frame

    # ---- exchanges

    def exchange(self, apdu: bytes, *, server: str | None = None, address_type: str = "single",
                 retries: int | None = None, preamble: int | None = None) -> Exchange698:
        """Send `apdu` in a user-data frame and collect the answer; never raises for what the meter does (see
        `Exchange698.problems`). The port is reopened and the request sent again under the bench's retry
        policy when the port itself breaks."""
        def once() -> Exchange698:
            return self._exchange(apdu, server=server, address_type=address_type, retries=retries,
                                  preamble=preamble)

        if self.retry is None:
            return once()
        return self.retry.run(f"{self.kind} {self.url}", f"{service_tag(apdu)} to {self.server}", once,
                              recover=self._reopen)

    def _exchange(self, apdu: bytes, *, server: str | None, address_type: str, retries: int | None,
                  preamble: int | None) -> Exchange698:
        port = self._require()
        frame = Dlt698Frame.request(server or self.server, self.client, apdu, address_type=address_type,
                                    logical=self.logical)
        preamble = self.preamble if preamble is None else preamble
        self._take_waiting(port)  # stale bytes (a late reply, a report) are not this request's answer
        attempts: list[Attempt698] = []
        for _ in range(1 + (self.retries if retries is None else retries)):
            sent_at = self._send(port, frame.wire(preamble))
            attempt = self._collect(port, frame, sent_at)
            attempts.append(attempt)
            if attempt.reply is not None:
                break
        exchange = Exchange698(request=frame, preamble=preamble, attempts=tuple(attempts))
        self.history.append(exchange)
        return exchange

    def _take_waiting(self, port: SerialPort) -> None:
        """Bytes already waiting, without waiting for more: a report among them is kept and confirmed."""
        splitter = FrameSplitter()
        with contextlib.suppress(LinkError):
            while port.in_waiting:
                self._heard(port, splitter, self._read(port))

    def _heard(self, port: SerialPort, splitter: FrameSplitter, data: bytes) -> list[Dlt698Frame]:
        """The server frames `data` completes, each handled as unsolicited (reports confirmed)."""
        frames = [f for f in splitter.feed(data) if isinstance(f, Dlt698Frame) and f.from_server]
        for frame in frames:
            self._unsolicited(port, frame, frame.payload)
        return frames

    def listen(self, duration_s: float) -> list[Dlt698Frame]:
        """Read the line for `duration_s` of bench time without asking anything: every server frame heard;
        a REPORT-Notification is kept in `reports` and confirmed with REPORT-Response at once."""
        port = self._require()
        splitter = FrameSplitter()
        heard: list[Dlt698Frame] = []
        end = self._clock.now() + duration_s
        while True:
            data = self._read(port)
            heard += self._heard(port, splitter, data) if data else []
            now = self._clock.now()
            if now >= end:
                return heard
            if not data:
                self._wait_for_bytes(port, end - now)

    def _answers(self, frame: Dlt698Frame, request: Dlt698Frame, apdu: bytes) -> bool:
        """True when server frame `frame` (APDU `apdu`) answers `request`: the reply service (or ERROR-Response)
        with the request's PIID."""
        if not frame.from_server or not apdu:
            return False
        asked = request.payload
        if apdu[0] != 0xEE and apdu[0] != asked[0] | 0x80:
            return False
        want, got = piid_of(asked), piid_of(apdu)
        return want is None or got is None or (want & 0x3F) == (got & 0x3F)

    def _collect(self, port: SerialPort, request: Dlt698Frame, sent_at: float) -> Attempt698:
        splitter = FrameSplitter()
        reassembler = LinkReassembler(64 * 1024)
        chunks: list[tuple[float, bytes]] = []
        frames: list[Dlt698Frame] = []
        bad: list[BadFrame698] = []
        unsolicited: list[Dlt698Frame] = []
        reply: Dlt698Frame | None = None
        apdu: bytes | None = None
        reply_at: float | None = None
        first_at: float | None = None
        deadline = sent_at + self.reply_timeout_s
        while reply is None:
            data = self._read(port)
            now = self._clock.now()
            if data:
                chunks.append((now, data))
                first_at = now if first_at is None else first_at
                for item in splitter.feed(data):
                    if isinstance(item, BadFrame698):
                        bad.append(item)
                        continue
                    frames.append(item)
                    whole = self._reassemble(port, item, reassembler)
                    if whole is None:
                        deadline = now + self.reply_timeout_s  # the next fragment has a reply timeout of its own
                        continue
                    if self._answers(item, request, whole):
                        reply, apdu, reply_at = item, whole, first_at
                    else:
                        unsolicited.append(item)
                        self._unsolicited(port, item, whole)
                if not splitter.pending and reply is None:
                    first_at = None
                if bad and not splitter.pending and reply is None:
                    break
            limit = chunks[-1][0] + self.inter_byte_timeout_s if splitter.pending else deadline
            if reply is None and now >= limit:
                bad += splitter.flush()
                break
            if reply is None and not data:
                self._wait_for_bytes(port, limit - now)
        self._reply_on_line(chunks, reply_at)
        return Attempt698(sent_at_s=sent_at, chunks=tuple(chunks), frames=tuple(frames), bad_frames=tuple(bad),
                          noise_bytes=splitter.discarded, reply=reply, apdu=apdu, reply_at_s=reply_at,
                          unsolicited=tuple(unsolicited))

    def _reassemble(self, port: SerialPort, frame: Dlt698Frame, reassembler: LinkReassembler) -> bytes | None:
        """The frame's APDU; for a fragment, None until the last one (each acknowledged as the standard asks)."""
        if not frame.fragmented:
            return frame.payload
        try:
            fragment = decode_fragment(frame.payload)
            result = reassembler.accept(fragment)
        except Exception as exc:  # noqa: BLE001
            raise FrameError(f"meter {self.server}: malformed link fragment: {exc}") from None
        if result.acknowledge is not None:
            ack = encode_fragment(Fragment(data=b"", sequence=result.acknowledge,
                                            type=FragmentType.acknowledgement))
            self._send(port, self._frame(ack, control=FRAGMENT | 0x40 | FUNCTION_DATA).wire(0))
        return result.apdu

    def _unsolicited(self, port: SerialPort, frame: Dlt698Frame, apdu: bytes) -> None:
        """A server frame that answers nothing asked: a REPORT-Notification is kept and confirmed with
        REPORT-Response (the standard's duty of the client); anything else is only kept."""
        if apdu[:1] == b"\x88":
            self.reports.append(frame)
            try:
                confirm = report_response(apdu)
            except FrameError as exc:  # the plan judges it (`bad_reports`); a report not understood is not confirmed
                self.bad_reports.append((frame, str(exc)))
                return
            self._send(port, self._frame(confirm, control=FUNCTION_DATA).wire(self.preamble))

    # ---- services

    def request(self, apdu: bytes, **kwargs: object) -> tuple[Exchange698, object]:
        """`exchange`, then insist on a decodable answer of the right service from this meter.

        InstrumentTimeout: nothing came; FrameError: only malformed frames, or a wrong reply; ServiceRefused:
        ERROR-Response; LinkError/BenchFault: the port failed, not the meter."""
        exchange = self.exchange(apdu, **kwargs)  # type: ignore[arg-type]
        what = f"{service_tag(apdu)} to meter {self.server} on {self.url}"
        reply, body = exchange.reply, exchange.apdu
        if reply is None or body is None:
            bad = [b.reason for a in exchange.attempts for b in a.bad_frames]
            if bad:
                raise FrameError(f"{what}: no valid reply in {len(exchange.attempts)} attempt(s): {bad[-1]}")
            heard = sum(len(a.received) for a in exchange.attempts)
            raise InstrumentTimeout(f"{what}: no reply within {self.reply_timeout_s:g} s in "
                                    f"{len(exchange.attempts)} attempt(s) ({heard} byte(s) heard, line {self.line})")
        message = decode_apdu(body)
        if isinstance(message, ErrorResponse):
            raise ServiceRefused(f"{what}: ERROR-Response type {message.type}")
        return exchange, message

    def connect(self, parameters: AssociationParameters = FULL_CONFORMANCE,
                mechanism: NullSecurity | PasswordSecurity | SymmetrySecurity | None = None) -> ConnectResponse:
        """Open an application association (CONNECT-Request, public connection by default)."""
        request = ConnectRequest(mechanism=mechanism if mechanism is not None else NullSecurity(),
                                 parameters=parameters, piid=self.next_piid())
        _, message = self.request(codec.encode_apdu(request))
        if not isinstance(message, ConnectResponse):
            raise FrameError(f"meter {self.server}: CONNECT answered with {type(message).__name__}")
        if message.result != 0:
            raise DarRefused(f"meter {self.server} refused the association: result {message.result}", message.result)
        self.connected = message
        return message

    def release(self) -> None:
        """End the association (RELEASE-Request)."""
        self.request(codec.encode_apdu(ReleaseRequest(piid=self.next_piid())))
        self.connected = None

    def get_results(self, attributes: Sequence[Oad]) -> list[AttributeResult]:
        """GET-Request normal (one attribute) or list (several): each attribute's Data or DAR."""
        request = GetRequest(attributes=list(attributes), list=len(attributes) > 1, piid=self.next_piid())
        _, message = self.request(codec.encode_apdu(request))
        if not isinstance(message, GetResponse):
            raise FrameError(f"meter {self.server}: GET answered with {type(message).__name__}")
        return list(message.attributes)

    def get(self, attribute: Oad) -> Data:
        """The attribute's value (DarRefused when the meter refuses it)."""
        (result,) = self.get_results([attribute])
        return _data(self.server, result)

    def get_list(self, attributes: Sequence[Oad]) -> list[Data]:
        """Several attributes in one GET-Request list."""
        return [_data(self.server, r) for r in self.get_results(attributes)]

    def get_next(self, block: int) -> GetResponse:
        """GET-Request next: block `block` of a response the meter sends in parts."""
        _, message = self.request(codec.encode_apdu(GetNextRequest(block=block, piid=self.next_piid())))
        if not isinstance(message, GetResponse):
            raise FrameError(f"meter {self.server}: GET next answered with {type(message).__name__}")
        return message

    def get_record(self, attribute: Oad, rows: object, columns: Sequence[Oad] = ()) -> list[list[Data]]:
        """GET-Request record: the rows `rows` (a selector) of a record attribute, columns `columns`."""
        record = GetRecord(attribute=attribute, columns=list(columns), rows=rows)  # type: ignore[arg-type]
        request = GetRecordRequest(records=[record], piid=self.next_piid())
        _, message = self.request(codec.encode_apdu(request))
        if not isinstance(message, GetRecordResponse):
            raise FrameError(f"meter {self.server}: GET record answered with {type(message).__name__}")
        (result,) = message.records
        if isinstance(result.result, int):
            raise DarRefused(f"meter {self.server} refused record {oad_text(attribute)}: {dar_text(result.result)}",
                             result.result)
        return [list(row) for row in result.result]

    def set(self, attribute: Oad, value: Data) -> None:
        """SET-Request normal; DarRefused when the meter refuses."""
        request = SetRequest(attributes=[SetAttribute(attribute=attribute, value=value)], piid=self.next_piid())
        _, message = self.request(codec.encode_apdu(request))
        if not isinstance(message, SetResponse):
            raise FrameError(f"meter {self.server}: SET answered with {type(message).__name__}")
        for result in message.attributes:
            if result.dar:
                raise DarRefused(f"meter {self.server} refused SET {oad_text(attribute)}: {dar_text(result.dar)}",
                                 result.dar)

    def action(self, method: Omd, parameter: Data | None = None) -> Data | None:
        """ACTION-Request normal; the method's returned data (None when it returns none)."""
        request = ActionRequest(methods=[ActionMethod(method=method, parameter=parameter or Data.null())],
                                piid=self.next_piid())
        _, message = self.request(codec.encode_apdu(request))
        if not isinstance(message, ActionResponse):
            raise FrameError(f"meter {self.server}: ACTION answered with {type(message).__name__}")
        (result,) = message.methods
        if result.dar:
            raise DarRefused(f"meter {self.server} refused ACTION {method.oi:04X}-{method.method}: "
                             f"{dar_text(result.dar)}", result.dar)
        return result.data


def report_response(notification: bytes) -> bytes:
    """The REPORT-Response confirming a REPORT-Notification (same PIID, the OADs it reported)."""
    message = decode_apdu(notification)
    payload = message.payload if isinstance(message, ReportNotification) else []
    attributes = [r.attribute for r in payload] if isinstance(payload, list) else []
    choice = notification[1] if len(notification) > 1 else 1
    piid = piid_of(notification) or 0
    return codec.encode_apdu(ReportResponse(attributes=attributes, choice=choice, piid=piid & 0x3F))


def _data(server: str, result: AttributeResult) -> Data:
    if isinstance(result.result, int):
        raise DarRefused(f"meter {server} refused {oad_text(result.attribute)}: {dar_text(result.result)}",
                         result.result)
    return result.result
