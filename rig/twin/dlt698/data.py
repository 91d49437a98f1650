"""The twin meter's own DL/T 698.45 A-XDR data: typed values, lengths, date-times and the record selectors
(RSD, RCSD) of GET-Record.

Written from the meter's side, from the standard's text, and independently of the rig's host side
(drivers/dlt698 and the PyPI `dlt698` package): a bug shared by both ends would be invisible.
Sans-IO: bytes in, values out. Imports nothing of the twin.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Final, Union

from drivers.errors import FrameError

# ---------------------------------------------------------------- A-XDR data

class Tag:
    """Data type tags (DL/T 698.45 Data CHOICE)."""

    NULL = 0
    ARRAY = 1
    STRUCTURE = 2
    BOOL = 3
    BIT_STRING = 4
    DOUBLE_LONG = 5
    DOUBLE_LONG_UNSIGNED = 6
    OCTET_STRING = 9
    VISIBLE_STRING = 10
    UTF8_STRING = 12
    INTEGER = 15
    LONG = 16
    UNSIGNED = 17
    LONG_UNSIGNED = 18
    LONG64 = 20
    LONG64_UNSIGNED = 21
    ENUM = 22
    DATE_TIME_S = 28
    OI = 80
    OAD = 81
    ROAD = 82
    OMD = 83
    TI = 84
    TSA = 85
    MAC = 86
    RN = 87
    SCALER_UNIT = 89
    RSD = 90
    CSD = 91
    MS = 92
    RCSD = 96


# Fixed-size integers: tag -> (bytes, signed).
_INTEGERS: Final = {
    Tag.DOUBLE_LONG: (4, True), Tag.DOUBLE_LONG_UNSIGNED: (4, False), Tag.INTEGER: (1, True),
    Tag.LONG: (2, True), Tag.UNSIGNED: (1, False), Tag.LONG_UNSIGNED: (2, False), Tag.LONG64: (8, True),
    Tag.LONG64_UNSIGNED: (8, False), Tag.ENUM: (1, False), Tag.OI: (2, False), Tag.OAD: (4, False),
    Tag.OMD: (4, False),
}
_OCTETS: Final = (Tag.OCTET_STRING, Tag.VISIBLE_STRING, Tag.UTF8_STRING, Tag.MAC, Tag.RN)

Value = Union[None, bool, int, bytes, str, dt.datetime, "list[Data]", tuple[int, ...]]


@dataclass(frozen=True)
class Data:
    """One tagged A-XDR value: ints for numbers (raw, before the scaler), bytes for octet strings, str for
    visible strings, datetime for date_time_s, a list of Data for array/structure, tuple for the rest."""

    tag: int
    value: Value = None
    items: tuple[Data, ...] = field(default=())

    def encode(self) -> bytes:
        """The value's bytes with its tag."""
        return bytes((self.tag,)) + encode_body(self)


def array(items: list[Data]) -> Data:
    """An array of `items`."""
    return Data(Tag.ARRAY, None, tuple(items))


def structure(items: list[Data]) -> Data:
    """A structure of `items`."""
    return Data(Tag.STRUCTURE, None, tuple(items))


def encode_length(n: int) -> bytes:
    """A-XDR length: one byte below 128, else 81 nn or 82 nnnn."""
    if n < 0x80:
        return bytes((n,))
    if n <= 0xFF:
        return bytes((0x81, n))
    return b"\x82" + n.to_bytes(2, "big")


def decode_length(buf: bytes, pos: int) -> tuple[int, int]:
    """(length, position after it)."""
    first = _byte(buf, pos)
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if not 1 <= count <= 2:
        raise FrameError(f"length with {count} length bytes at offset {pos}")
    return int.from_bytes(_take(buf, pos + 1, count), "big"), pos + 1 + count


def encode_date_time_s(moment: dt.datetime) -> bytes:
    """date_time_s: year (2, big-endian), month, day, hour, minute, second."""
    return moment.year.to_bytes(2, "big") + bytes((moment.month, moment.day, moment.hour, moment.minute,
                                                   moment.second))


