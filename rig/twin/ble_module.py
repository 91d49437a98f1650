"""One twin meter's Bluetooth LE module (twin side): a transparent-UART GATT server in front of the management MCU
on a bumble virtual controller. Written from the meter's side, independently of the rig's BLE link: it advertises
its name and service, serves the write and notify characteristics, hands complete DL/T 645 (and DL/T 698.45)
frames to the management module (`ManagementModule.respond`, the same firmware the RS-485 port serves) and
notifies the reply in pieces of the negotiated ATT MTU; its defect knobs are `twin.meter.ble.*`. The air the
modules share is rig.twin.ble.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

from drivers.dlt645 import BadFrame, Dlt645Frame
from rig.config import BleConfig, BleKnobs, ble_uuid
from rig.twin.dlt698.codec import Bad698Frame, Dlt698Frame
from rig.twin.dlt698.demux import DualFrameReader

if TYPE_CHECKING:  # bumble is imported when an air is built, not with the twin (it takes half a second)
    from bumble import gatt
    from bumble.controller import Controller
    from bumble.core import UUID
    from bumble.device import Connection, Device
    from bumble.link import LocalLink

    from rig.twin.faults import FaultSchedule
    from rig.twin.management import ManagementModule

T = TypeVar("T")

# The module of a typical meter (a CC2541/HM-10-class transparent UART): it keeps the minimum ATT MTU, so
# every DL/T 645 reply longer than 20 bytes goes out in several notifications.
MODULE_ATT_MTU: Final = 23
ADVERTISING_INTERVAL_MS: Final = 20.0  # the shortest legal interval: a scan finds the meter at once
# Bench time a GATT write takes on the air: one connection event (7.5 ms, the shortest interval).
CONNECTION_EVENT_S: Final = 0.0075
# The service a module with `wrong_service_uuid` puts its characteristics under: another vendor's layout.
OTHER_SERVICE_UUIDS: Final = ("0000ffe0-0000-1000-8000-00805f9b34fb", "0000fee0-0000-1000-8000-00805f9b34fb")
_BASE_SUFFIX: Final = "-0000-1000-8000-00805f9b34fb"
WALL_GUARD_S: Final = 10.0
# A scan on the air hears an advertising meter within a few advertising intervals of wall time (the air's loop
# runs in wall time); for this long after a scan starts the twin's clock holds bench time, as a report is due.
ADVERTISING_DUE_WALL_S: Final = 1.0


def bumble_uuid(text: str) -> UUID:
    """A bumble UUID from bleak's 128-bit text: 16-bit form for UUIDs on the Bluetooth base, as a module sends."""
    from bumble.core import UUID

    value = ble_uuid(text)
    if value.endswith(_BASE_SUFFIX) and value.startswith("0000"):
        return UUID.from_16_bits(int(value[4:8], 16))
    return UUID(value)


def twin_ble_address(meter_address: str) -> str:
    """A static random device address for a meter the bench file gives no BLE address (C0:... from its number)."""
    digits = meter_address[-10:]
    return "C0:" + ":".join(digits[i:i + 2] for i in range(0, 10, 2))


def scanning_controller(name: str, **options: Any) -> Controller:
    """A bumble controller for the rig's side of the air that notes when each scan starts (wall time), so the
    twin's clock can hold bench time while an advertising report is due (`Air.advertising_due`)."""
    from bumble.controller import Controller

    class _ScanningController(Controller):
        scan_started_wall: float | None = None
        _scan_enable = False

        @property
        def le_scan_enable(self) -> bool:
            return self._scan_enable

        @le_scan_enable.setter
        def le_scan_enable(self, value: bool) -> None:
            if value and not self._scan_enable:
                self.scan_started_wall = time.monotonic()
            self._scan_enable = bool(value)

    return _ScanningController(name, **options)


def _host_device(controller: Controller, name: str, address: str) -> Device:
    from bumble.device import Device
    from bumble.hci import Address
    from bumble.host import Host
    from bumble.transport.common import AsyncPipeSink

    return Device(name=name, address=Address(address), host=Host(controller, AsyncPipeSink(controller)))


# ------------------------------------------------------------------------------------ one meter's module


