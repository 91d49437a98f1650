"""Finding a meter's Bluetooth LE advertising (drivers layer): a scan in bench time through bleak's scanner
(the backend the port was given), and the message that says what was heard when the meter was not."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from drivers.ble.target import Advertisement, BleTarget
from drivers.errors import RigError

if TYPE_CHECKING:
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData

    from drivers.ble.gatt_uart import BleUartPort


def scan_for_target(port: BleUartPort) -> tuple[BLEDevice, Advertisement] | None:
    """Listen for `port`'s meter until heard or its `scan_timeout_s` of bench time has passed; every device
    heard goes to `port.seen`, the meter's advertising to `port.advertisement`."""
    found = threading.Event()
    hits: list[tuple[BLEDevice, Advertisement]] = []
    port.seen = {}
    clock = port._clock
    started = clock.now()

    def heard(device: BLEDevice, data: AdvertisementData) -> None:  # on the port's loop: no clock here
        uuids = tuple(dict.fromkeys(u.lower() for u in data.service_uuids))
        adv = Advertisement(device.address, data.local_name, uuids, int(data.rssi), started)
        port.seen[device.address] = adv
        if not hits and port.target.matches(device.address, data.local_name):
            hits.append((device, adv))
            found.set()

    scanner = port._run(_start_scanner(port.backend.scanner, heard), "starting a scan")
    try:
        port._wait(found.is_set, port.target.scan_timeout_s)
    finally:
        with contextlib.suppress(RigError):
            port._run(scanner.stop(), "stopping the scan")
    if not hits:
        return None
    device, adv = hits[0]
    port.advertisement = adv = dataclasses.replace(adv, seen_at_s=clock.now())
    return device, adv


async def _start_scanner(backend: Any, callback: Callable[[BLEDevice, AdvertisementData], None]) -> Any:
    from bleak import BleakScanner

    options: dict[str, Any] = {} if backend is None else {"backend": backend}
    scanner = BleakScanner(detection_callback=callback, **options)
    await scanner.start()
    return scanner


def not_found(target: BleTarget, seen: dict[str, Advertisement]) -> str:
    """Why a scan found no meter, naming every device it did hear."""
    others = ", ".join(sorted(f"{a.local_name or '?'} ({a.address})" for a in seen.values())) or "none"
    return (f"no BLE device {target.label} advertised within {target.scan_timeout_s:g} s of bench time "
            f"(devices heard: {others}); is the meter powered and in range, and the name/address in the bench "
            "file right?")