def decode_date_time_s(raw: bytes) -> dt.datetime:
    """date_time_s bytes -> datetime (FrameError when not a valid moment)."""
    try:
        return dt.datetime(int.from_bytes(raw[:2], "big"), raw[2], raw[3], raw[4], raw[5], raw[6])
    except ValueError as exc:
        raise FrameError(f"date_time_s {raw.hex()} is not a valid moment") from exc


def encode_body(data: Data) -> bytes:
    """The value's bytes without its tag (as it appears where the type is implied)."""
    tag, value = data.tag, data.value
    if tag == Tag.NULL:
        return b""
    if tag in (Tag.ARRAY, Tag.STRUCTURE):
        return encode_length(len(data.items)) + b"".join(item.encode() for item in data.items)
    if tag == Tag.BOOL:
        return b"\x01" if value else b"\x00"
    if tag in _INTEGERS:
        size, signed = _INTEGERS[tag]
        assert isinstance(value, int)
        return value.to_bytes(size, "big", signed=signed)
    if tag in _OCTETS:
        raw = value.encode("ascii") if isinstance(value, str) else value
        assert isinstance(raw, bytes)
        return encode_length(len(raw)) + raw
    if tag == Tag.BIT_STRING:
        assert isinstance(value, bytes)
        return encode_length(len(value) * 8) + value
    if tag == Tag.DATE_TIME_S:
        assert isinstance(value, dt.datetime)
        return encode_date_time_s(value)
    if tag == Tag.SCALER_UNIT:
        assert isinstance(value, tuple)
        return value[0].to_bytes(1, "big", signed=True) + bytes((value[1],))
    if tag == Tag.TI:
        assert isinstance(value, tuple)
        return bytes((value[0],)) + value[1].to_bytes(2, "big")
    if tag == Tag.TSA:
        assert isinstance(value, bytes)
        return encode_length(len(value)) + value
    raise FrameError(f"the twin cannot encode data type {tag}")


def _byte(buf: bytes, pos: int) -> int:
    if pos >= len(buf):
        raise FrameError(f"APDU ends at offset {pos}, more expected")
    return buf[pos]


def _take(buf: bytes, pos: int, n: int) -> bytes:
    if pos + n > len(buf):
        raise FrameError(f"APDU ends at offset {len(buf)}, {pos + n - len(buf)} more byte(s) expected")
    return buf[pos:pos + n]


def decode_data(buf: bytes, pos: int) -> tuple[Data, int]:
    """(one tagged value, position after it)."""
    tag = _byte(buf, pos)
    return decode_typed(buf, pos + 1, tag)


def decode_typed(buf: bytes, pos: int, tag: int) -> tuple[Data, int]:
    """(a value of type `tag` whose bytes start at `pos` without a tag, position after it)."""
    if tag == Tag.NULL:
        return Data(tag), pos
    if tag in (Tag.ARRAY, Tag.STRUCTURE):
        count, pos = decode_length(buf, pos)
        items = []
        for _ in range(count):
            item, pos = decode_data(buf, pos)
            items.append(item)
        return Data(tag, None, tuple(items)), pos
    if tag == Tag.BOOL:
        return Data(tag, bool(_byte(buf, pos))), pos + 1
    if tag in _INTEGERS:
        size, signed = _INTEGERS[tag]
        return Data(tag, int.from_bytes(_take(buf, pos, size), "big", signed=signed)), pos + size
    if tag in _OCTETS or tag == Tag.TSA:
        n, pos = decode_length(buf, pos)
        raw = _take(buf, pos, n)
        return Data(tag, raw.decode("ascii", "replace") if tag == Tag.VISIBLE_STRING else raw), pos + n
    if tag == Tag.BIT_STRING:
        bits, pos = decode_length(buf, pos)
        n = (bits + 7) // 8
        return Data(tag, _take(buf, pos, n)), pos + n
    if tag == Tag.DATE_TIME_S:
        return Data(tag, decode_date_time_s(_take(buf, pos, 7))), pos + 7
    if tag == Tag.TI:
        raw = _take(buf, pos, 3)
        return Data(tag, (raw[0], int.from_bytes(raw[1:], "big"))), pos + 3
    if tag == Tag.SCALER_UNIT:
        raw = _take(buf, pos, 2)
        return Data(tag, (int.from_bytes(raw[:1], "big", signed=True), raw[1])), pos + 2
    if tag == Tag.ROAD:
        oad = _take(buf, pos, 4)
        count, end = decode_length(buf, pos + 4)
        return Data(tag, oad + _take(buf, end, 4 * count)), end + 4 * count
    raise FrameError(f"data type {tag} at offset {pos - 1} is not one this meter understands")