@dataclass
class MeterBle:
    """One meter's BLE module: advertising, the transparent-UART GATT service, and the bridge to the MCU."""

    management: ManagementModule
    knobs: BleKnobs
    config: BleConfig
    index: int
    faults: FaultSchedule | None = None
    notifications_sent: int = 0
    requests_heard: int = 0
    connections: int = 0
    device: Device | None = field(default=None, init=False)
    _notify_char: gatt.Characteristic[bytes] | None = field(default=None, init=False)
    # The MCU's UART task behind the module: DL/T 645 and DL/T 698.45 frames on the one transparent UART.
    _reader: DualFrameReader = field(default_factory=DualFrameReader, init=False)
    _last_request: Dlt645Frame | Dlt698Frame | None = field(default=None, init=False)
    _fresh_connection: bool = field(default=False, init=False)  # connected, nothing written yet

    @property
    def address(self) -> str:
        """The module's device address (the bench file's, else one derived from the meter's number)."""
        return self.config.address or twin_ble_address(self.management.address)

    @property
    def name(self) -> str:
        """The advertised local name (the bench file's, else DLT645-<meter address>)."""
        return self.config.name or f"DLT645-{self.management.address}"

    @property
    def service_uuid(self) -> str:
        """The service its characteristics sit under (another one with `wrong_service_uuid`)."""
        if not self.knobs.wrong_service_uuid:
            return self.config.service_uuid
        return next(u for u in OTHER_SERVICE_UUIDS if u != self.config.service_uuid)

    async def start(self, link: LocalLink) -> None:
        """Power the module on the air: GATT server, advertising (restarted after every disconnection)."""
        from bumble import gatt
        from bumble.controller import Controller
        from bumble.core import AdvertisingData

        controller = Controller(f"meter-{self.index + 1}", link=link)
        device = _host_device(controller, self.name, self.address)
        props = gatt.Characteristic.Properties
        writes = props.WRITE | props.WRITE_WITHOUT_RESPONSE
        permissions = gatt.Characteristic.WRITEABLE
        if self.config.pairing:
            permissions |= gatt.Characteristic.WRITE_REQUIRES_ENCRYPTION
        value: Any = gatt.CharacteristicValue(write=self._on_write)
        write: gatt.Characteristic[bytes]
        notify: gatt.Characteristic[bytes]
        if self.config.write_uuid == self.config.notify_uuid:  # one characteristic both ways (HM-10 style)
            write = notify = gatt.Characteristic(bumble_uuid(self.config.write_uuid), writes | props.NOTIFY,
                                                 permissions, value)
        else:
            write = gatt.Characteristic(bumble_uuid(self.config.write_uuid), writes, permissions, value)
            notify = gatt.Characteristic(bumble_uuid(self.config.notify_uuid), props.NOTIFY,
                                         gatt.Characteristic.READABLE, b"")
        notify.on("subscription", self._on_subscription)
        chars = [write] if notify is write else [write, notify]
        device.add_service(gatt.Service(bumble_uuid(self.service_uuid), chars))
        device.gatt_server.max_mtu = MODULE_ATT_MTU
        device.on("connection", self._on_connection)
        await device.power_on()
        service = bumble_uuid(self.service_uuid)
        kind = (AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS if len(service.to_bytes()) == 2
                else AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS)
        device.advertising_data = bytes(AdvertisingData([
            (AdvertisingData.FLAGS, bytes([AdvertisingData.LE_GENERAL_DISCOVERABLE_MODE_FLAG
                                           | AdvertisingData.BR_EDR_NOT_SUPPORTED_FLAG])),
            (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()),
            (kind, service.to_bytes()),
        ]))
        await device.start_advertising(auto_restart=True, advertising_interval_min=ADVERTISING_INTERVAL_MS,
                                       advertising_interval_max=ADVERTISING_INTERVAL_MS)
        self.device, self._notify_char = device, notify

    async def stop(self) -> None:
        """Power the module off."""
        device, self.device = self.device, None
        if device is not None:
            with contextlib.suppress(Exception):
                await device.power_off()

    # ---- the link

    def _dropped(self) -> bool:
        return self.faults is not None and self.faults.ble_link_dropped(str(self.index))

    def _lose(self, connection: Connection) -> None:
        """The radio link goes (bench fault ble_drop): the connection ends, what was under way is lost."""
        self._reader = DualFrameReader()
        asyncio.get_running_loop().create_task(self._disconnect(connection))

    @staticmethod
    async def _disconnect(connection: Connection) -> None:
        with contextlib.suppress(Exception):
            await connection.disconnect()

    def _on_connection(self, connection: Connection) -> None:
        self.connections += 1
        self._fresh_connection = True
        connection.on("disconnection", lambda *_: self._on_disconnection())
        if self._dropped():
            self._lose(connection)

    def _on_disconnection(self) -> None:
        # A sound module clears its receive buffer with the link; the defective one keeps the last request.
        self._reader = DualFrameReader()
        if not self.knobs.duplicate_on_reconnect:
            self._last_request = None

    def _on_subscription(self, connection: Connection, notify_enabled: bool, indicate_enabled: bool) -> None:
        fresh, self._fresh_connection = self._fresh_connection, False
        last = self._last_request
        if fresh and notify_enabled and last is not None and self.knobs.duplicate_on_reconnect:
            self._serve(connection, last)  # the MCU gets the previous connection's last request a second time

    def _on_write(self, connection: Connection, value: bytes) -> None:
        """Bytes from the rig: the module passes complete frames to the MCU and notifies its replies."""
        if self._dropped():
            self._lose(connection)
            return
        world = self.management.world
        with world.lock:
            world.advance(CONNECTION_EVENT_S)
            for item in self._reader.feed(bytes(value)):
                if isinstance(item, (BadFrame, Bad698Frame)):
                    continue  # a garbled request gets no reply, as on the UART
                self.requests_heard += 1
                self._last_request = item
                self._fresh_connection = False
                self._serve(connection, item)

    def _serve(self, connection: Connection, frame: Dlt645Frame | Dlt698Frame) -> None:
        """The MCU answers `frame` (if powered and addressed) after its reply delay; the module notifies it."""
        management = self.management
        world = management.world
        with world.lock:
            if not management.answering(world.time_s):
                return
            result = management.respond(frame, world.time_s)
            if result is None:
                return
            reply, after = result
            world.advance(management.reply_delay_s())
            self._notify(connection, management.encode_reply(reply))
            if after is not None:
                after()

    def _notify(self, connection: Connection, raw: bytes) -> None:
        """The reply in notifications of at most ATT MTU - 3 bytes (the knobs break that), sent at once and in
        order, before the write that carried the request is acknowledged."""
        from bumble import att

        device, char = self.device, self._notify_char
        if device is None or char is None:
            return
        size = max(1, connection.att_mtu - 3)
        pieces = [raw] if self.knobs.ignores_mtu else [raw[i:i + size] for i in range(0, len(raw), size)]
        if self.knobs.drops_notifications and len(pieces) > 1:
            del pieces[1]  # its TX buffer overruns: the second piece never goes out
        for piece in pieces:
            pdu = att.ATT_Handle_Value_Notification(attribute_handle=char.handle, attribute_value=piece)
            device.gatt_server.send_gatt_pdu(connection, bytes(pdu))
            self.notifications_sent += 1


