"""DL/T 698.45 link frames (drivers layer): the server address as a nameplate, the control byte's bits, and
a byte stream cut into frames.

Encoding, HCS/FCS and the APDU codec are the `dlt698` package's (its C++ core, checked against the standard);
this module adds what a test rig needs around it: the wake-up preamble, frames kept with their raw bytes so a
reply can be judged byte by byte, and a splitter that says why a frame is malformed and counts line noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from dlt698 import codec
from dlt698._native import AddressType, Frame, ServerAddress

from drivers.errors import FrameError, ValidationError

__all__ = ["ADDRESS_TYPES", "BadFrame698", "Dlt698Frame", "FrameSplitter", "address_bytes", "address_text"]

START: Final = 0x68
END: Final = 0x16
PREAMBLE_BYTE: Final = 0xFE
# Control byte: DIR (D7: 1 = from the server), PRM (D6: 1 = from the station that started the exchange),
# fragment flag (D5), scrambling (D3), function code (D2..D0: 1 link management, 3 user data).
DIR: Final = 0x80
PRM: Final = 0x40
FRAGMENT: Final = 0x20
SCRAMBLE: Final = 0x08
FUNCTION_LINK: Final = 1
FUNCTION_DATA: Final = 3
# The standard's upper bound of a frame's length field (14 bits).
MAX_LENGTH: Final = 0x3FFF

ADDRESS_TYPES: Final = {"single": AddressType.single, "wildcard": AddressType.wildcard,
                        "group": AddressType.group, "broadcast": AddressType.broadcast}


def address_bytes(address: str) -> bytes:
    """Wire bytes of a server address written as on the nameplate (BCD, highest digits first; 'A' is a
    wildcard digit): sent lowest byte first. '000000000001' -> 01 00 00 00 00 00."""
    text = address.upper()
    if not text or len(text) % 2 or len(text) > 32 or any(c not in "0123456789A" for c in text):
        raise ValidationError(f"server address {address!r} must be an even count (2..32) of decimal digits "
                              "(A for a wildcard digit), e.g. '000000000001'")
    return bytes.fromhex(text)[::-1]


def address_text(raw: bytes) -> str:
    """The nameplate text of wire address bytes (inverse of `address_bytes`)."""
    return raw[::-1].hex().upper()


@dataclass(frozen=True)
class Dlt698Frame:
    """A DL/T 698.45 link frame: server address (nameplate text), its type and logical address, client
    address, control byte, link user data (an APDU, or a fragment), and the raw bytes it came in as."""

    server: str
    client: int
    control: int
    payload: bytes
    address_type: str = "single"
    logical: int = 0
    raw: bytes = b""

    @classmethod
    def request(cls, server: str, client: int, apdu: bytes, *, address_type: str = "single",
                logical: int = 0) -> Dlt698Frame:
        """A client's user-data request (DIR 0, PRM 1, function 3: control 43H)."""
        frame = cls(server, client, PRM | FUNCTION_DATA, apdu, address_type, logical)
        return frame.with_raw()

    @property
    def from_server(self) -> bool:
        """DIR set: the server (meter) sent it."""
        return bool(self.control & DIR)

    @property
    def prm(self) -> bool:
        """PRM set: from the station that started the exchange (a request, or a server's answer to one)."""
        return bool(self.control & PRM)

    @property
    def fragmented(self) -> bool:
        """D5: the user data is one fragment of a longer APDU."""
        return bool(self.control & FRAGMENT)

    @property
    def scrambled(self) -> bool:
        """D3: the user data is scrambled (33H added)."""
        return bool(self.control & SCRAMBLE)

    @property
    def function(self) -> int:
        """Function code (1 link management, 3 user data)."""
        return self.control & 0x07

    def native(self) -> Frame:
        """The `dlt698` package's frame."""
        if self.address_type not in ADDRESS_TYPES:
            raise ValidationError(f"address type {self.address_type!r}: use one of {', '.join(ADDRESS_TYPES)}")
        address = ServerAddress(bytes=address_bytes(self.server), logical=self.logical,
                                type=ADDRESS_TYPES[self.address_type])
        return Frame(client=self.client, control=self.control, payload=self.payload, server=address)

    def with_raw(self) -> Dlt698Frame:
        """The same frame carrying its encoded bytes (HCS and FCS computed)."""
        try:
            raw = codec.encode_frame(self.native())
        except Exception as exc:  # noqa: BLE001 - the package raises its own error classes and ValueError
            raise FrameError(f"cannot encode a DL/T 698.45 frame to {self.server}: {exc}") from None
        return Dlt698Frame(self.server, self.client, self.control, self.payload, self.address_type, self.logical,
                           raw)

    def wire(self, preamble: int = 4) -> bytes:
        """The bytes sent: `preamble` FE wake-up bytes, then the frame."""
        return bytes((PREAMBLE_BYTE,)) * preamble + (self.raw or self.with_raw().raw)

    @classmethod
    def decode(cls, raw: bytes) -> Dlt698Frame:
        """A frame from its bytes (no preamble); FrameError naming what is wrong (HCS, FCS, length, end)."""
        try:
            native = codec.decode_frame(raw)
        except Exception as exc:  # noqa: BLE001
            raise FrameError(f"malformed DL/T 698.45 frame: {_reason(exc)}") from None
        kind = next(name for name, value in ADDRESS_TYPES.items() if value == native.server.type)
        return cls(address_text(native.server.bytes), native.client, native.control, native.payload, kind,
                   native.server.logical, bytes(raw))


