"""A read-only tap of a UART line between two devices (drivers layer): decodes every DL/T 645 frame on it.
Imports nothing above the drivers layer."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

from drivers.clock import Clock
from drivers.dlt645.frame import Dlt645Frame
from drivers.dlt645.port import TAP_QUIET_READS, PortFactory, TrafficHook, open_serial_port
from drivers.dlt645.reader import BadFrame, FrameReader
from drivers.errors import InstrumentError, NotOpenError
from drivers.serial_transport import LineSettings, SerialPort


@dataclass(frozen=True)
class TapFrame:
    """A frame (or malformed frame) heard on a tapped line, with the bench time it was read (an upper
    bound of when it was sent: a UART adapter buffers)."""

    at_s: float
    frame: Dlt645Frame | BadFrame


@dataclass
class UartTap:
    """A read-only UART adapter on a line between two devices (e.g. management and expansion module):
    decodes every frame on it. Both directions arrive on one port, as a dual-input sniffer gives them."""

    url: str
    clock: Clock
    line: LineSettings = field(default_factory=lambda: LineSettings(baud=9600))
    port_factory: PortFactory = open_serial_port
    traffic: TrafficHook | None = None
    _port: SerialPort | None = field(default=None, init=False, repr=False)
    _reader: FrameReader = field(default_factory=FrameReader, init=False, repr=False)

    @property
    def is_open(self) -> bool:
        """True between open() and close()."""
        return self._port is not None

    @property
    def noise_bytes(self) -> int:
        """Bytes heard outside any frame since the tap was opened (FE wake-up bytes excluded)."""
        return self._reader.discarded

    def open(self) -> None:
        """Open the adapter's port; a second call is a no-op."""
        if self._port is None:
            self._port = self.port_factory(self.url, self.line)
            self._reader = FrameReader()

    def close(self) -> None:
        """Close the port; safe to call when closed."""
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(Exception):
                port.close()

    def read(self) -> list[TapFrame]:
        """Every frame completed by the bytes that arrived since the last read (waits until the line has
        been quiet for a moment, so a frame in flight is not cut)."""
        port = self._port
        if port is None:
            raise NotOpenError(f"UART tap {self.url} is not open: call open() first")
        out: list[TapFrame] = []
        quiet = 0
        wall_limit = time.monotonic() + 5.0  # a line that never goes quiet still returns
        while quiet < TAP_QUIET_READS and time.monotonic() < wall_limit:
            try:
                data = port.read(max(1, port.in_waiting))
            except Exception as exc:  # noqa: BLE001
                raise InstrumentError(f"UART tap {self.url}: reading failed: {exc}") from None
            if not data:
                quiet += 1
                continue
            quiet = 0
            if self.traffic is not None:
                self.traffic(self.url, "<", data)
            now = self.clock.now()
            out += [TapFrame(now, item) for item in self._reader.feed(data)]
        return out
