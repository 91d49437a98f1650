"""Serial ports of the twin: RFC 2217 over loopback TCP (carries baud, parity, data and stop bits, so a
host with the wrong line settings gets what a wire gives it: garbage) and a pty (Linux drops parity on
a pty without an error: only the baud reaches the twin there).

Twin side (`rig.twin`): moves bytes between a host's pyserial port and a device of the twin; knows
nothing of DL/T 645. A device's `receive` runs in the port's thread; `send` may be called from any
thread (a tap emits while the World advances) and never blocks: bytes a host does not take are kept up
to a limit, then dropped and counted, as a UART adapter overruns.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import select
import socket
import termios
import tty
from typing import TYPE_CHECKING, Any, Final

import serial.rfc2217 as rfc2217

from rig.twin.serial_base import (
    SELECT_S,
    TWIN_SERIAL,
    TWIN_SERIAL_PTY,
    TWIN_SERIALS,
    HostUart,
    Line,
    Outbox,
    PortBase,
    SerialDevice,
    garble,
)

__all__ = [
    "TWIN_SERIAL",
    "TWIN_SERIALS",
    "TWIN_SERIAL_PTY",
    "Line",
    "PtyPort",
    "Rfc2217Port",
    "SerialDevice",
    "SerialPortServer",
    "serve_port",
]

if TYPE_CHECKING:
    from rig.twin.faults import FaultSchedule

class _Rfc2217Client:
    """One host connection: telnet/RFC 2217 state, the host's UART settings, and its outbox."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.host = HostUart()
        self.outbox = Outbox(sock.send)
        self.manager = rfc2217.PortManager(self.host, self)

    def write(self, data: bytes) -> None:
        """Telnet negotiation and escaped data to the host (what `PortManager` calls)."""
        self.outbox.put(data)

    def send_data(self, data: bytes) -> None:
        """Serial data to the host (IAC escaped)."""
        self.outbox.put(b"".join(self.manager.escape(data)))


class Rfc2217Port(PortBase):
    """A serial port served over RFC 2217 on loopback TCP: `rfc2217://127.0.0.1:PORT`.

    One host at a time, as a serial port: a new connection replaces the previous one.
    """

    def __init__(self, device: SerialDevice | None, *, line: Line, name: str, rng: random.Random,
                 faults: FaultSchedule | None = None, target: str = "") -> None:
        super().__init__(device, line, name, rng, faults, target)
        self._listener: socket.socket | None = self._listen(0)
        self._port_number = int(self._listener.getsockname()[1])
        self._client: _Rfc2217Client | None = None

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("127.0.0.1", port))
            listener.listen(4)
        except OSError:
            listener.close()
            raise
        return listener

    @property
    def url(self) -> str:
        """The pyserial URL that reaches it."""
        return f"rfc2217://127.0.0.1:{self._port_number}"

    def _vanish(self) -> None:
        """The adapter is unplugged (bench fault serial_vanish): the host's connection and the port go away."""
        if self._client is not None:
            self._drop(self._client)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _reappear(self) -> None:
        """The adapter is back, at the same URL."""
        with contextlib.suppress(OSError):  # the port is not free yet: try again at the next turn
            self._listener = self._listen(self._port_number)

    def host_line(self) -> Line | None:
        """The connected host's settings (None: nobody connected)."""
        client = self._client
        return client.host.line() if client is not None else None

    def send(self, data: bytes, host: Line | None = None) -> None:
        """Bytes to the connected host (dropped when nobody is connected)."""
        client = self._client
        if client is None:
            return
        host = host if host is not None else client.host.line()
        data = self._on_line(data)
        if data:
            client.send_data(data if self._matches(host) else garble(data, self._rng))

    def _send_raw(self, data: bytes) -> None:
        client = self._client
        if client is not None:
            client.send_data(data)

    def _serve(self) -> None:
        while not self._stop.is_set():
            if self.faults is not None and self.faults.vanished(self.target):
                self._vanish()
                self._stop.wait(SELECT_S)
                continue
            if self._listener is None:
                self._reappear()
                if self._listener is None:
                    self._stop.wait(SELECT_S)
                    continue
            sockets: list[Any] = [self._listener]
            writers: list[Any] = []
            client = self._client
            if client is not None:
                sockets.append(client.sock)
                if client.outbox.waiting:
                    writers.append(client.sock)
            try:
                readable, writable, _ = select.select(sockets, writers, [], SELECT_S)
            except (OSError, ValueError):
                if client is not None:
                    self._drop(client)
                continue
            if client is not None and client.sock in writable:
                client.outbox.flush()
            if self._listener in readable:
                self._accept()
            if client is not None and client.sock in readable:
                self._read(client)
        if self._client is not None:
            self._drop(self._client)
        if self._listener is not None:
            self._listener.close()

    def _accept(self) -> None:
        if self._listener is None:
            return
        try:
            sock, _ = self._listener.accept()
        except OSError:
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else every reply waits ~40 ms
        sock.setblocking(False)
        if self._client is not None:
            self._drop(self._client)
        self._client = _Rfc2217Client(sock)

    def _input_waiting(self) -> bool:
        client, listener = self._client, self._listener
        sockets = [s for s in (client.sock if client is not None else None, listener) if s is not None]
        try:
            return bool(sockets) and bool(select.select(sockets, [], [], 0)[0])
        except (OSError, ValueError):
            return False  # closed under us: nothing to answer

    def _read(self, client: _Rfc2217Client) -> None:
        self._handling = True
        try:
            try:
                raw = client.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                raw = b""
            if not raw:
                self._drop(client)
                return
            data = b"".join(client.manager.filter(raw))
            if data:
                self._deliver(data, client.host.line())
        finally:
            self._handled()

    def _drop(self, client: _Rfc2217Client) -> None:
        if self._client is client:
            self._client = None
        with contextlib.suppress(OSError):
            client.sock.close()


