"""A meter's identity as it reports it over DL/T 645-2007: manufacturer, model, meter number, asset code,
software version and software checksum (what a type test compares with the type's declared values, and what a
certificate names).

    from rig.identity import read_identity
    identity = read_identity(position.link)      # a drivers.dlt645.link.MeterLink, opened
    identity.firmware, identity.checksum         # None where the meter has no such item

Host side (rig layer): it reads through the driver's link; the identifiers are DL/T 645-2007 table A.5
(parameters 04 00 04 xx, manufacturer items 04 80 00 xx). The software checksum has no identifier in the
standard: 04 80 00 05 is the twin maker's extension beside the version items (check against the maker's
protocol document of a real meter type).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from drivers.dlt645 import ErrorCode, Value
from drivers.dlt645.exchange import AbnormalReply
from drivers.errors import FrameError

MANUFACTURER_DI: Final = 0x04800003  # manufacturer code, ASCII 32
MODEL_DI: Final = 0x0400040B  # meter model, ASCII 10
METER_NUMBER_DI: Final = 0x04000402  # meter number, 12 BCD digits
ASSET_DI: Final = 0x04000403  # asset management code, ASCII 32
SOFTWARE_VERSION_DI: Final = 0x04800001  # manufacturer software version, ASCII 32
HARDWARE_VERSION_DI: Final = 0x04800002  # manufacturer hardware version, ASCII 32
SOFTWARE_CHECKSUM_DI: Final = 0x04800005  # software checksum, 4 bytes (a maker's extension: check)


class Dlt645Reader(Protocol):
    """What read_identity needs of a link: `read(di)` (drivers.dlt645.link.MeterLink and its BLE twin)."""

    address: str

    def read(self, di: int) -> Value:
        """The value of data identifier `di`."""
        ...


@dataclass(frozen=True)
class MeterIdentity:
    """What a meter says it is; None where it has no such item (it answered "no such data")."""

    address: str
    manufacturer: str | None
    model: str | None
    serial: str | None  # the meter number, 12 digits
    firmware: str | None  # the software version
    checksum: str | None  # the software checksum, 8 hex digits, upper case
    asset: str | None = None
    hardware: str | None = None

    def describe(self) -> str:
        """One line for a report or a certificate: 'Meter HIL Twin DDZY-TW1 No. 000000000001, software 0001
        (checksum 1A2B3C4D)'."""
        def shown(value: str | None) -> str:
            return value if value is not None else "(not given)"

        return (f"{shown(self.manufacturer)} {shown(self.model)} No. {shown(self.serial)}, software "
                f"{shown(self.firmware)} (checksum {shown(self.checksum)})")


def _optional(link: Dlt645Reader, di: int) -> Value | None:
    """The item's value, or None when the meter answers that it has no such data."""
    try:
        return link.read(di)
    except AbnormalReply as exc:
        if exc.error == ErrorCode.NO_DATA:
            return None
        raise


def _text(link: Dlt645Reader, di: int) -> str | None:
    value = _optional(link, di)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FrameError(f"meter {link.address}: DI {di:08X} is not text: {value!r}")
    return value


def _whole(link: Dlt645Reader, di: int, what: str) -> int | None:
    value = _optional(link, di)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FrameError(f"meter {link.address}: DI {di:08X} ({what}) is not a whole number: {value!r}")
    return value


def _shown(value: int | None, form: str) -> str | None:
    return None if value is None else format(value, form)


def read_identity(link: Dlt645Reader) -> MeterIdentity:
    """Read the meter's identity items over `link` (opened; the meter powered).

    An item the meter does not have ("no such data") is None; any other refusal, a timeout or a malformed
    reply raises the link's error (drivers.errors.RigError), naming the meter and the item.
    """
    return MeterIdentity(
        address=link.address,
        manufacturer=_text(link, MANUFACTURER_DI),
        model=_text(link, MODEL_DI),
        serial=_shown(_whole(link, METER_NUMBER_DI, "meter number"), "012d"),
        firmware=_text(link, SOFTWARE_VERSION_DI),
        checksum=_shown(_whole(link, SOFTWARE_CHECKSUM_DI, "software checksum"), "08X"),
        asset=_text(link, ASSET_DI),
        hardware=_text(link, HARDWARE_VERSION_DI),
    )

