"""bleak backend classes that drive a bumble central: how the rig's unchanged BLE link (bleak's `BleakClient` and
`BleakScanner` with `backend=...`) reaches meters through a bumble `Device` rather than the OS's stack.

`BumbleCentral` is the rig's Bluetooth dongle as a bumble `Device`: on a controller the caller makes (the embedded
twin's air: a controller on its LocalLink, same loop), or on an HCI transport of its own (a served twin's
`tcp-client:127.0.0.1:PORT`, or any bumble transport such as a USB dongle `usb:0`). The backend classes run on the
caller's (bleak's) event loop and hand every operation to the central's loop; notifications come back with
`call_soon_threadsafe`, in order. `backend_for(spec)` turns 'bleak' and 'bumble:<HCI transport>' into backend
classes. Drivers layer: never imports the rig or the twin; bumble is imported only with this module.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import threading
import uuid as uuid_lib
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, Final, TypeVar

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import att
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt_client import CharacteristicProxy
from bumble.hci import Address
from bumble.host import Host
from bumble.transport.common import AsyncPipeSink

from drivers.ble import BleBackend
from drivers.ble.loop_thread import start_loop_thread
from drivers.errors import RigError

T = TypeVar("T")

# What BlueZ asks for in the ATT MTU exchange; the meter's module answers with its own (the smaller wins).
REQUESTED_MTU: Final = 517
_DONGLE_NUMBERS = itertools.count(1)
_PROPERTY_NAMES: Final = ((0x01, "broadcast"), (0x02, "read"), (0x04, "write-without-response"), (0x08, "write"),
                          (0x10, "notify"), (0x20, "indicate"), (0x40, "authenticated-signed-writes"),
                          (0x80, "extended-properties"))
_UUID_LISTS: Final = (
    AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)


def bleak_uuid(value: UUID) -> str:
    """bleak's 128-bit lower-case text of a bumble UUID."""
    return str(uuid_lib.UUID(bytes=bytes(reversed(value.to_bytes(force_128=True)))))


