"""DL/T 645-2007 frame layer, sans-IO (drivers layer): `Dlt645Frame` to bytes and back.

Bytes in, frames out; no I/O, no clock, and nothing above the drivers layer is imported.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from drivers.dlt645.bcd import BCD_BYTES
from drivers.errors import FrameError

START: Final = 0x68
END: Final = 0x16
WAKE_UP: Final = 0xFE
HEADER_LENGTH: Final = 10  # 68 A0..A5 68 C L
OVERHEAD: Final = 12  # header + CS + 16
MAX_DATA_LENGTH: Final = 255
MAX_PREAMBLE: Final = 4

# Control byte bits.
REPLY: Final = 0x80  # D7: meter -> master
ABNORMAL: Final = 0x40  # D6: abnormal (error) reply
FOLLOW_UP: Final = 0x20  # D5: more frames follow
FUNCTION_MASK: Final = 0x1F  # D4..D0

BROADCAST_ADDRESS: Final = "999999999999"
WILDCARD_ADDRESS: Final = "AAAAAAAAAAAA"


class Function(IntEnum):
    """Function code, bits D4..D0 of the control byte."""

    SECURITY = 0x03  # State Grid extension: identity authentication and friends
    BROADCAST_TIME = 0x08
    READ = 0x11
    READ_FOLLOW_UP = 0x12
    READ_ADDRESS = 0x13
    WRITE = 0x14
    WRITE_ADDRESS = 0x15
    FREEZE = 0x16
    CHANGE_BAUD = 0x17
    CHANGE_PASSWORD = 0x18
    CLEAR_DEMAND = 0x19
    METER_CLEAR = 0x1A
    EVENT_CLEAR = 0x1B
    CONTROL = 0x1C


# The +33H transform of the data field, done by bytes.translate instead of a per-byte loop.
_PLUS_33: Final = bytes((b + 0x33) & 0xFF for b in range(256))
_MINUS_33: Final = bytes((b - 0x33) & 0xFF for b in range(256))

# An address byte is two BCD digits or the AA wildcard (abbreviated addressing).
_ADDRESS_BYTES: Final = bytes(sorted(BCD_BYTES | {0xAA}))
_ADDRESS_TEXT: Final = re.compile(r"(?:[0-9]{2}|AA){6}")
_PREAMBLES: Final = tuple(bytes([WAKE_UP]) * n for n in range(MAX_PREAMBLE + 1))


# A rig talks to a handful of meters: caching the address checks keeps them off the per-frame cost.
@functools.lru_cache(maxsize=1024)
def _is_address(text: str) -> bool:
    return _ADDRESS_TEXT.fullmatch(text) is not None


def _check_address(address: object) -> None:
    if not isinstance(address, str) or not _is_address(address):
        raise FrameError(
            f"address {address!r} is not 12 digits as on the nameplate; "
            "each pair of digits may be 'AA' (wildcard), broadcast is '999999999999'"
        )


def address_to_wire(address: str) -> bytes:
    """The 6 address bytes as sent: BCD, lowest byte first ("001234567890" -> 90 78 56 34 12 00)."""
    _check_address(address)
    return bytes.fromhex(address)[::-1]


def address_from_wire(wire: bytes) -> str:
    """The nameplate address of 6 wire bytes; FrameError naming the first byte that is not BCD or AA."""
    return _address_text(bytes(wire))


@functools.lru_cache(maxsize=1024)
def _address_text(wire: bytes) -> str:
    if len(wire) != 6:
        raise FrameError(f"address must be 6 bytes, got {len(wire)}")
    if wire.translate(None, _ADDRESS_BYTES):
        position, byte = next((i, b) for i, b in enumerate(wire) if b not in _ADDRESS_BYTES)
        raise FrameError(
            f"non-BCD address byte 0x{byte:02X} at address position {position} (lowest byte first); "
            "each byte must be two decimal digits or the AA wildcard"
        )
    return wire[::-1].hex().upper()


@dataclass(frozen=True, slots=True)
class Dlt645Frame:
    """One DL/T 645 frame: nameplate address, whole control byte, and the plain data (before +33H)."""

    address: str
    control: int
    data: bytes = b""

    def __post_init__(self) -> None:
        _check_address(self.address)
        if not isinstance(self.control, int) or not 0 <= self.control <= 0xFF:
            raise FrameError(f"control byte {self.control!r} is not in 0..255")
        if type(self.data) is not bytes:
            # bytearray or memoryview in: freeze it so the frame stays hashable and immutable.
            object.__setattr__(self, "data", bytes(self.data))

    @classmethod
    def request(cls, address: str, function: Function, data: bytes = b"") -> Dlt645Frame:
        """A master -> meter frame."""
        return cls(address, int(function), data)

    @classmethod
    def reply(
        cls, address: str, function: Function, data: bytes = b"", *, follow_up: bool = False
    ) -> Dlt645Frame:
        """A normal meter -> master frame (C = function | 0x80, | 0x20 when more frames follow)."""
        return cls(address, int(function) | REPLY | (FOLLOW_UP if follow_up else 0), data)

    def reply_to(
        self, data: bytes = b"", *, address: str | None = None, follow_up: bool = False
    ) -> Dlt645Frame:
        """The normal reply to this request; `address` is the meter's own (needed after a wildcard)."""
        own = self.address if address is None else address
        return Dlt645Frame.reply(own, self.function, data, follow_up=follow_up)

    @property
    def function_code(self) -> int:
        """The raw function bits D4..D0 of the control byte."""
        return self.control & FUNCTION_MASK

    @property
    def function(self) -> Function:
        """The function of the control byte; FrameError for a code the standard does not define."""
        try:
            return Function(self.control & FUNCTION_MASK)
        except ValueError:
            raise FrameError(f"unknown function code 0x{self.control & FUNCTION_MASK:02X} "
                             f"in control byte 0x{self.control:02X}") from None

    @property
    def is_reply(self) -> bool:
        """D7: sent by the meter."""
        return bool(self.control & REPLY)

    @property
    def is_abnormal(self) -> bool:
        """D6: an abnormal (error) reply."""
        return bool(self.control & ABNORMAL)

    @property
    def has_follow_up(self) -> bool:
        """D5: more frames follow this one."""
        return bool(self.control & FOLLOW_UP)

    @property
    def is_broadcast(self) -> bool:
        """Sent to every meter (all 99)."""
        return self.address == BROADCAST_ADDRESS


