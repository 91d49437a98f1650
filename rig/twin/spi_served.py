"""The twin's SPI buses for a rig in another process (`rig twin serve`): JSON lines over loopback TCP.

`SpiServer` runs in the twin; `RemoteSpiDev` (spidev's interface) and `RemoteCapture` (a capture
source) are what the bench builder hands the drivers for `twin+tcp://HOST:PORT/<position>` URLs.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from typing import Any

from drivers.errors import InstrumentError, InstrumentTimeout, NotOpenError, RigError, ValidationError
from rig.twin.spi_bus import ChipBus, TwinCapture, TwinSpiDev

URL_PREFIX = "twin+tcp://"


class _Handler(socketserver.StreamRequestHandler):
    server: SpiServer

    def handle(self) -> None:
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        devices: dict[int, TwinSpiDev] = {}
        for raw in self.rfile:
            try:
                reply: dict[str, Any] = {"ok": True, "result": self.server.call(json.loads(raw), devices)}
            except RigError as exc:
                reply = {"ok": False, "kind": type(exc).__name__, "error": str(exc)}
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                reply = {"ok": False, "kind": "ValidationError", "error": f"bad SPI request: {exc}"}
            self.wfile.write(json.dumps(reply).encode() + b"\n")
            self.wfile.flush()


class SpiServer(socketserver.ThreadingTCPServer):
    """Serves every position's chip bus on one loopback port."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, buses: list[ChipBus], port: int = 0) -> None:
        self.buses = buses
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def urls(self) -> list[str]:
        """One `twin+tcp://` URL per position."""
        return [f"{URL_PREFIX}127.0.0.1:{self.server_address[1]}/{i}" for i in range(len(self.buses))]

    def call(self, request: dict[str, Any], devices: dict[int, TwinSpiDev]) -> Any:
        """Run one request against a bus (each connection has its own spidev-like port per bus)."""
        index = int(request["bus"])
        if not 0 <= index < len(self.buses):
            raise ValidationError(f"no position {index} on this twin (it has {len(self.buses)})")
        bus = self.buses[index]
        op = request["op"]
        if op == "xfer2":
            device = devices.setdefault(index, TwinSpiDev(bus))
            device.open(0, 0)
            device.mode = int(request["mode"])
            device.max_speed_hz = int(request["speed_hz"])
            device.lsbfirst = bool(request["lsbfirst"])
            device.bits_per_word = int(request["bits_per_word"])
            return device.xfer2(list(request["data"]))
        if op == "begin":
            TwinCapture(bus).begin()
            return None
        if op == "end":
            return TwinCapture(bus).end().decode("ascii")
        raise ValidationError(f"unknown SPI operation {op!r}")

    def start(self) -> None:
        """Serve in a background thread."""
        threading.Thread(target=self.serve_forever, args=(0.05,), name="twin-spi", daemon=True).start()

    def stop(self) -> None:
        """Stop serving."""
        self.shutdown()
        self.server_close()


class _Client:
    def __init__(self, url: str, timeout_s: float) -> None:
        if not url.startswith(URL_PREFIX):
            raise ValidationError(f"{url!r} is not a {URL_PREFIX}HOST:PORT/<position> URL")
        address, _, index = url.removeprefix(URL_PREFIX).partition("/")
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not index.isdigit():
            raise ValidationError(f"{url!r} is not a {URL_PREFIX}HOST:PORT/<position> URL")
        self.url = url
        self._address = (host, int(port))
        self._index = int(index)
        self._timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._reader: Any = None

    def connect(self) -> None:
        if self._sock is None:
            try:
                self._sock = socket.create_connection(self._address, timeout=self._timeout_s)
            except OSError as exc:
                raise InstrumentTimeout(f"twin SPI bus {self.url}: {exc}") from None
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._reader = self._sock.makefile("rb")

    def call(self, op: str, **args: Any) -> Any:
        self.connect()
        assert self._sock is not None
        self._sock.sendall(json.dumps({"op": op, "bus": self._index, **args}).encode() + b"\n")
        line = self._reader.readline()
        if not line:
            raise InstrumentError(f"twin SPI bus {self.url} closed the connection")
        reply = json.loads(line)
        if not reply["ok"]:
            kind = ValidationError if reply.get("kind") == "ValidationError" else InstrumentError
            raise kind(f"twin SPI bus {self.url}: {reply['error']}")
        return reply["result"]

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class RemoteSpiDev:
    """spidev.SpiDev's interface to a served twin's chip."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self._client = _Client(url, timeout_s)
        self._open = False
        self.mode = 0
        self.max_speed_hz = 0
        self.bits_per_word = 8
        self.lsbfirst = False

    def open(self, bus: int, device: int) -> None:
        """Connect to the served bus (bus and device are the bench's numbers)."""
        self._client.connect()
        self._open = True

    def close(self) -> None:
        """Disconnect."""
        self._open = False
        self._client.close()

    def xfer2(self, values: list[int], speed_hz: int = 0, delay_usecs: int = 0, bits_per_word: int = 0) -> list[int]:
        """Full-duplex transfer with CS held for the whole list; returns the MISO bytes."""
        if not self._open:
            raise NotOpenError(f"twin SPI device {self._client.url} is not open: call open(bus, device) first")
        result = self._client.call("xfer2", data=list(values), mode=self.mode,
                                   speed_hz=speed_hz or self.max_speed_hz, lsbfirst=self.lsbfirst,
                                   bits_per_word=bits_per_word or self.bits_per_word)
        return [int(v) for v in result]

    def readbytes(self, length: int) -> list[int]:
        """Clock `length` bytes in (MOSI low)."""
        return self.xfer2([0] * length)

    def writebytes(self, values: list[int]) -> None:
        """Clock bytes out, ignoring MISO."""
        self.xfer2(values)


class RemoteCapture:
    """A served twin's SPI analyser as a capture source."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self._client = _Client(url, timeout_s)

    def begin(self) -> None:
        """Open the capture window now (the served twin's bench time)."""
        self._client.call("begin")

    def end(self) -> bytes:
        """The VCD capture of the window."""
        return str(self._client.call("end")).encode("ascii")

    def close(self) -> None:
        """Disconnect."""
        self._client.close()