class BumbleCentral:
    """The rig's Bluetooth dongle as a bumble central, on `loop`; scanners and clients of bleak share it."""

    def __init__(self, device: Device, loop: asyncio.AbstractEventLoop, *, thread: threading.Thread | None = None,
                 transport: Any = None) -> None:
        self.device = device
        self.loop = loop
        self._thread = thread  # set when the central runs its own loop (an HCI transport)
        self._transport = transport
        self._scanners: set[_BumbleScanner] = set()
        self._scanning = False
        device.on("advertisement", self._on_advertisement)

    @classmethod
    async def on_controller(cls, make_controller: Callable[[str], Any], loop: asyncio.AbstractEventLoop
                            ) -> BumbleCentral:
        """A dongle on the bumble controller `make_controller(name)` returns (e.g. one on a twin's LocalLink);
        run on that controller's loop."""
        number = next(_DONGLE_NUMBERS)
        address = f"F0:00:00:00:{number >> 8:02X}:{number & 0xFF:02X}"
        controller = make_controller(f"rig-dongle-{number}")
        device = Device(name="rig", address=Address(address), host=Host(controller, AsyncPipeSink(controller)))
        await device.power_on()
        return cls(device, loop)

    @classmethod
    def over_hci(cls, spec: str) -> BumbleCentral:
        """A dongle on a bumble HCI transport (`tcp-client:127.0.0.1:PORT`, `usb:0`, ...), on a loop of its own."""
        loop, thread = start_loop_thread(f"bumble-central:{spec}")

        async def build() -> BumbleCentral:
            from bumble.transport import open_transport

            transport = await open_transport(spec)
            device = Device.with_hci("rig", Address("F0:00:00:00:FF:01"), transport.source, transport.sink)
            await device.power_on()
            return cls(device, loop, thread=thread, transport=transport)

        try:
            return asyncio.run_coroutine_threadsafe(build(), loop).result(10.0)
        except Exception as exc:  # noqa: BLE001 - any transport failure: name the spec
            loop.call_soon_threadsafe(loop.stop)
            raise RigError(f"cannot open the BLE HCI transport {spec!r}: {type(exc).__name__}: {exc} (is the "
                           "served twin running?)") from None

    async def call(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run `coro` on the central's loop and await it from the caller's; a cancelled operation there (the
        connection went away under it) is a BleakError here."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
        except (asyncio.CancelledError, concurrent.futures.CancelledError):
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                future.cancel()
                raise
            raise BleakError("the operation was cancelled: the connection went away") from None

    async def close_on_loop(self) -> None:
        """Stop scanning and power off (on the central's loop)."""
        with contextlib.suppress(Exception):
            await self.device.power_off()
        if self._transport is not None:
            with contextlib.suppress(Exception):
                await self._transport.close()

    # ---- scanning (shared by every scanner of this dongle)

    async def add_scanner(self, scanner: _BumbleScanner) -> None:
        self._scanners.add(scanner)
        if not self._scanning:
            self._scanning = True
            await self.device.start_scanning(filter_duplicates=False)

    async def remove_scanner(self, scanner: _BumbleScanner) -> None:
        self._scanners.discard(scanner)
        if self._scanning and not self._scanners:
            self._scanning = False
            with contextlib.suppress(Exception):
                await self.device.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:  # on the central's loop
        data = advertisement.data
        name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(AdvertisingData.SHORTENED_LOCAL_NAME)
        uuids: list[str] = []
        for kind in _UUID_LISTS:
            for value in data.get_all(kind):
                uuids += [bleak_uuid(u) for u in (value if isinstance(value, list) else [value])]
        report = (str(advertisement.address).split("/")[0], name if isinstance(name, str) else None,
                  list(dict.fromkeys(uuids)), int(advertisement.rssi))
        for scanner in list(self._scanners):
            scanner.deliver(report)

    def backends(self) -> BleBackend:
        """bleak backend classes bound to this dongle, for `BleakClient(..., backend=...)` and `BleakScanner`."""
        client = type("TwinBleakClient", (_BumbleClient,), {"central": self})
        scanner = type("TwinBleakScanner", (_BumbleScanner,), {"central": self})
        return BleBackend(client=client, scanner=scanner, name="bumble")


# ------------------------------------------------------------------------------------ bleak's scanner


class _BumbleScanner(BaseBleakScanner):
    """bleak scanner backend: advertising reports of the bumble central."""

    central: ClassVar[BumbleCentral]

    def __init__(self, detection_callback: AdvertisementDataCallback | None, service_uuids: list[str] | None,
                 scanning_mode: str = "active", **kwargs: Any) -> None:
        super().__init__(detection_callback, service_uuids)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Start delivering advertising reports (to this scanner's loop)."""
        self.seen_devices = {}
        self._loop = asyncio.get_running_loop()
        await self.central.call(self.central.add_scanner(self))

    async def stop(self) -> None:
        """Stop delivering reports."""
        await self.central.call(self.central.remove_scanner(self))

    def deliver(self, report: tuple[str, str | None, list[str], int]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._heard, report)

    def _heard(self, report: tuple[str, str | None, list[str], int]) -> None:  # on bleak's loop
        address, name, uuids, rssi = report
        if not self.is_allowed_uuid(uuids):
            return
        advertisement = AdvertisementData(local_name=name, manufacturer_data={}, service_data={},
                                          service_uuids=uuids, tx_power=None, rssi=rssi, platform_data=())
        device = self.create_or_update_device(address, address, name, address, advertisement)
        self.call_detection_callbacks(device, advertisement)


# ------------------------------------------------------------------------------------ bleak's client


class _BumbleClient(BaseBleakClient):
    """bleak client backend: a connection of the bumble central, its GATT client, MTU and pairing."""

    central: ClassVar[BumbleCentral]

    def __init__(self, address_or_ble_device: BLEDevice | str, *,
                 disconnected_callback: Callable[[], None] | None = None, timeout: float = 10.0, **kwargs: Any) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout)
        self._name = address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._proxies: dict[int, CharacteristicProxy[bytes]] = {}
        self._mtu = 23
        self._asked_to_disconnect = False

    @property
    def name(self) -> str:
        """The advertised name (else the address)."""
        return self._name or self.address

    @property
    def mtu_size(self) -> int:
        """The negotiated ATT MTU, bytes."""
        return self._mtu

    @property
    def is_connected(self) -> bool:
        """True while the bumble connection is up."""
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect, pair when asked, exchange MTU (as BlueZ does), discover everything; fills `services`."""
        self._loop = asyncio.get_running_loop()
        layout = await self.central.call(self._connect(pair), self._timeout)
        self.services = self._collection(layout)

    async def _connect(self, pair: bool) -> list[Any]:  # on the central's loop
        connection = await self.central.device.connect(Address(self.address), timeout=self._timeout)
        self._connection = connection
        self._asked_to_disconnect = False
        connection.on("disconnection", self._on_disconnection)
        if pair:
            await connection.pair()
        peer = Peer(connection)
        self._peer = peer
        self._mtu = await peer.request_mtu(REQUESTED_MTU)
        layout: list[Any] = []
        for service in await peer.discover_services():
            chars = await peer.discover_characteristics(service=service)
            entries = []
            for char in chars:
                descriptors = await peer.discover_descriptors(char)
                self._proxies[char.handle] = char
                entries.append((char, [(d.handle, bleak_uuid(d.type)) for d in descriptors]))
            layout.append((service, entries))
        return layout

    def _collection(self, layout: list[Any]) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service, entries in layout:
            bleak_service = BleakGATTService(service, service.handle, bleak_uuid(service.uuid))
            collection.add_service(bleak_service)
            for char, descriptors in entries:
                names = [name for bit, name in _PROPERTY_NAMES if int(char.properties) & bit]
                bleak_char = BleakGATTCharacteristic(char, char.handle, bleak_uuid(char.uuid), names,  # type: ignore[arg-type]
                                                     lambda: self._mtu - 3, bleak_service)
                collection.add_characteristic(bleak_char)
                for handle, uuid in descriptors:
                    collection.add_descriptor(BleakGATTDescriptor(None, handle, uuid, bleak_char))
        return collection

    def _on_disconnection(self, *_: Any) -> None:  # on the central's loop
        self._connection = self._peer = None
        callback, loop = self._disconnected_callback, self._loop
        if not self._asked_to_disconnect and callback is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(callback)

    def _require(self) -> Peer:
        peer = self._peer
        if peer is None or self._connection is None:
            raise BleakError(f"not connected to {self.address}")
        return peer

    async def disconnect(self) -> None:
        """End the connection (no disconnected callback: it was asked for)."""
        connection = self._connection
        if connection is None:
            return
        self._asked_to_disconnect = True
        with contextlib.suppress(BleakError):
            await self.central.call(_disconnect(connection), 5.0)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair (LE Secure Connections, Just Works) on the current connection."""
        connection = self._connection
        if connection is None:
            raise BleakError(f"not connected to {self.address}")
        await self.central.call(connection.pair())

    async def unpair(self) -> None:
        """Forget the pairing (the virtual dongle keeps no bonds) and disconnect."""
        await self.disconnect()

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False,
                             **kwargs: Any) -> bytearray:
        """Read a characteristic's value."""
        return bytearray(await self._gatt(self._require().read_value(characteristic.handle)))

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False,
                                   **kwargs: Any) -> bytearray:
        """Read a descriptor's value."""
        return bytearray(await self._gatt(self._require().read_value(descriptor.handle)))

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: Any, response: bool) -> None:
        """Write (with response: a Write Request; else a Write Command)."""
        await self._gatt(self._require().write_value(characteristic.handle, bytes(data), with_response=response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        """Write a descriptor (with response)."""
        await self._gatt(self._require().write_value(descriptor.handle, bytes(data), with_response=True))

    async def start_notify(self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback,
                           **kwargs: Any) -> None:
        """Subscribe (CCCD write); every notification goes to `callback` on bleak's loop, in order."""
        peer = self._require()
        proxy = self._proxies.get(characteristic.handle)
        if proxy is None:
            raise BleakError(f"characteristic {characteristic.uuid} was not discovered")
        loop = self._loop
        assert loop is not None

        def forward(value: bytes) -> None:  # on the central's loop
            if not loop.is_closed():
                loop.call_soon_threadsafe(callback, bytearray(value))

        await self._gatt(peer.subscribe(proxy, forward))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Unsubscribe."""
        proxy = self._proxies.get(characteristic.handle)
        if proxy is not None:
            await self._gatt(self._require().unsubscribe(proxy))

    async def _gatt(self, coro: Coroutine[Any, Any, T]) -> T:
        """A GATT operation on the central's loop; an ATT error response is bleak's BleakGATTProtocolError."""
        async def guarded() -> T:
            try:
                return await coro
            except att.ATT_Error as exc:
                raise BleakGATTProtocolError(int(exc.error_code)) from None

        return await self.central.call(guarded(), self._timeout)


async def _disconnect(connection: Connection) -> None:
    with contextlib.suppress(Exception):
        await connection.disconnect()


# ------------------------------------------------------------------------------------ the one place


_REMOTE: dict[str, BumbleCentral] = {}
_REMOTE_LOCK = threading.Lock()


def backend_for(spec: str) -> BleBackend:
    """The bleak backend a bench file's `ble.backend` names: 'bleak' (the OS's stack), 'bumble:<HCI transport>'
    (a bumble central on that transport, one per transport and process, opened at first use). The embedded
    twin's 'twin-ble://N' is resolved by the rig, which asks the twin's air for its central."""
    if spec == "bleak":
        return BleBackend()
    if spec.startswith("bumble:"):
        return _LazyRemote(spec.removeprefix("bumble:")).backend()
    raise RigError(f"BLE backend {spec!r}: use 'bleak', 'twin' (resolved by the twin) or 'bumble:<HCI transport>'")


def remote_central(transport: str) -> BumbleCentral:
    """The process's bumble central on HCI `transport` (opened at the first call)."""
    with _REMOTE_LOCK:
        central = _REMOTE.get(transport)
        if central is None:
            central = _REMOTE[transport] = BumbleCentral.over_hci(transport)
        return central


class _LazyRemote:
    """Backend classes for an HCI transport that is opened only when bleak first scans or connects."""

    def __init__(self, transport: str) -> None:
        self.transport = transport

    def backend(self) -> BleBackend:
        transport = self.transport

        class _Central:
            def __get__(self, obj: Any, owner: Any) -> BumbleCentral:
                return remote_central(transport)

        client = type("HciBleakClient", (_BumbleClient,), {"central": _Central()})
        scanner = type("HciBleakScanner", (_BumbleScanner,), {"central": _Central()})
        return BleBackend(client=client, scanner=scanner, name=f"bumble:{transport}")
