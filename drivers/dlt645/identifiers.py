"""DL/T 645-2007 data identifiers and value formats, sans-IO (drivers layer): a table, not code.

Values are plain (before +33H) and low byte first, as the standard sends them.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from types import MappingProxyType
from typing import Final, TypeAlias

from drivers.dlt645.bcd import BCD_BYTES
from drivers.dlt645.bcd import bcd_decode as bcd_decode  # offered here too, beside the values it serves
from drivers.dlt645.bcd import bcd_encode as bcd_encode
from drivers.errors import FrameError

DI_LENGTH: Final = 4

Value: TypeAlias = (
    int | float | dt.date | dt.time | dt.datetime | tuple[dt.datetime | None, dt.datetime | None] | bytes | str
)


class Kind(Enum):
    """How the bytes of a data item are read."""

    NUMBER = "number"  # BCD, `decimals` after the point; with `signed`, the top bit is the sign
    DATE = "date"  # YYMMDDWW (WW weekday, 0 = Sunday) -> datetime.date
    TIME = "time"  # hhmmss -> datetime.time
    RECORD = "record"  # start YYMMDDhhmmss + end YYMMDDhhmmss -> (start, end); all zeros -> None
    BITS = "bits"  # binary word (status words) -> int
    OPAQUE = "opaque"  # passed through as bytes (security payloads; their layer reads them)
    ASCII = "ascii"  # text, NUL-padded to the length and sent last character first (low byte first) -> str


@dataclass(frozen=True, slots=True)
class DataFormat:
    """The layout of a value: kind, byte length (None: variable), decimals, sign bit, unit."""

    kind: Kind
    length: int | None
    decimals: int = 0
    signed: bool = False
    unit: str = ""


@dataclass(frozen=True, slots=True)
class DataItem:
    """One row of the identifier table."""

    di: int
    name: str
    format: DataFormat

    @property
    def unit(self) -> str:
        """The unit of the value ('' when it has none)."""
        return self.format.unit


COMBINED_ENERGY_KWH: Final = DataFormat(Kind.NUMBER, 4, decimals=2, signed=True, unit="kWh")
ENERGY_KWH: Final = DataFormat(Kind.NUMBER, 4, decimals=2, unit="kWh")
VOLTAGE_V: Final = DataFormat(Kind.NUMBER, 2, decimals=1, unit="V")
CURRENT_A: Final = DataFormat(Kind.NUMBER, 3, decimals=3, signed=True, unit="A")
POWER_KW: Final = DataFormat(Kind.NUMBER, 3, decimals=4, signed=True, unit="kW")
FREQUENCY_HZ: Final = DataFormat(Kind.NUMBER, 2, decimals=2, unit="Hz")
TEMPERATURE_C: Final = DataFormat(Kind.NUMBER, 2, decimals=1, signed=True, unit="°C")
BATTERY_VOLTAGE_V: Final = DataFormat(Kind.NUMBER, 2, decimals=2, unit="V")
DURATION_MIN: Final = DataFormat(Kind.NUMBER, 4, unit="min")
COUNT: Final = DataFormat(Kind.NUMBER, 3)
DATE_WEEKDAY: Final = DataFormat(Kind.DATE, 4)
TIME_OF_DAY: Final = DataFormat(Kind.TIME, 3)
START_END_RECORD: Final = DataFormat(Kind.RECORD, 12)
STATUS_WORD: Final = DataFormat(Kind.BITS, 2)
OPAQUE: Final = DataFormat(Kind.OPAQUE, None)
METER_NUMBER: Final = DataFormat(Kind.NUMBER, 6)  # NNNNNNNNNNNN, 12 BCD digits
ASCII_32: Final = DataFormat(Kind.ASCII, 32)
ASCII_10: Final = DataFormat(Kind.ASCII, 10)
CHECKSUM_32: Final = DataFormat(Kind.BITS, 4)
HARMONIC_CONTENT_PCT: Final = DataFormat(Kind.NUMBER, 2, decimals=2, unit="%")  # XX.XX % of the fundamental
CLOCK_SET_RECORD: Final = DataFormat(Kind.RECORD, 16)  # operator code (4) + time before + time after (check)
DAY_PERIODS: Final = DataFormat(Kind.OPAQUE, 42)  # 14 x (hhmm start + tariff NN); drivers.dlt645.tariff reads it
SMALL_COUNT: Final = DataFormat(Kind.NUMBER, 1)  # NN: tariffs, screens, seconds
SCREEN_ITEM: Final = DataFormat(Kind.BITS, 5)  # the shown item's DI (low 4 bytes) + its screen number (check)

_ITEMS: Final = (
    # The standard's note to table A.1: combined active energy carries a sign in its top bit.
    DataItem(0x00000000, "combined active energy, total", COMBINED_ENERGY_KWH),
    DataItem(0x00010000, "forward active energy, total", ENERGY_KWH),
    DataItem(0x00020000, "reverse active energy, total", ENERGY_KWH),
    DataItem(0x02010100, "phase A voltage", VOLTAGE_V),
    DataItem(0x02010200, "phase B voltage", VOLTAGE_V),
    DataItem(0x02010300, "phase C voltage", VOLTAGE_V),
    DataItem(0x02020100, "phase A current", CURRENT_A),
    DataItem(0x02020200, "phase B current", CURRENT_A),
    DataItem(0x02020300, "phase C current", CURRENT_A),
    DataItem(0x02030000, "total active power", POWER_KW),
    DataItem(0x02030100, "phase A active power", POWER_KW),
    DataItem(0x02030200, "phase B active power", POWER_KW),
    DataItem(0x02030300, "phase C active power", POWER_KW),
    DataItem(0x02800002, "frequency", FREQUENCY_HZ),
    DataItem(0x02800007, "internal temperature", TEMPERATURE_C),
    DataItem(0x02800008, "clock battery voltage", BATTERY_VOLTAGE_V),
    DataItem(0x0280000A, "battery operating time", DURATION_MIN),
    DataItem(0x03110000, "power-down count", COUNT),
    DataItem(0x03300000, "programming count", COUNT),  # every parameter write the meter took
    *(DataItem(0x03110000 + n, f"power-down record, last {n}", START_END_RECORD) for n in range(1, 11)),
    DataItem(0x04000101, "date and weekday", DATE_WEEKDAY),
    DataItem(0x04000102, "time", TIME_OF_DAY),
    *(DataItem(0x04000500 + n, f"running status word {n}", STATUS_WORD) for n in range(1, 8)),
    DataItem(0x070000FF, "identity authentication", OPAQUE),
    # Meter identity (table A.5, parameters): numbers BCD, text ASCII.
    DataItem(0x04000401, "communication address", METER_NUMBER),
    DataItem(0x04000402, "meter number", METER_NUMBER),
    DataItem(0x04000403, "asset management code", ASCII_32),
    DataItem(0x0400040B, "meter model", ASCII_10),
    DataItem(0x04800001, "manufacturer software version", ASCII_32),
    DataItem(0x04800002, "manufacturer hardware version", ASCII_32),
    DataItem(0x04800003, "manufacturer code", ASCII_32),
    # Not in DL/T 645-2007's table: a manufacturer extension beside the version items (check).
    DataItem(0x04800005, "software checksum", CHECKSUM_32),
    # Energy per tariff (table A.1: DI1 = tariff number) and the daily period table (A.5).
    *(DataItem(0x00010000 + t * 0x100, f"forward active energy, tariff {t}", ENERGY_KWH) for t in range(1, 5)),
    *(DataItem(0x00020000 + t * 0x100, f"reverse active energy, tariff {t}", ENERGY_KWH) for t in range(1, 5)),
    DataItem(0x04000204, "number of tariffs", SMALL_COUNT),
    DataItem(0x04010001, "daily period table 1 of the first set", DAY_PERIODS),
    # The display's auto-cycle (A.5): number of screens, seconds per screen, the item of each screen.
    DataItem(0x04000301, "auto-cycle screens", SMALL_COUNT),
    DataItem(0x04000302, "seconds per screen", SMALL_COUNT),
    *(DataItem(0x04040100 + n, f"auto-cycle screen {n}", SCREEN_ITEM) for n in range(1, 33)),
    # Clock-setting events: count and the last 1..10 records.
    DataItem(0x03300400, "clock-setting count", COUNT),
    *(DataItem(0x03300400 + n, f"clock-setting record, last {n}", CLOCK_SET_RECORD) for n in range(1, 11)),
    # Harmonic metering, as recalled from DL/T 645-2007 tables A.1 (DI2 81: forward active fundamental energy,
    # 83: forward active harmonic energy) and A.3 (02 0A / 02 0B: voltage / current harmonic content per phase,
    # DI0 = the order, 2..21); not in the project reference: check.
    DataItem(0x00810000, "forward active fundamental energy, total", ENERGY_KWH),
    DataItem(0x00830000, "forward active harmonic energy, total", ENERGY_KWH),
    *(DataItem(0x020A0100 + n, f"phase A voltage harmonic content, order {n}", HARMONIC_CONTENT_PCT)
      for n in range(2, 22)),
    *(DataItem(0x020B0100 + n, f"phase A current harmonic content, order {n}", HARMONIC_CONTENT_PCT)
      for n in range(2, 22)),
)

DATA_ITEMS: Final[Mapping[int, DataItem]] = MappingProxyType({item.di: item for item in _ITEMS})

# Running status word 1, bit 2 (reference: clock battery low).
STATUS1_CLOCK_BATTERY_LOW: Final = 0x0004
# Running status word 1, bit 4: active power direction, 0 forward, 1 reverse (check).
STATUS1_ACTIVE_REVERSE: Final = 0x0010


def data_item(di: int) -> DataItem:
    """The table row of `di`; FrameError when the table does not know it."""
    try:
        return DATA_ITEMS[di]
    except KeyError:
        raise FrameError(f"unknown data identifier {_di_text(di)}: not in DATA_ITEMS") from None


def encode_di(di: int) -> bytes:
    """The 4 plain bytes of a data identifier, low byte first (0x02010100 -> 00 01 01 02)."""
    if not 0 <= di <= 0xFFFFFFFF:
        raise FrameError(f"data identifier {di!r} does not fit in 4 bytes")
    return di.to_bytes(DI_LENGTH, "little")


def decode_di(raw: bytes) -> int:
    """The data identifier of its 4 plain bytes, low byte first."""
    if len(raw) != DI_LENGTH:
        raise FrameError(f"data identifier must be {DI_LENGTH} bytes, got {len(raw)}")
    return int.from_bytes(raw, "little")


def split_di(data: bytes) -> tuple[int, bytes]:
    """A read/write data field split into its data identifier and the bytes after it."""
    if len(data) < DI_LENGTH:
        raise FrameError(f"data field of {len(data)} byte(s) is too short for a {DI_LENGTH}-byte identifier")
    return int.from_bytes(data[:DI_LENGTH], "little"), bytes(data[DI_LENGTH:])


def _field(raw: bytes, index: int, name: str, low: int, high: int) -> int:
    """One BCD byte of a date or time, checked against its range."""
    byte = raw[index]
    if byte not in BCD_BYTES:
        raise FrameError(f"{name} byte 0x{byte:02X} is not BCD")
    value = (byte >> 4) * 10 + (byte & 0x0F)
    if not low <= value <= high:
        raise FrameError(f"{name} {value} out of range {low}..{high}")
    return value


def _date(raw: bytes, day_index: int) -> dt.date:
    """The date of the BCD bytes DD MM YY starting at `day_index`."""
    year = 2000 + _field(raw, day_index + 2, "year", 0, 99)
    month = _field(raw, day_index + 1, "month", 1, 12)
    day = _field(raw, day_index, "day", 1, calendar.monthrange(year, month)[1])
    return dt.date(year, month, day)


def _time(raw: bytes) -> dt.time:
    """The time of the BCD bytes ss mm hh."""
    hour = _field(raw, 2, "hour", 0, 23)
    return dt.time(hour, _field(raw, 1, "minute", 0, 59), _field(raw, 0, "second", 0, 59))


def decode_datetime(raw: bytes) -> dt.datetime:
    """A YYMMDDhhmmss timestamp from its 6 plain bytes ss mm hh DD MM YY; FrameError naming a bad field."""
    if len(raw) != 6:
        raise FrameError(f"YYMMDDhhmmss timestamp must be 6 bytes, got {len(raw)}")
    return dt.datetime.combine(_date(raw, 3), _time(raw))


def encode_datetime(moment: dt.datetime) -> bytes:
    """The 6 plain bytes ss mm hh DD MM YY of a timestamp in 2000..2099 (fractions of a second dropped)."""
    if not isinstance(moment, dt.datetime):
        raise FrameError(f"timestamp must be a datetime, got {moment!r}")
    if not 2000 <= moment.year <= 2099:
        raise FrameError(f"year {moment.year} out of range 2000..2099 (YY has two digits)")
    return bytes.fromhex(moment.strftime("%S%M%H%d%m") + f"{moment.year % 100:02d}")


def _decode_number(fmt: DataFormat, raw: bytes) -> int | float:
    negative = fmt.signed and raw[-1] & 0x80
    if negative:
        raw = raw[:-1] + bytes((raw[-1] & 0x7F,))
    magnitude = bcd_decode(raw)
    value: int | float = magnitude / 10**fmt.decimals if fmt.decimals else magnitude
    return -value if negative and magnitude else value


def _encode_number(fmt: DataFormat, value: object) -> bytes:
    assert fmt.length is not None  # every NUMBER row has a fixed length
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise FrameError(f"takes a number, got {value!r}")
    exact = Decimal(value) if isinstance(value, int | Decimal) else Decimal(repr(value))
    if not exact.is_finite():
        raise FrameError(f"must be finite, got {value!r}")
    scaled = exact.scaleb(fmt.decimals)
    if scaled != scaled.to_integral_value():
        raise FrameError(f"{_quantity(value, fmt.unit)} has more than {fmt.decimals} decimal(s)")
    number = int(scaled)
    digits = 2 * fmt.length
    # With a sign bit the top digit keeps only 3 bits: 0..7.
    limit = 8 * 10 ** (digits - 1) if fmt.signed else 10**digits
    if number < 0 and not fmt.signed:
        raise FrameError(f"cannot be negative, got {value}")
    if abs(number) >= limit:
        largest = Decimal(limit - 1).scaleb(-fmt.decimals)
        raise FrameError(
            f"{_quantity(value, fmt.unit)} out of range: magnitude at most {_quantity(largest, fmt.unit)}"
        )
    raw = bcd_encode(abs(number), fmt.length)
    return raw[:-1] + bytes((raw[-1] | 0x80,)) if number < 0 else raw


def _decode_record_time(raw: bytes) -> dt.datetime | None:
    # A record that has not happened yet reads as all zeros.
    return None if not any(raw) else decode_datetime(raw)


def decode_value(di: int, raw: bytes) -> Value:
    """The value of `di` from its plain bytes (after the DI); the unit is `data_item(di).unit`."""
    item = data_item(di)
    fmt = item.format
    raw = bytes(raw)
    if fmt.length is not None and len(raw) != fmt.length:
        raise FrameError(f"{item.name} ({_di_text(di)}) needs {fmt.length} bytes, got {len(raw)}")
    try:
        return _DECODERS[fmt.kind](fmt, raw)
    except FrameError as error:
        raise FrameError(f"{item.name} ({_di_text(di)}): {error}") from None


def encode_value(di: int, value: Value) -> bytes:
    """The plain bytes of `value` for `di`, low byte first; FrameError when it does not fit."""
    item = data_item(di)
    try:
        return _ENCODERS[item.format.kind](item.format, value)
    except FrameError as error:
        raise FrameError(f"{item.name} ({_di_text(di)}): {error}") from None


def _decode_date(fmt: DataFormat, raw: bytes) -> dt.date:
    date = _date(raw, 1)
    weekday = _field(raw, 0, "weekday", 0, 6)
    expected = (date.weekday() + 1) % 7  # DL/T 645 counts from Sunday = 0
    if weekday != expected:
        raise FrameError(
            f"weekday {weekday} does not match {date.isoformat()} (weekday {expected}, 0 = Sunday)"
        )
    return date


def _encode_date(fmt: DataFormat, value: object) -> bytes:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise FrameError(f"takes a datetime.date, got {value!r}")
    if not 2000 <= value.year <= 2099:
        raise FrameError(f"year {value.year} out of range 2000..2099 (YY has two digits)")
    weekday = (value.weekday() + 1) % 7
    return bytes.fromhex(f"{weekday:02d}" + value.strftime("%d%m") + f"{value.year % 100:02d}")


def _encode_time(fmt: DataFormat, value: object) -> bytes:
    # Fractions of a second are dropped: the meter clock counts whole seconds.
    if not isinstance(value, dt.time):
        raise FrameError(f"takes a datetime.time, got {value!r}")
    return bytes.fromhex(value.strftime("%S%M%H"))


def _decode_record(fmt: DataFormat, raw: bytes) -> tuple[dt.datetime | None, dt.datetime | None]:
    # A longer record starts with what the two timestamps follow (an operator code): not kept.
    raw = raw[-12:]
    return _decode_record_time(raw[:6]), _decode_record_time(raw[6:])


def _encode_record(fmt: DataFormat, value: object) -> bytes:
    if not (isinstance(value, tuple) and len(value) == 2
            and all(part is None or isinstance(part, dt.datetime) for part in value)):
        raise FrameError(f"takes (start, end) datetimes or None, got {value!r}")
    prefix = bytes((fmt.length or 12) - 12)
    return prefix + b"".join(bytes(6) if part is None else encode_datetime(part) for part in value)


def _decode_bits(fmt: DataFormat, raw: bytes) -> int:
    return int.from_bytes(raw, "little")


def _encode_bits(fmt: DataFormat, value: object) -> bytes:
    length = fmt.length
    assert length is not None  # every BITS row has a fixed length
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << (8 * length):
        raise FrameError(f"takes an int of {8 * length} bits, got {value!r}")
    return value.to_bytes(length, "little")


def _encode_opaque(fmt: DataFormat, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise FrameError(f"takes bytes, got {value!r}")
    return bytes(value)


def _decode_ascii(fmt: DataFormat, raw: bytes) -> str:
    try:
        return raw[::-1].rstrip(b"\x00 ").decode("ascii")
    except UnicodeDecodeError:
        raise FrameError(f"text is not ASCII: {raw[::-1]!r}") from None


def _encode_ascii(fmt: DataFormat, value: object) -> bytes:
    assert fmt.length is not None  # every ASCII row has a fixed length
    if not isinstance(value, str) or not value.isascii():
        raise FrameError(f"takes ASCII text, got {value!r}")
    if len(value) > fmt.length:
        raise FrameError(f"text {value!r} is longer than {fmt.length} characters")
    return value.encode("ascii").ljust(fmt.length, b"\x00")[::-1]


def _quantity(value: object, unit: str) -> str:
    return f"{value} {unit}" if unit else str(value)


def _di_text(di: object) -> str:
    return f"DI {di:08X}" if isinstance(di, int) else f"DI {di!r}"


def _decode_time(fmt: DataFormat, raw: bytes) -> dt.time:
    return _time(raw)


def _decode_opaque(fmt: DataFormat, raw: bytes) -> bytes:
    return raw


_DECODERS: Final[Mapping[Kind, Callable[[DataFormat, bytes], Value]]] = MappingProxyType({
    Kind.NUMBER: _decode_number,
    Kind.DATE: _decode_date,
    Kind.TIME: _decode_time,
    Kind.RECORD: _decode_record,
    Kind.BITS: _decode_bits,
    Kind.OPAQUE: _decode_opaque,
    Kind.ASCII: _decode_ascii,
})

_ENCODERS: Final[Mapping[Kind, Callable[[DataFormat, object], bytes]]] = MappingProxyType({
    Kind.NUMBER: _encode_number,
    Kind.DATE: _encode_date,
    Kind.TIME: _encode_time,
    Kind.RECORD: _encode_record,
    Kind.BITS: _encode_bits,
    Kind.OPAQUE: _encode_opaque,
    Kind.ASCII: _encode_ascii,
})
