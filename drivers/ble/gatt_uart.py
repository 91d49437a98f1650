"""A meter's Bluetooth LE transparent-UART service as a byte stream (drivers layer), over bleak.

`BleUartPort` finds the meter by its advertised name or address, connects, discovers the service (a write
characteristic the host writes requests to, a notify characteristic the meter answers on), writes in pieces
that fit the negotiated ATT MTU, keeps the notified bytes in order for the reader, and reconnects (bounded)
when the link drops. It has the part of pyserial's interface the DL/T 645 link uses (`in_waiting`, `read`,
`write`, `apply_settings`, `close`), so the request/reply logic is the UART's (`drivers.dlt645.ble_link`).

One asyncio loop in a background thread per port runs bleak; the caller sees a synchronous interface. Time
limits that belong to the meter (finding its advertising) run in bench time on the injected clock; a call
into the OS's Bluetooth stack that hangs is cut off after a wall-time guard. The Bluetooth stack is bleak's
default (BlueZ on Linux) unless a `BleBackend` names custom bleak backend classes (the twin's, chosen in the
bench builder). Nothing opens at import; never imports the rig or pytest.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final, TypeVar

from drivers.ble.gatt_service import (
    ATT_DEFAULT_MTU,
    ATT_HEADER_BYTES,
    NOTIFY_PROPERTIES,
    WRITE_PROPERTIES,
    _Connection,
    _describe,
    check_characteristics,
)
from drivers.ble.loop_thread import start_loop_thread, stop_loop_thread
from drivers.ble.scan import not_found, scan_for_target
from drivers.ble.target import (
    Advertisement,
    BleBackend,
    BleTarget,
    GattServiceInfo,
    LinkStats,
)
from drivers.clock import Clock
from drivers.errors import InstrumentError, InstrumentTimeout, LinkError, NotOpenError, RigError, ValidationError

if TYPE_CHECKING:
    from bleak import BleakClient
    from bleak.backends.device import BLEDevice

__all__ = ["ATT_DEFAULT_MTU", "ATT_HEADER_BYTES", "NOTIFY_PROPERTIES", "POLL_WALL_S", "WALL_GUARD_S",
           "WRITE_PROPERTIES", "BleUartPort"]

T = TypeVar("T")

# A read waits this long (wall time) for bytes, as a pyserial port's read timeout does; and how often a wait for
# the meter's advertising looks.
POLL_WALL_S: Final = 0.01
# A call into the OS's Bluetooth stack that has not returned after this (wall) is a dead link.
WALL_GUARD_S: Final = 30.0


class _LinkDropped(LinkError):
    """The connection went away under a write (reconnecting may cure it)."""


# ------------------------------------------------------------------------------------ the port


class BleUartPort:
    """A meter's transparent-UART GATT service as a byte stream (pyserial's reading interface).

    `open()` starts the port's event loop; the meter is found and connected at the first `write` (or an
    explicit `connect()`) and again, up to `reconnect_attempts` times, when the link has dropped. Bytes the
    meter notifies are kept in order until read.
    """

    def __init__(self, target: BleTarget, clock: Clock, *, backend: BleBackend | None = None,
                 reconnect_attempts: int = 3, reconnect_backoff_s: float = 0.5,
                 read_timeout_s: float = POLL_WALL_S) -> None:
        if reconnect_attempts < 1 or reconnect_backoff_s < 0 or read_timeout_s < 0:
            raise ValidationError("reconnect_attempts must be >= 1, the backoff and read timeout >= 0")
        self.target = target
        self.backend = backend if backend is not None else BleBackend()
        self.reconnect_attempts = reconnect_attempts
        self.reconnect_backoff_s = reconnect_backoff_s
        self.stats = LinkStats()
        self.events: list[tuple[float, str]] = []  # (bench time, what happened to the link)
        self.advertisement: Advertisement | None = None  # the meter's last advertising heard
        self.seen: dict[str, Advertisement] = {}  # every device heard by the last scan, by address
        self._clock = clock
        self._read_timeout_s = read_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._conn: _Connection | None = None
        self._services: tuple[GattServiceInfo, ...] = ()
        self._payload: int | None = None  # bytes per notification allowed on the connection being set up
        self._rx = bytearray()
        self._cond = threading.Condition()
        self._disconnecting = False
        self._seen: list[str] = []  # what the loop saw happen, not yet stamped with bench time

    # ---- lifecycle

    @property
    def is_open(self) -> bool:
        """True between open() and close()."""
        return self._loop is not None

    def open(self) -> None:
        """Start the port's event loop (nothing is sent over the air yet); a second call is a no-op."""
        if self._loop is not None:
            return
        self._loop, self._thread = start_loop_thread(f"ble:{self.target.label}")

    def close(self) -> None:
        """Disconnect and stop the event loop; safe to call when closed."""
        loop, thread = self._loop, self._thread
        if loop is None:
            return
        with contextlib.suppress(RigError):
            self._disconnect()
        self._loop = self._thread = None
        stop_loop_thread(loop, thread)

    def _require(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise NotOpenError(f"BLE link {self.target.url} is not open: call open() first")
        return self._loop

    def _run(self, coro: Coroutine[Any, Any, T], what: str, guard_s: float = WALL_GUARD_S) -> T:
        """Run `coro` on the port's loop and wait for it; what bleak or the OS raise becomes a LinkError."""
        loop = self._require()
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(guard_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise LinkError(f"{self.target.url}: {what} did not complete within {guard_s:g} s (the Bluetooth "
                            "stack stopped answering)") from None
        except RigError:
            raise
        except Exception as exc:  # noqa: BLE001 - bleak and the OS stacks raise many types; name it and go on
            raise LinkError(f"{self.target.url}: {what} failed: {type(exc).__name__}: {exc}") from None

    def _note(self, text: str) -> None:
        """Record what happened to the link (caller's thread only: the clock may be a remote twin's, not
        thread-safe; what the loop saw waits in `_seen` and is stamped here)."""
        now = self._clock.now()
        seen, self._seen = self._seen, []
        for item in [*seen, text]:
            if len(self.events) < 10_000:
                self.events.append((now, item))

    # ---- what is known about the link

    @property
    def is_connected(self) -> bool:
        """True while connected with the service discovered and replies subscribed."""
        return self._conn is not None

    @property
    def services(self) -> tuple[GattServiceInfo, ...]:
        """The GATT services of the last connection (empty before the first)."""
        return self._services

    @property
    def mtu(self) -> int | None:
        """Negotiated ATT MTU of the current or last connection, bytes (None before the first)."""
        return self.stats.mtu

    @property
    def payload_size(self) -> int | None:
        """Bytes one write or one notification may carry now: negotiated ATT MTU - 3 (None before connecting)."""
        return None if self.stats.mtu is None else self.stats.mtu - ATT_HEADER_BYTES

    # ---- finding the meter

    def _wait(self, ready: Callable[[], bool], timeout_s: float) -> bool:
        """Wait for `ready()` up to `timeout_s` of bench time; the clock alone decides how that time passes (a
        twin's holds it while the advertising it has due has not been heard)."""
        return self._clock.wait_until(ready, timeout_s=timeout_s, poll_s=POLL_WALL_S)

    def scan(self) -> tuple[BLEDevice, Advertisement] | None:
        """Listen for the meter's advertising until heard or `scan_timeout_s` of bench time has passed."""
        return scan_for_target(self)

    def _not_found(self) -> str:
        return not_found(self.target, self.seen)

    # ---- connecting

    def connect(self) -> None:
        """Find the meter, connect (pairing first when the target asks), discover the transparent-UART service,
        check its characteristics and subscribe to the replies. InstrumentTimeout: not advertising;
        InstrumentError: service or characteristic missing; LinkError: the connection failed."""
        self._require()
        if self._conn is not None:
            return
        hit = self.scan()
        if hit is None:
            self.stats.failed_connects += 1
            raise InstrumentTimeout(f"{self.target.url}: {self._not_found()}")
        try:
            conn = self._run(self._connect(hit[0]), f"connecting to {hit[1].address}",
                             self.target.connect_timeout_s + WALL_GUARD_S)
        except RigError:
            self.stats.failed_connects += 1
            raise
        # Bytes notified while the subscription was set up stay: they are the meter's (an unasked reply shows
        # as stray bytes before the next request).
        self._conn = conn
        self.stats.connections += 1
        self.stats.mtu = conn.payload + ATT_HEADER_BYTES
        self._note(f"connected to {hit[1].address}, ATT MTU {self.stats.mtu}")

    async def _connect(self, device: BLEDevice) -> _Connection:
        from bleak import BleakClient

        target = self.target
        options: dict[str, Any] = {} if self.backend.client is None else {"backend": self.backend.client}
        client = BleakClient(device, disconnected_callback=self._on_disconnected, timeout=target.connect_timeout_s,
                             pair=target.pairing, **options)
        try:
            await client.connect()
        except (TimeoutError, OSError, EOFError) as exc:
            raise LinkError(f"{target.url}: cannot connect to {device.address}: {type(exc).__name__} {exc}") from None
        try:
            return await self._discover(client)
        except BaseException:
            self._disconnecting = True
            try:
                with contextlib.suppress(Exception):
                    await client.disconnect()
            finally:
                self._disconnecting = False
            raise

    async def _discover(self, client: BleakClient) -> _Connection:
        target = self.target
        collection = client.services
        self._services = _describe(collection)
        service = collection.get_service(target.service_uuid)
        if service is None:
            offered = ", ".join(s.uuid for s in self._services) or "none"
            raise InstrumentError(f"{target.url}: no GATT service {target.service_uuid} (the bench file's "
                                  f"ble.service_uuid, the transparent UART); the meter offers: {offered}")
        write_char = service.get_characteristic(target.write_uuid)
        notify_char = service.get_characteristic(target.notify_uuid)
        check_characteristics(target, write_char, notify_char)
        assert write_char is not None and notify_char is not None
        # BlueZ reports 23 for mtu_size but the real limit per characteristic; other stacks the negotiated MTU.
        payload = max(client.mtu_size - ATT_HEADER_BYTES, write_char.max_write_without_response_size,
                      ATT_DEFAULT_MTU - ATT_HEADER_BYTES)
        self._payload = payload
        await client.start_notify(notify_char, self._on_notification)
        return _Connection(client, write_char, "write" in write_char.properties, payload, self._services)

    def _on_disconnected(self, client: Any) -> None:  # on the port's loop
        conn = self._conn
        if self._disconnecting or conn is None or client is not conn.client:
            return  # asked for by the rig, or an earlier connection
        self._conn = None
        self.stats.drops += 1
        self._seen.append("link lost")  # stamped by the next note: the clock is not called from the loop

    def _on_notification(self, _char: Any, data: bytearray) -> None:  # on the port's loop
        size = len(data)
        self.stats.notifications += 1
        self.stats.largest_notification = max(self.stats.largest_notification, size)
        if self._payload is not None and size > self._payload:
            self.stats.oversized_notifications += 1
        with self._cond:
            self._rx += data
            self._cond.notify_all()

    def drop(self) -> None:
        """Lose the link as a radio does (the meter sees the connection end); the next write reconnects."""
        if self._conn is None:
            return
        self._disconnect()
        self.stats.drops += 1
        self._note("link dropped by the rig")

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None or self._loop is None:
            return
        self._disconnecting = True
        try:
            self._run(conn.client.disconnect(), "disconnecting")
        finally:
            self._disconnecting = False

    # ---- pyserial's interface (what the DL/T 645 link uses)

    @property
    def in_waiting(self) -> int:
        """Bytes notified and not yet read."""
        with self._cond:
            return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        """Up to `size` notified bytes; waits up to the read timeout (wall) when none are there.
        LinkError when none are there and the link has dropped since the last write."""
        with self._cond:
            if not self._rx:
                if self._loop is not None and self._conn is None and self.stats.connections:
                    raise LinkError(f"{self.target.url}: BLE link lost while waiting for the meter's reply")
                self._cond.wait(self._read_timeout_s)
            out = bytes(self._rx[:size])
            del self._rx[:size]
            return out

    def write(self, data: bytes) -> int:
        """Send `data` to the write characteristic in pieces of at most ATT MTU - 3 bytes; connect first (and
        reconnect, bounded, with a backoff in bench time) when the link is down."""
        self._require()
        problems: list[str] = []
        for attempt in range(1, self.reconnect_attempts + 1):
            if self._conn is None:
                if attempt > 1:
                    self._clock.sleep(self.reconnect_backoff_s * 2 ** (attempt - 2))
                try:
                    self.connect()
                except InstrumentTimeout as exc:
                    if not self.stats.connections:
                        raise  # never seen on this bench: the meter, not the link
                    problems.append(str(exc))
                    continue
                except LinkError as exc:
                    problems.append(str(exc))
                    continue
                if attempt > 1 or problems:
                    self._note(f"reconnected after {attempt} attempt(s)")
            conn = self._conn
            assert conn is not None
            try:
                self._run(self._write(conn, bytes(data)), "writing")
                return len(data)
            except _LinkDropped as exc:
                self._conn = None
                self.stats.drops += 1
                self._note("link lost under a write")
                problems.append(str(exc))
        raise LinkError(f"{self.target.url}: BLE link down; {self.reconnect_attempts} attempt(s) to reconnect and "
                        f"send failed (last: {problems[-1] if problems else 'unknown'})")

    async def _write(self, conn: _Connection, data: bytes) -> None:
        from bleak.exc import BleakError, BleakGATTProtocolError

        for start in range(0, len(data), conn.payload):
            piece = data[start:start + conn.payload]
            try:
                await conn.client.write_gatt_char(conn.write_char, piece, response=conn.with_response)
            except BleakGATTProtocolError as exc:
                hint = " (pair first: the bench file's ble.pairing)" if exc.code in (0x05, 0x0F) else ""
                raise InstrumentError(f"{self.target.url}: the meter refused the GATT write: "
                                      f"{exc.code.name}{hint}") from None
            except (BleakError, EOFError, OSError, TimeoutError) as exc:
                if not conn.client.is_connected:
                    raise _LinkDropped(f"{self.target.url}: link lost during a write: {exc}") from None
                raise LinkError(f"{self.target.url}: GATT write failed: {type(exc).__name__} {exc}") from None
            self.stats.writes += 1
            self.stats.largest_write = max(self.stats.largest_write, len(piece))

    def apply_settings(self, d: dict[str, Any]) -> None:
        """A BLE link has no baud rate or parity: nothing to apply."""

    # ---- pairing

    def write_without_pairing(self, data: bytes) -> str | None:
        """Connect once more without pairing and write `data` (the main link is dropped first: a meter takes
        one central at a time): the meter's refusal (ATT error name), or None when it took the write.
        On BlueZ remove an existing bond first, or the OS encrypts the link by itself."""
        self._require()
        self.drop()
        hit = self.scan()
        if hit is None:
            raise InstrumentTimeout(f"{self.target.url}: {self._not_found()}")
        return self._run(self._unpaired_write(hit[0], data), "an unpaired write",
                         self.target.connect_timeout_s + WALL_GUARD_S)

    async def _unpaired_write(self, device: BLEDevice, data: bytes) -> str | None:
        from bleak import BleakClient
        from bleak.exc import BleakGATTProtocolError

        options: dict[str, Any] = {} if self.backend.client is None else {"backend": self.backend.client}
        client = BleakClient(device, timeout=self.target.connect_timeout_s, pair=False, **options)
        self._disconnecting = True
        try:
            await client.connect()
            char = client.services.get_characteristic(self.target.write_uuid)
            if char is None:
                raise InstrumentError(f"{self.target.url}: no characteristic {self.target.write_uuid} to write")
            try:
                await client.write_gatt_char(char, data, response=True)
            except BleakGATTProtocolError as exc:
                return exc.code.name
            return None
        finally:
            with contextlib.suppress(Exception):
                await client.disconnect()
            self._disconnecting = False
