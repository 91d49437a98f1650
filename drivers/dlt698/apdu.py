"""DL/T 698.45 application layer helpers (drivers layer): OADs, DAR names, request/reply pairing and values
with the standard's scaler and unit. The messages themselves are the `dlt698` package's typed APDUs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from dlt698 import Data, Oad, codec, standard

from drivers.errors import FrameError

__all__ = ["DAR_NAMES", "SERVICE_NAMES", "Data", "Oad", "Scaled", "as_datetime", "date_time_s", "decode_apdu",
           "layout", "oad", "oad_text", "piid_of", "scaled", "service_tag"]

# DAR (data access result), DL/T 698.45 clause 7.3.2 (the common codes a meter returns).
DAR_NAMES: Final = {
    0: "success", 1: "hardware failure", 2: "temporary failure", 3: "read/write denied", 4: "object undefined",
    5: "class mismatch", 6: "object does not exist", 7: "type mismatch", 8: "out of range",
    9: "data block unavailable", 10: "fragment transfer cancelled", 11: "not in fragment transfer",
    12: "block write cancelled", 13: "no block write in progress", 14: "invalid block number",
    15: "password wrong / not authorised", 16: "baud rate cannot change", 17: "too many year zones",
    18: "too many day periods", 19: "too many tariffs", 20: "security authentication mismatch",
    21: "repeated recharge", 22: "ESAM verification failed", 23: "security authentication failed",
    24: "customer number mismatch", 25: "recharge count wrong", 26: "purchase exceeds the hoarding limit",
    27: "address abnormal", 28: "symmetric decryption error", 29: "asymmetric decryption error",
    30: "signature error", 31: "meter suspended", 32: "time tag invalid", 33: "request timed out",
    34: "ESAM P1P2 wrong", 35: "ESAM LC wrong", 255: "other",
}

# APDU tags of the client's requests and the server's answers (reply tag = request tag + 80H).
SERVICE_NAMES: Final = {
    0x01: "LINK-Response", 0x02: "CONNECT-Request", 0x03: "RELEASE-Request", 0x05: "GET-Request",
    0x06: "SET-Request", 0x07: "ACTION-Request", 0x08: "REPORT-Response", 0x09: "PROXY-Request",
    0x10: "SECURITY-Request", 0x81: "LINK-Request", 0x82: "CONNECT-Response", 0x83: "RELEASE-Response",
    0x84: "RELEASE-Notification", 0x85: "GET-Response", 0x86: "SET-Response", 0x87: "ACTION-Response",
    0x88: "REPORT-Notification", 0x89: "PROXY-Response", 0x90: "SECURITY-Response", 0xEE: "ERROR-Response",
}


def oad(oi: int, attribute: int = 2, index: int = 0) -> Oad:
    """An object attribute descriptor: object identifier, attribute number, element index (0: all)."""
    return Oad(oi=oi, attribute=attribute, index=index)


def oad_text(value: Oad) -> str:
    """'20000200': OI, attribute, index as the standard writes an OAD."""
    return f"{value.oi:04X}{value.attribute:02X}{value.index:02X}"


def service_tag(apdu: bytes) -> str:
    """The service an APDU carries, by name (its tag in hex when unknown)."""
    if not apdu:
        return "empty APDU"
    return SERVICE_NAMES.get(apdu[0], f"APDU {apdu[0]:02X}H")


def piid_of(apdu: bytes) -> int | None:
    """The PIID (or PIID-ACD) of an APDU: the byte after the choice of GET/SET/ACTION/REPORT and after the tag
    of CONNECT/RELEASE; None where the service has none (LINK carries it too, SECURITY wraps another APDU)."""
    if len(apdu) < 2:
        return None
    tag = apdu[0] & 0x7F
    if tag in (0x05, 0x06, 0x07, 0x08, 0x09) and len(apdu) >= 3:
        return apdu[2]
    if tag in (0x01, 0x02, 0x03) or apdu[0] == 0xEE:
        return apdu[1]
    return None


def decode_apdu(apdu: bytes) -> object:
    """The package's typed message for an APDU; FrameError naming the service when it does not decode."""
    try:
        return codec.decode_apdu(apdu)
    except Exception as exc:  # noqa: BLE001 - the package raises its own error classes
        raise FrameError(f"{service_tag(apdu)} does not decode: {exc}") from None


@dataclass(frozen=True)
class Scaled:
    """A value with the standard's scaler applied: `values` in `unit` (one per element of an array)."""

    values: tuple[float, ...]
    unit: str

    @property
    def value(self) -> float:
        """The first (or only) value; for an energy array, the total."""
        if not self.values:
            raise FrameError("the attribute carries no values")
        return self.values[0]


def layout(*, three_phase: bool = False, tariffs: int = 4) -> standard.DeviceLayout:
    """The shape of a meter's arrays (phases, tariffs) that the standard's catalogue checks values against."""
    wiring = standard.Wiring.three_phase if three_phase else standard.Wiring.single_phase
    return standard.DeviceLayout(wiring=wiring, tariff_count=tariffs)


def scaled(attribute: Oad, value: Data, shape: standard.DeviceLayout | None = None) -> Scaled:
    """`value` of `attribute` in engineering units by the standard's object catalogue (scaler and unit of the
    interface class); FrameError when the catalogue does not know the attribute or the value's type is wrong.
    `shape`: the meter's phases and tariffs (default: single phase, 4 tariffs)."""
    try:
        numbers = standard.engineering_values(attribute, value, shape if shape is not None else layout())
    except Exception as exc:  # noqa: BLE001
        raise FrameError(f"{oad_text(attribute)}: value not of the standard's type ({exc})") from None
    units = {standard.unit_symbol(n.scaling.unit) for n in numbers}
    return Scaled(tuple(standard.approximate_value(n) for n in numbers), units.pop() if len(units) == 1 else "")


def date_time_s(moment: dt.datetime) -> Data:
    """A date_time_s value (year high, year low, month, day, hour, minute, second) of `moment`."""
    return Data.date_time_s([moment.year >> 8, moment.year & 0xFF, moment.month, moment.day, moment.hour,
                             moment.minute, moment.second])


def as_datetime(value: Data) -> dt.datetime:
    """The calendar time a date_time_s value holds; FrameError when it holds none (FFH fields, a bad date)."""
    raw = value.value
    fields = [f for f in raw if isinstance(f, int)] if isinstance(raw, list) else []
    try:
        year, month, day, hour, minute, second = fields[0] << 8 | fields[1], *fields[2:7]
        return dt.datetime(year, month, day, hour, minute, second)
    except (IndexError, TypeError, ValueError):
        raise FrameError(f"not a date_time_s: {fields}") from None
