"""What a BLE link reaches and what it learns (drivers layer): the meter and its transparent-UART service, the
Bluetooth stack bleak drives, an advertising report, the discovered services, and the link's counters. Plain
records; never imports the rig or pytest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drivers.errors import ValidationError


@dataclass(frozen=True)
class BleTarget:
    """The meter to reach (advertised name and/or address) and its transparent-UART service. UUIDs are the
    128-bit lower-case form bleak uses (16-bit ones on the Bluetooth base: 0000fff0-0000-1000-8000-00805f9b34fb)."""

    name: str | None
    address: str | None
    service_uuid: str
    write_uuid: str
    notify_uuid: str
    pairing: bool = False  # pair (encrypt) on connecting: the meter refuses requests otherwise
    scan_timeout_s: float = 10.0  # bench time to look for the advertising
    connect_timeout_s: float = 10.0  # what the OS may take to connect and discover

    def __post_init__(self) -> None:
        if not self.name and not self.address:
            raise ValidationError("a BLE target needs an advertised name or an address")
        if self.scan_timeout_s <= 0 or self.connect_timeout_s <= 0:
            raise ValidationError("BLE scan and connect timeouts must be positive")

    @property
    def label(self) -> str:
        """The name, else the address."""
        return self.name or str(self.address)

    @property
    def url(self) -> str:
        """How traffic logs and messages name the link: ble://<name or address>."""
        return f"ble://{self.label}"

    def matches(self, address: str, local_name: str | None) -> bool:
        """True for the advertising of this meter: its address when given, else its name."""
        if self.address:
            return address.upper() == self.address.upper()
        return local_name == self.name


@dataclass(frozen=True)
class BleBackend:
    """The Bluetooth stack bleak drives: bleak's default for this OS (BlueZ on Linux) when both classes are None,
    else custom bleak backend classes (`BleakClient(..., backend=client)`, `BleakScanner(..., backend=scanner)`)."""

    client: type[Any] | None = None
    scanner: type[Any] | None = None
    name: str = "bleak"


@dataclass(frozen=True)
class Advertisement:
    """One advertising report of the meter: who, what it says, and the bench time it was heard."""

    address: str
    local_name: str | None
    service_uuids: tuple[str, ...]
    rssi: int
    seen_at_s: float  # bench time (when the scan that heard it ended; the scan started earlier)


@dataclass(frozen=True)
class GattCharacteristicInfo:
    """A characteristic as discovered: UUID, handle, properties (bleak's names: 'write', 'notify', ...)."""

    uuid: str
    handle: int
    properties: tuple[str, ...]


@dataclass(frozen=True)
class GattServiceInfo:
    """A service as discovered, with its characteristics."""

    uuid: str
    characteristics: tuple[GattCharacteristicInfo, ...]


@dataclass
class LinkStats:
    """Counters of one port since it was opened (the plans read them around an exchange)."""

    connections: int = 0  # connections made (the first and every reconnect)
    drops: int = 0  # connections lost (the rig's drop() included)
    failed_connects: int = 0
    writes: int = 0  # GATT writes (a frame longer than one write takes several)
    largest_write: int = 0  # bytes
    notifications: int = 0
    largest_notification: int = 0  # bytes
    oversized_notifications: int = 0  # longer than the negotiated ATT MTU allows (MTU - 3)
    mtu: int | None = None  # negotiated ATT MTU of the current (or last) connection
