"""The twin meter's own DL/T 698.45 link layer: frames, addresses, HCS/FCS (CRC-16/X-25).

Written from the meter's side, from the standard's text, and independently of the rig's host side
(drivers/dlt698 and the PyPI `dlt698` package): a bug shared by both ends would be invisible.
Sans-IO: bytes in, values out. Imports nothing of the twin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.errors import FrameError

START: Final = 0x68
END: Final = 0x16
WAKE_UP: Final = 0xFE

# The control byte: DIR (bit 7) and PRM (bit 6) say who speaks; function code 3 carries user data (APDUs),
# 1 link management. A server's answer to a request is DIR=1 PRM=1, its own report DIR=1 PRM=0.
CONTROL_DIR: Final = 0x80
CONTROL_PRM: Final = 0x40
CONTROL_FRAGMENT: Final = 0x20
CONTROL_SCRAMBLED: Final = 0x08
FUNCTION_USER_DATA: Final = 3
CONTROL_RESPONSE: Final = CONTROL_DIR | CONTROL_PRM | FUNCTION_USER_DATA  # C3
CONTROL_REPORT: Final = CONTROL_DIR | FUNCTION_USER_DATA  # 83

# Server address types (AF bits 7..6).
ADDRESS_SINGLE: Final = 0
ADDRESS_WILDCARD: Final = 1
ADDRESS_GROUP: Final = 2
ADDRESS_BROADCAST: Final = 3

# The length field's low 14 bits count the bytes from L to FCS; a meter's receive buffer caps it well below.
MAX_FRAME_LENGTH: Final = 2048


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def crc16_x25(data: bytes) -> int:
    """CRC-16/X-25 (reflected 0x1021, init and xorout FFFF) as HCS and FCS use it; check('123456789') = 0x906E."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF


@dataclass(frozen=True)
class Dlt698Frame:
    """One link-layer frame: control, server address (AF type, logical address, SA bytes as on the wire),
    client address, and the APDU it carries."""

    control: int
    server_address: bytes  # SA as on the wire (BCD, low byte first)
    client_address: int
    apdu: bytes
    address_type: int = ADDRESS_SINGLE
    logical_address: int = 0

    @property
    def from_client(self) -> bool:
        """True when a client sent it (DIR = 0)."""
        return not self.control & CONTROL_DIR


@dataclass(frozen=True)
class Bad698Frame:
    """A frame-shaped byte sequence with a valid header check that failed a later check; `reason` says which."""

    raw: bytes
    reason: str


def header_length(af: int) -> int:
    """Bytes from 68 through HCS for an address flag byte `af`."""
    return 1 + 2 + 1 + 1 + (af & 0x0F) + 1 + 1 + 2


def encode_frame(frame: Dlt698Frame) -> bytes:
    """The frame's bytes from 68 to 16 (no wake-up preamble)."""
    sa = frame.server_address
    if not 1 <= len(sa) <= 16:
        raise FrameError(f"server address must be 1..16 bytes, got {len(sa)}")
    af = (frame.address_type << 6) | ((frame.logical_address & 0x03) << 4) | (len(sa) - 1)
    length = 2 + 1 + 1 + len(sa) + 1 + 2 + len(frame.apdu) + 2
    header = length.to_bytes(2, "little") + bytes((frame.control, af)) + sa + bytes((frame.client_address,))
    hcs = crc16_x25(header).to_bytes(2, "little")
    body = header + hcs + frame.apdu
    return bytes((START,)) + body + crc16_x25(body).to_bytes(2, "little") + bytes((END,))


def parse_frame(raw: bytes) -> Dlt698Frame:
    """A frame from its bytes 68..16 (FrameError naming the first check that fails)."""
    if len(raw) < 12 or raw[0] != START:
        raise FrameError("not a DL/T 698.45 frame: too short or no 68 start")
    length = int.from_bytes(raw[1:3], "little") & 0x3FFF
    if length + 2 != len(raw):
        raise FrameError(f"length field says {length + 2} bytes, frame has {len(raw)}")
    af = raw[4]
    hlen = header_length(af)
    if crc16_x25(raw[1:hlen - 2]) != int.from_bytes(raw[hlen - 2:hlen], "little"):
        raise FrameError("HCS mismatch")
    if crc16_x25(raw[1:-3]) != int.from_bytes(raw[-3:-1], "little"):
        raise FrameError("FCS mismatch")
    if raw[-1] != END:
        raise FrameError("no 16 end byte")
    return Dlt698Frame(control=raw[3], server_address=bytes(raw[5:5 + (af & 0x0F) + 1]),
                       client_address=raw[hlen - 3], apdu=bytes(raw[hlen:-3]), address_type=af >> 6,
                       logical_address=(af >> 4) & 0x03)


def header_valid(buf: bytes, start: int) -> bool | None:
    """Whether a 698 header with a valid HCS starts at `start` (None: not enough bytes yet to tell)."""
    if len(buf) - start < 5:
        return None
    hlen = header_length(buf[start + 4])
    if len(buf) - start < hlen:
        return None
    length = int.from_bytes(buf[start + 1:start + 3], "little") & 0x3FFF
    if not hlen - 2 <= length <= MAX_FRAME_LENGTH:
        return False
    hcs = int.from_bytes(buf[start + hlen - 2:start + hlen], "little")
    return crc16_x25(buf[start + 1:start + hlen - 2]) == hcs


def address_to_wire(address: str) -> bytes:
    """A meter address as printed (12 BCD digits) -> SA bytes (low byte first)."""
    return bytes.fromhex(address)[::-1]


def wire_matches(sa: bytes, address_type: int, own: bytes) -> bool:
    """True when a request's server address reaches a meter whose SA is `own`."""
    if address_type == ADDRESS_BROADCAST:
        return sa == b"\xaa"
    if address_type == ADDRESS_WILDCARD:
        if len(sa) != len(own):
            return False
        for w, o in zip(sa, own):
            for shift in (0, 4):
                nibble = (w >> shift) & 0x0F
                if nibble != 0x0A and nibble != (o >> shift) & 0x0F:
                    return False
        return True
    return address_type == ADDRESS_SINGLE and sa == own
