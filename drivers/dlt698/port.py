"""The port of a meter's DL/T 698.45 link (drivers layer): the port a position's DL/T 645 link lends it when
the meter speaks both protocols on one UART or BLE service, and the BLE transparent-UART port of a meter that
speaks only DL/T 698.45 there. Imports nothing above the drivers layer."""

from __future__ import annotations

from typing import Any

from drivers.ble import BleBackend, BleTarget, BleUartPort
from drivers.clock import Clock
from drivers.dlt645.link import MeterLink, PortFactory
from drivers.serial_transport import LineSettings, SerialPort

__all__ = ["SharedPort", "ble_port", "shared_port"]


class SharedPort:
    """The port of a position's DL/T 645 link, lent to its DL/T 698.45 link: a meter that speaks both answers
    on one UART (or one BLE service), which one host opens once. Every call goes to the owner's current port,
    so a port the owner reopened after a fault is followed; `close` lets the owner reopen it at its next use."""

    def __init__(self, owner: MeterLink) -> None:
        self._owner = owner

    @property
    def in_waiting(self) -> int:
        """Bytes waiting at the owner's port."""
        return self._owner._require().in_waiting

    @property
    def _socket(self) -> object:
        """The owner's port's socket, where `bytes_arriving` looks for bytes on their way in (RFC 2217): without
        it the clock could pass a reply timeout while the meter's reply is still in the socket."""
        return getattr(self._owner._require(), "_socket", None)

    def read(self, size: int = 1) -> bytes:
        """Read from the owner's port."""
        return self._owner._require().read(size)

    def write(self, data: bytes) -> int | None:
        """Write to the owner's port."""
        return self._owner._require().write(data)

    def apply_settings(self, d: dict[str, Any]) -> None:
        """Line settings belong to the owner: its `reconfigure` changes them for both protocols."""

    def close(self) -> None:
        """The 698 link is done with the port (or found it broken): the owner opens it again when next used."""
        self._owner._drop_port()


def shared_port(owner: MeterLink) -> PortFactory:
    """A port factory for a `Dlt698Link` that borrows `owner`'s port (see `SharedPort`)."""
    return lambda url, line: SharedPort(owner)


def ble_port(target: BleTarget, clock: Clock, backend: BleBackend | None = None) -> PortFactory:
    """A port factory for a `Dlt698Link` over the meter's BLE transparent-UART service (a meter that speaks
    only DL/T 698.45 there; one that speaks both lends its DL/T 645 link's port through `shared_port`)."""
    def open_ble(url: str, line: LineSettings) -> SerialPort:
        port = BleUartPort(target, clock, backend=backend if backend is not None else BleBackend())
        port.open()
        return port

    return open_ble