def _reason(exc: Exception) -> str:
    """The package's error text with the standard's names: HCS / FCS / start / end."""
    text = str(exc)
    if "checksum_header" in text:
        return "HCS (header check sequence) wrong"
    if "checksum_frame" in text:
        return "FCS (frame check sequence) wrong"
    return text


@dataclass(frozen=True)
class BadFrame698:
    """Bytes that started as a frame (68H) and broke the frame rules; `reason` says how."""

    raw: bytes
    reason: str


class FrameSplitter:
    """Cuts a received byte stream into frames: skips FE wake-up bytes, counts other bytes outside any frame
    (`discarded`), and keeps a malformed frame as `BadFrame698` with the reason."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.discarded = 0

    @property
    def pending(self) -> bool:
        """True while a frame has started and not yet ended."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> list[Dlt698Frame | BadFrame698]:
        """Every frame (or malformed frame) completed by `data`."""
        out: list[Dlt698Frame | BadFrame698] = []
        for byte in data:
            if not self._buffer:
                if byte == START:
                    self._buffer.append(byte)
                elif byte != PREAMBLE_BYTE:
                    self.discarded += 1
                continue
            self._buffer.append(byte)
            if len(self._buffer) < 3:
                continue
            length = int.from_bytes(self._buffer[1:3], "little") & MAX_LENGTH
            if length < 10:  # L counts from itself to FCS: at least L, C, one address byte, CA, HCS, FCS
                out.append(BadFrame698(bytes(self._buffer), f"length field {length} is too short for a frame"))
                self._buffer.clear()
                continue
            if len(self._buffer) < length + 2:
                continue
            raw = bytes(self._buffer)
            self._buffer.clear()
            if raw[-1] != END:
                out.append(BadFrame698(raw, f"end byte {raw[-1]:02X}H, expected 16H (or the length field is wrong)"))
                continue
            try:
                out.append(Dlt698Frame.decode(raw))
            except FrameError as exc:
                out.append(BadFrame698(raw, str(exc).removeprefix("malformed DL/T 698.45 frame: ")))
        return out

    def flush(self) -> list[BadFrame698]:
        """A frame cut short, when the line went quiet."""
        if not self._buffer:
            return []
        raw = bytes(self._buffer)
        self._buffer.clear()
        return [BadFrame698(raw, f"frame cut short after {len(raw)} byte(s)")]