# ---------------------------------------------------------------- record selection (RSD, RCSD)

@dataclass(frozen=True)
class Csd:
    """A column selector: one OAD, or a ROAD (an object's record with its own columns)."""

    oad: int
    road_columns: tuple[int, ...] | None = None

    def encode(self) -> bytes:
        """CSD bytes (choice, then OAD or ROAD)."""
        if self.road_columns is None:
            return b"\x00" + self.oad.to_bytes(4, "big")
        return (b"\x01" + self.oad.to_bytes(4, "big") + encode_length(len(self.road_columns))
                + b"".join(c.to_bytes(4, "big") for c in self.road_columns))


def decode_rcsd(buf: bytes, pos: int) -> tuple[list[Csd], int]:
    """(the RCSD's column selectors, position after it)."""
    count, pos = decode_length(buf, pos)
    out = []
    for _ in range(count):
        choice = _byte(buf, pos)
        oad = int.from_bytes(_take(buf, pos + 1, 4), "big")
        pos += 5
        if choice == 0:
            out.append(Csd(oad))
        elif choice == 1:
            n, pos = decode_length(buf, pos)
            out.append(Csd(oad, tuple(int.from_bytes(_take(buf, pos + 4 * i, 4), "big") for i in range(n))))
            pos += 4 * n
        else:
            raise FrameError(f"CSD choice {choice} is not 0 (OAD) or 1 (ROAD)")
    return out, pos


def encode_rcsd(columns: list[Csd]) -> bytes:
    """RCSD bytes."""
    return encode_length(len(columns)) + b"".join(c.encode() for c in columns)


@dataclass(frozen=True)
class Rsd:
    """A record selector: `method` (0 none, 1 by a column's value, 2 a column's range, 9 the n-th last,
    10 the last n) and its parameters."""

    method: int
    oad: int = 0
    values: tuple[Data, ...] = ()
    count: int = 0


def _decode_ms(buf: bytes, pos: int) -> int:
    """Skip an MS (meter set); the twin serves only itself, so any set selects it."""
    choice = _byte(buf, pos)
    pos += 1
    if choice in (0, 1):
        return pos
    count, pos = decode_length(buf, pos)
    for _ in range(count):
        if choice in (2, 3):  # user types (unsigned) or addresses (TSA)
            pos = decode_typed(buf, pos, Tag.TSA if choice == 3 else Tag.UNSIGNED)[1]
        else:
            raise FrameError(f"MS choice {choice} is not served by this meter")
    return pos


def decode_rsd(buf: bytes, pos: int) -> tuple[Rsd, int]:
    """(the record selector, position after it)."""
    method = _byte(buf, pos)
    pos += 1
    if method == 0:
        return Rsd(0), pos
    if method == 1:
        oad = int.from_bytes(_take(buf, pos, 4), "big")
        value, pos = decode_data(buf, pos + 4)
        return Rsd(1, oad, (value,)), pos
    if method == 2:
        oad = int.from_bytes(_take(buf, pos, 4), "big")
        pos += 4
        values = []
        for _ in range(3):
            value, pos = decode_data(buf, pos)
            values.append(value)
        return Rsd(2, oad, tuple(values)), pos
    if method == 9:
        return Rsd(9, count=_byte(buf, pos)), pos + 1
    if method == 10:
        count = _byte(buf, pos)
        return Rsd(10, count=count), _decode_ms(buf, pos + 1)
    raise FrameError(f"record selector {method} is not served by this meter")