# termios speed constants -> bit/s, for the ones a meter uses
_SPEEDS: Final = {getattr(termios, f"B{baud}"): baud for baud in (300, 600, 1200, 2400, 4800, 9600, 19200, 38400,
                                                                   57600, 115200) if hasattr(termios, f"B{baud}")}


class PtyPort(PortBase):
    """A serial port served on a pseudo-terminal: the host opens `url` (/dev/pts/N) as a device.

    Only the baud rate reaches the twin: Linux forces 8 data bits and drops parity on a pty silently,
    so a parity mismatch cannot be seen here (use RFC 2217 for that).
    """

    def __init__(self, device: SerialDevice | None, *, line: Line, name: str, rng: random.Random,
                 faults: FaultSchedule | None = None, target: str = "") -> None:
        super().__init__(device, line, name, rng, faults, target)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing before the host configures it
        os.set_blocking(self._master, False)
        self._path = os.ttyname(self._slave)
        self._outbox = Outbox(lambda data: os.write(self._master, data))

    @property
    def url(self) -> str:
        """The device path the host opens."""
        return self._path

    def host_line(self) -> Line:
        """The host's settings as far as a pty has them: the baud; data bits, parity, stop bits assumed."""
        attrs = termios.tcgetattr(self._slave)
        baud = _SPEEDS.get(attrs[4], 0)
        own = self.line
        return Line(baud, own.bytesize, own.parity, own.stopbits)

    def send(self, data: bytes, host: Line | None = None) -> None:
        """Bytes to the host."""
        host = host if host is not None else self.host_line()
        data = self._on_line(data)
        if data:
            self._outbox.put(data if self._matches(host) else garble(data, self._rng))

    def _send_raw(self, data: bytes) -> None:
        if self.faults is None or not self.faults.vanished(self.target):  # nothing crosses a 'vanished' pty
            self._outbox.put(data)

    def _input_waiting(self) -> bool:
        waiting = bytearray(4)
        try:
            fcntl.ioctl(self._master, termios.FIONREAD, waiting)
        except OSError:
            return False
        return int.from_bytes(waiting, "little") > 0

    def _on_line(self, data: bytes) -> bytes:
        # A pty cannot be unplugged: while it has 'vanished' nothing crosses it, in either direction.
        if self.faults is not None and self.faults.vanished(self.target):
            return b""
        return super()._on_line(data)

    def _serve(self) -> None:
        while not self._stop.is_set():
            writers = [self._master] if self._outbox.waiting else []
            try:
                readable, writable, _ = select.select([self._master], writers, [], SELECT_S)
            except (OSError, ValueError):
                return
            if writable:
                self._outbox.flush()
            if readable:
                self._take()

    def _take(self) -> None:
        self._handling = True
        try:
            try:
                data = os.read(self._master, 4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # EIO while no host has the slave open
            if data:
                self._deliver(data, self.host_line())
        finally:
            self._handled()

    def stop(self) -> None:
        """Stop serving and close the pty."""
        super().stop()
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


SerialPortServer = Rfc2217Port | PtyPort


def serve_port(kind: str, device: SerialDevice | None, *, line: Line, name: str, rng: random.Random,
               faults: FaultSchedule | None = None, target: str = "") -> SerialPortServer:
    """A started port of `kind` ('twin' = RFC 2217, 'twin+pty' = pty) for `device`; `faults` (bench faults
    of position `target`) act on it."""
    port: SerialPortServer
    if kind == TWIN_SERIAL_PTY:
        port = PtyPort(device, line=line, name=name, rng=rng, faults=faults, target=target)
    elif kind == TWIN_SERIAL:
        port = Rfc2217Port(device, line=line, name=name, rng=rng, faults=faults, target=target)
    else:
        raise ValueError(f"unknown twin serial kind {kind!r}: use {' or '.join(TWIN_SERIALS)}")
    port.start()
    return port
