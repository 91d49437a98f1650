"""The shape of a meter's transparent-UART GATT service (drivers layer): ATT sizes, the properties its write
and notify characteristics need, the check that they have them, and a connection to it as `BleUartPort` keeps
it. Imports nothing above the drivers layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from drivers.ble.target import BleTarget, GattCharacteristicInfo, GattServiceInfo
from drivers.errors import InstrumentError

if TYPE_CHECKING:
    from bleak import BleakClient
    from bleak.backends.characteristic import BleakGATTCharacteristic
    from bleak.backends.service import BleakGATTServiceCollection

__all__ = ["ATT_DEFAULT_MTU", "ATT_HEADER_BYTES", "NOTIFY_PROPERTIES", "WRITE_PROPERTIES", "check_characteristics"]

ATT_DEFAULT_MTU: Final = 23  # Bluetooth Core Vol 3 Part F 3.2.8: every LE link starts (and may stay) at 23
ATT_HEADER_BYTES: Final = 3  # opcode + handle before a write's or a notification's value
WRITE_PROPERTIES: Final = ("write", "write-without-response")
NOTIFY_PROPERTIES: Final = ("notify", "indicate")


@dataclass
class _Connection:
    client: BleakClient
    write_char: BleakGATTCharacteristic
    with_response: bool
    payload: int  # bytes per write and per notification: negotiated ATT MTU - 3
    services: tuple[GattServiceInfo, ...] = field(default_factory=tuple)


def check_characteristics(target: BleTarget, write_char: BleakGATTCharacteristic | None,
                          notify_char: BleakGATTCharacteristic | None) -> None:
    """InstrumentError naming what is wrong when the service lacks the write or notify characteristic the
    bench file names, or one lacks the properties its role needs."""
    for char, uuid, wanted, role in ((write_char, target.write_uuid, WRITE_PROPERTIES, "write"),
                                     (notify_char, target.notify_uuid, NOTIFY_PROPERTIES, "notify")):
        if char is None:
            raise InstrumentError(f"{target.url}: service {target.service_uuid} has no characteristic {uuid} "
                                  f"(the bench file's ble.{role}_uuid)")
        if not set(char.properties) & set(wanted):
            raise InstrumentError(f"{target.url}: characteristic {uuid} cannot {role} (its properties: "
                                  f"{', '.join(char.properties) or 'none'})")


def _describe(collection: BleakGATTServiceCollection) -> tuple[GattServiceInfo, ...]:
    return tuple(
        GattServiceInfo(service.uuid, tuple(GattCharacteristicInfo(c.uuid, c.handle, tuple(c.properties))
                                            for c in service.characteristics))
        for service in collection
    )
