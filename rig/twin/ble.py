"""The twin's Bluetooth LE air: every meter's BLE module (rig.twin.ble_module) on bumble virtual controllers
sharing a bumble LocalLink, on one asyncio loop in a background thread. No kernel HCI, no hardware.

The rig reaches it through bleak with the backend classes of `drivers.ble.bumble_central` (a bumble central
on the same air), or from another process through an HCI controller served on loopback TCP.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from drivers.ble.loop_thread import start_loop_thread, stop_loop_thread
from rig.config import BleConfig, BleKnobs
from rig.twin.ble_module import ADVERTISING_DUE_WALL_S, WALL_GUARD_S, MeterBle, scanning_controller

if TYPE_CHECKING:  # bumble is imported when an air is built, not with the twin (it takes half a second)
    from bumble.link import LocalLink

    from drivers.ble.bumble_central import BumbleCentral
    from rig.twin.faults import FaultSchedule
    from rig.twin.management import ManagementModule

T = TypeVar("T")

# ------------------------------------------------------------------------------------ the air


_AIRS: dict[str, Air] = {}
_AIR_NUMBERS = itertools.count(1)
_AIRS_LOCK = threading.Lock()


class Air:
    """The twin's radio: a bumble LocalLink and every virtual controller on it (the meters' modules, the rig's
    dongle, an HCI controller served to another process), all driven by one asyncio loop in a thread."""

    def __init__(self) -> None:
        from bumble.link import LocalLink

        self.link: LocalLink = LocalLink()  # type: ignore[no-untyped-call]
        self.meters: list[MeterBle] = []
        self.url = ""  # twin-ble://N once started: what Twin.resolve puts in the bench file
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._central: BumbleCentral | None = None
        self._hci_spec: str | None = None
        self._hci_server: Any = None

    def advertising_due(self) -> bool:
        """True while a controller of the rig's on the air scans, started less than ADVERTISING_DUE_WALL_S ago,
        and a meter advertises: a report is due that the air's loop (wall time) may not have delivered yet. A
        scan stops once it heard what it looked for, so a found meter releases the clock at once."""
        if not any(m.device is not None for m in self.meters):
            return False
        now = time.monotonic()
        for controller in list(self.link.controllers):
            started = getattr(controller, "scan_started_wall", None)
            if controller.le_scan_enable and started is not None and now - started < ADVERTISING_DUE_WALL_S:
                return True
        return False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The air's event loop (started)."""
        if self._loop is None:
            raise RuntimeError("the twin's air is not started")
        return self._loop

    def start(self) -> None:
        """Start the loop and power every meter's module; register the air under twin-ble://N."""
        self._loop, self._thread = start_loop_thread("twin-air")
        for meter in self.meters:
            self.run(meter.start(self.link))
        if self.meters:
            self.meters[0].management.world.add_pending(self.advertising_due, server_thread=self._thread.ident)
        with _AIRS_LOCK:
            self.url = f"twin-ble://{next(_AIR_NUMBERS)}"
            _AIRS[self.url] = self

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = WALL_GUARD_S) -> T:
        """Run `coro` on the air's loop from another thread and wait for it."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def central(self) -> BumbleCentral:
        """The rig's dongle on this air (a bumble central on its own virtual controller), made on first use."""
        from drivers.ble.bumble_central import BumbleCentral

        if self._central is None:
            link = self.link
            self._central = self.run(BumbleCentral.on_controller(
                lambda name: scanning_controller(name, link=link), self.loop))
        return self._central

    def serve_hci(self) -> str:
        """An HCI controller on this air, served on loopback TCP for a rig in another process; returns the
        bumble transport spec that reaches it (`tcp-client:127.0.0.1:PORT`). One host at a time."""
        if self._hci_spec is None:
            self._hci_spec = self.run(self._serve_hci())
        return self._hci_spec

    async def _serve_hci(self) -> str:
        from bumble.transport.tcp_server import open_tcp_server_transport_with_socket

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        transport = await open_tcp_server_transport_with_socket(sock)
        scanning_controller("rig-dongle-hci", host_source=transport.source, host_sink=transport.sink, link=self.link)
        self._hci_server = transport
        return f"tcp-client:127.0.0.1:{port}"

    def stop(self) -> None:
        """Power everything off and stop the loop."""
        with _AIRS_LOCK:
            _AIRS.pop(self.url, None)
        loop = self._loop
        if loop is None:
            return
        if self.meters:
            world = self.meters[0].management.world
            world.remove_pending(self.advertising_due, server_thread=self._thread.ident if self._thread else None)
        with contextlib.suppress(Exception):
            self.run(self._shutdown(), 5.0)
        thread, self._loop, self._thread = self._thread, None, None
        stop_loop_thread(loop, thread)
        self.link = type(self.link)()  # a restart powers every module again on a fresh air
        self._central, self._hci_spec, self._hci_server = None, None, None

    async def _shutdown(self) -> None:
        for meter in self.meters:
            await meter.stop()
        if self._central is not None:
            await self._central.close_on_loop()
        if self._hci_server is not None:
            with contextlib.suppress(Exception):
                await self._hci_server.close()


def air_for(url: str) -> Air | None:
    """The started air registered under twin-ble://N (None: no such twin in this process)."""
    with _AIRS_LOCK:
        return _AIRS.get(url)


# ------------------------------------------------------------------------------------ the twin's runtime


def build_air(positions: list[tuple[int, BleConfig | None, ManagementModule, BleKnobs]],
              faults: FaultSchedule | None = None) -> Air | None:
    """The air with a BLE module for every position whose bench entry says `ble: {backend: twin}` (None: none
    does). `positions`: (index, its ble config, its management module, its BLE knobs)."""
    from rig.config import TWIN_RESOURCE

    air = Air()
    for index, config, management, knobs in positions:
        if config is not None and config.backend == TWIN_RESOURCE:
            air.meters.append(MeterBle(management, knobs, config, index, faults))
    addresses = [m.address for m in air.meters]
    duplicates = sorted({a for a in addresses if addresses.count(a) > 1})
    if duplicates:
        raise ValueError(f"positions: BLE address repeated on the twin: {', '.join(duplicates)}")
    return air if air.meters else None


def resolve_ble(positions: list[dict[str, Any]], air: Air, *, served: bool) -> None:
    """Point every `ble.backend: twin` of a bench document at `air`: its twin-ble://N in this process, or (served)
    the HCI controller a rig in another process opens with bumble (`bumble:tcp-client:127.0.0.1:PORT`)."""
    from rig.config import TWIN_RESOURCE

    for position in positions:
        ble = position.get("ble")
        if ble and ble.get("backend") == TWIN_RESOURCE:
            ble["backend"] = f"bumble:{air.serve_hci()}" if served else air.url
