"""What happened in one DL/T 645 request/reply exchange (drivers layer): its attempts in bench time, which reply
answers which request, and every way a reply does not conform to the standard, in words.
Imports nothing above the drivers layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.dlt645.abnormal import AnyErrorCode
from drivers.dlt645.frame import BROADCAST_ADDRESS, Dlt645Frame, Function, address_to_wire
from drivers.dlt645.identifiers import decode_value
from drivers.dlt645.reader import BadFrame
from drivers.errors import FrameError, InstrumentError
from drivers.serial_link import AttemptsTiming, ReplyTiming

PLUS_33: Final = bytes((b + 0x33) & 0xFF for b in range(256))


@dataclass(frozen=True)
class Attempt(ReplyTiming):
    """One transmission of a request and what came back, in bench time."""

    sent_at_s: float  # when the request's last byte left the host (its transmit queue modelled)
    chunks: tuple[tuple[float, bytes], ...]  # (bench time read, bytes) after the request
    frames: tuple[Dlt645Frame, ...]  # every valid frame heard, including echoes of the request
    bad_frames: tuple[BadFrame, ...]
    noise_bytes: int  # bytes outside any frame (FE wake-up bytes excluded)
    reply: Dlt645Frame | None  # the first meter frame (D7 set) that answers this request
    reply_at_s: float | None = None  # bench time the read holding the reply's first byte returned
    # Meter frames that answer another request (a late reply to an earlier one): heard, logged, never the reply.
    late: tuple[Dlt645Frame, ...] = ()


@dataclass(frozen=True)
class Exchange(AttemptsTiming):
    """A request, every attempt at it, and the reply (if any); `problems` says what broke the standard."""

    request: Dlt645Frame
    preamble: int
    attempts: tuple[Attempt, ...]
    stray: bytes = b""  # bytes that were waiting before the request was sent

    @property
    def reply(self) -> Dlt645Frame | None:
        """The reply of the last attempt (None when no meter frame came)."""
        return self.attempts[-1].reply if self.attempts else None

    @property
    def retried(self) -> bool:
        """True when the request was sent more than once."""
        return len(self.attempts) > 1

    def problems(self, address: str | None = None) -> list[str]:
        """Every way the reply breaks DL/T 645-2007 (structure, address order, +33H, checksum, control
        bits, data); empty when it conforms. `address`: the meter's (default: the request's)."""
        out = self.line_problems()
        reply = self.reply
        if reply is None:
            late = [frame for attempt in self.attempts for frame in attempt.late]
            if late:
                out.append(f"only a reply to another request came ({what_answers(late[-1])}); asked: "
                           f"{what_answers(self.request)}")
            elif not any(attempt.bad_frames for attempt in self.attempts):
                out.append("no reply")
            return out
        out += _reply_problems(self.request, reply, address)
        return out


def swapped_address(address: str) -> str:
    """The address read with its bytes in the other order (what a high-byte-first sender produces)."""
    return "".join(address[i : i + 2] for i in range(10, -1, -2))


def requested_di(request: Dlt645Frame) -> bytes | None:
    return request.data[:4] if request.function_code == Function.READ and len(request.data) >= 4 else None


def what_answers(frame: Dlt645Frame) -> str:
    """What a frame asks or answers, for messages: function, and the DI of a read."""
    di = frame.data[:4] if frame.function_code == Function.READ and len(frame.data) >= 4 else None
    return f"{frame.function_code:02X}H" + (f" DI {di_text(di)}" if di is not None and not frame.is_abnormal else "")


def answers_request(reply: Dlt645Frame, request: Dlt645Frame, address: str | None = None) -> bool:
    """True when meter frame `reply` can be the answer to `request`: same function, from the addressed meter
    (`address`: the one expected instead, as after a write-address), and for a normal reply to a read the
    same DI. A meter's own slips still count as its answer (the address high byte first, the DI without its
    +33H offset): they are judged as nonconformities, not mistaken for another request's reply."""
    if not reply.is_reply or reply.function_code != request.function_code:
        return False
    wanted = {a for a in (request.address, address) if a is not None and "A" not in a and a != BROADCAST_ADDRESS}
    if wanted and reply.address not in wanted and swapped_address(reply.address) not in wanted:
        return False
    di = requested_di(request)
    if di is None or reply.is_abnormal or len(reply.data) < 4:
        return True
    return reply.data[:4] in (di, bytes((b - 0x33) & 0xFF for b in di))


def _address_problems(request: Dlt645Frame, reply: Dlt645Frame, address: str | None) -> list[str]:
    wanted = address if address is not None else request.address
    if "A" in wanted or wanted == BROADCAST_ADDRESS or reply.address == wanted:
        return []
    if swapped_address(reply.address) == wanted:
        return [f"address field reads {reply.address}: the meter sends its address high byte first "
                f"(the standard sends {wanted} lowest byte first)"]
    return [f"reply from address {reply.address}, expected {wanted}"]


def _control_problems(request: Dlt645Frame, reply: Dlt645Frame) -> list[str]:
    out: list[str] = []
    function = request.function_code
    if reply.is_abnormal:
        expected_control = function | 0xC0
        if len(reply.data) != (2 if function == Function.SECURITY else 1):
            out.append(f"abnormal reply carries L = {len(reply.data)}, the standard has 1 (2 for 03)")
    else:
        expected_control = function | 0x80
    if reply.control != expected_control:
        bits = []
        if not reply.is_reply:
            bits.append("D7 (direction) clear")
        if reply.has_follow_up:
            bits.append("D5 (follow-up frames) set though no follow-up was asked for")
        if reply.function_code != function:
            bits.append(f"function 0x{reply.function_code:02X} answers 0x{function:02X}")
        detail = f": {'; '.join(bits)}" if bits else ""
        out.append(f"control byte 0x{reply.control:02X}, expected 0x{expected_control:02X}{detail}")
    return out


def _data_problems(request: Dlt645Frame, reply: Dlt645Frame) -> list[str]:
    if reply.is_abnormal:
        return []
    out: list[str] = []
    di = requested_di(request)
    if di is not None:
        if reply.data[:4] == di:
            number = int.from_bytes(di, "little")
            try:
                decode_value(number, reply.data[4:])
            except FrameError as exc:
                out.append(f"value of DI {number:08X}: {exc}")
        elif reply.data[:4].translate(PLUS_33) == di:
            out.append("data field sent without the +33H offset")
        else:
            out.append(f"reply carries DI {di_text(reply.data[:4])}, asked for {di_text(di)}")
    if request.function_code == Function.READ_ADDRESS:
        on_wire = address_to_wire(reply.address)
        if reply.data != on_wire and reply.data.translate(PLUS_33) == on_wire:
            out.append("data field sent without the +33H offset")
        elif reply.data != on_wire:
            out.append(f"read-address reply data {reply.data.hex(' ')} is not the address {reply.address} "
                       "lowest byte first")
    return out


def _reply_problems(request: Dlt645Frame, reply: Dlt645Frame, address: str | None) -> list[str]:
    """What does not conform in a reply to `request` (address, control byte, data), in words."""
    return [*_address_problems(request, reply, address), *_control_problems(request, reply),
            *_data_problems(request, reply)]


def di_text(raw: bytes) -> str:
    return f"{int.from_bytes(raw, 'little'):08X}" if len(raw) == 4 else raw.hex(" ")


class AbnormalReply(InstrumentError):
    """The meter answered with an abnormal reply (D6 set); `error` is its error word."""

    def __init__(self, message: str, error: AnyErrorCode, reply: Dlt645Frame) -> None:
        super().__init__(message)
        self.error = error
        self.reply = reply