@functools.lru_cache(maxsize=1024)
def _address_field(address: str) -> tuple[bytes, int]:
    """68 A0..A5 68 of an address a Dlt645Frame has checked, and its byte sum (part of every checksum)."""
    field = b"\x68" + bytes.fromhex(address)[::-1] + b"\x68"
    return field, sum(field)


def encode(frame: Dlt645Frame, *, preamble: int = 4) -> bytes:
    """The wire bytes of `frame`, after `preamble` (0..4) FE wake-up bytes."""
    if not 0 <= preamble <= MAX_PREAMBLE:
        raise FrameError(f"preamble must be 0..{MAX_PREAMBLE} FE bytes, got {preamble}")
    control, data = frame.control, frame.data.translate(_PLUS_33)
    length = len(data)
    if length > MAX_DATA_LENGTH:
        raise FrameError(f"data too long: L = {length}, at most {MAX_DATA_LENGTH}")
    field, field_sum = _address_field(frame.address)
    checksum = (field_sum + control + length + sum(data)) & 0xFF
    return b"".join((_PREAMBLES[preamble], field, bytes((control, length)), data, bytes((checksum, END))))


def parse_at(raw: bytes, start: int, end: int) -> Dlt645Frame:
    """The frame raw[start:end] (start byte to end byte), whose checksum and end byte were checked.

    Shared by `decode` and `FrameReader`; FrameError when the address is not BCD.
    """
    # _address_text checks the address and any byte is a valid control byte, so the frame is made the
    # way the frozen dataclass's own __init__ does it, without __post_init__: a third off each decode.
    frame = object.__new__(Dlt645Frame)
    object.__setattr__(frame, "address", _address_text(raw[start + 1 : start + 7]))
    object.__setattr__(frame, "control", raw[start + 8])
    object.__setattr__(frame, "data", raw[start + HEADER_LENGTH : end - 2].translate(_MINUS_33))
    return frame


def check_tail(raw: bytes, start: int, end: int) -> str | None:
    """Why the frame raw[start:end] is bad (checksum or end byte), or None when both are right."""
    computed = sum(raw[start : end - 2]) & 0xFF
    if raw[end - 2] != computed:
        return f"bad checksum: got 0x{raw[end - 2]:02X}, computed 0x{computed:02X}"
    if raw[end - 1] != END:
        return f"bad end byte: got 0x{raw[end - 1]:02X}, expected 0x16"
    return None


def decode(raw: bytes) -> Dlt645Frame:
    """Exactly one frame, optionally after FE wake-up bytes; FrameError naming what is wrong."""
    raw = bytes(raw)
    start = len(raw) - len(raw.lstrip(b"\xfe"))
    if start == len(raw):
        raise FrameError(f"missing start byte 0x68: input is {len(raw)} byte(s), all FE wake-up or empty")
    if raw[start] != START:
        raise FrameError(f"missing start byte 0x68 at offset {start}: got 0x{raw[start]:02X}")
    if len(raw) < start + HEADER_LENGTH:
        raise FrameError(
            f"truncated header: {len(raw) - start} byte(s) from the start byte, need {HEADER_LENGTH}"
        )
    if raw[start + 7] != START:
        raise FrameError(f"second start byte 0x68 missing at offset {start + 7}: got 0x{raw[start + 7]:02X}")
    length = raw[start + 9]
    end = start + OVERHEAD + length
    if len(raw) < end:
        raise FrameError(
            f"length beyond buffer: L = {length} needs {OVERHEAD + length} bytes from the start byte, "
            f"got {len(raw) - start}"
        )
    problem = check_tail(raw, start, end)
    if problem is not None:
        raise FrameError(problem)
    if len(raw) > end:
        raise FrameError(f"trailing bytes: {len(raw) - end} after the end byte 0x16")
    return parse_at(raw, start, end)
