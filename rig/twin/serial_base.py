"""What every served serial port of the twin shares (twin layer): the line settings, the device behind a port,
garbling for a host whose settings differ, the queue of bytes a host has not taken yet, and the port base the RFC
2217 and pty ports of rig.twin.serial_port build on. Knows nothing of DL/T 645."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from rig.twin.faults import FaultSchedule
    from rig.twin.world import World

# What a host that never reads may leave queued on one port before bytes are dropped.
OUTBOX_LIMIT_BYTES: Final = 256 * 1024
SELECT_S: Final = 0.02
TWIN_SERIAL: Final = "twin"  # bench file: served over RFC 2217
TWIN_SERIAL_PTY: Final = "twin+pty"  # bench file: served on a pty (parity is not carried)
TWIN_SERIALS: Final = (TWIN_SERIAL, TWIN_SERIAL_PTY)


@dataclass(frozen=True)
class Line:
    """Line settings as a UART has them: baud (bit/s), data bits, parity (N/E/O/M/S), stop bits."""

    baud: int = 2400
    bytesize: int = 8
    parity: str = "E"
    stopbits: float = 1

    @property
    def char_time_s(self) -> float:
        """Time one character occupies the wire, s."""
        return (1 + self.bytesize + (self.parity != "N") + self.stopbits) / self.baud

    def __str__(self) -> str:
        return f"{self.baud} {self.bytesize}{self.parity}{self.stopbits:g}"


class SerialDevice(Protocol):
    """What sits on the twin's end of a serial port."""

    @property
    def line(self) -> Line:
        """The device's own line settings now (they may change, e.g. after a baud change)."""
        ...

    def receive(self, data: bytes, host: Line, send: Callable[[bytes], None]) -> None:
        """Bytes from the host (already garbled if the host's settings differ); `send` writes back."""
        ...


def garble(data: bytes, rng: random.Random) -> bytes:
    """What a UART receives when the sender uses other line settings: framing and parity errors, wrong
    bits; here seeded random bytes of the same count."""
    return bytes(rng.randrange(256) for _ in data)


class HostUart:
    """The host's UART settings as RFC 2217 carries them (the object `PortManager` configures)."""

    def __init__(self) -> None:
        self.baudrate = 9600
        self.bytesize = 8
        self.parity = "N"
        self.stopbits: float = 1
        self.xonxoff = self.rtscts = self.break_condition = False
        self.rts = self.dtr = True
        self.cts = self.dsr = True
        self.ri = self.cd = False

    def line(self) -> Line:
        return Line(int(self.baudrate), int(self.bytesize), str(self.parity), float(self.stopbits))

    def reset_input_buffer(self) -> None:
        """Nothing is buffered on the twin's side."""

    def reset_output_buffer(self) -> None:
        """Nothing is buffered on the twin's side."""


class Outbox:
    """Bytes for one host: sent at once when the socket or pty takes them, else queued (bounded)."""

    def __init__(self, write_nonblocking: Callable[[bytes], int]) -> None:
        self._write = write_nonblocking
        self._pending = bytearray()
        self._lock = threading.Lock()
        self.dropped = 0

    def put(self, data: bytes) -> None:
        with self._lock:
            if len(self._pending) + len(data) > OUTBOX_LIMIT_BYTES:
                self.dropped += len(data)
                return
            self._pending += data
            self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    @property
    def waiting(self) -> bool:
        return bool(self._pending)

    def _flush_locked(self) -> None:
        while self._pending:
            try:
                sent = self._write(bytes(self._pending))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._pending.clear()  # the host went away: what it did not take is lost
                return
            if sent <= 0:
                return
            del self._pending[:sent]


class PortBase:
    """Common to both port kinds: the device, the garbling of mismatched settings, start/stop."""

    def __init__(self, device: SerialDevice | None, line: Line, name: str, rng: random.Random,
                 faults: FaultSchedule | None = None, target: str = "") -> None:
        self.device = device
        self.name = name
        self._line = line
        self._rng = rng
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.faults = faults  # bench faults of the twin (twin.faults) on this port, as position `target`
        self.target = target
        # The World whose clock must not run past a request this port has not yet answered (a device that
        # has one: the meter's UART does, a tap does not).
        self._world: World | None = getattr(device, "world", None)
        self._handling = False  # True from taking a host's bytes off the socket until the device is done

    def pending(self) -> bool:
        """True while bytes a host sent are not yet answered: still unread at the port, or being handled."""
        return self._handling or self._input_waiting()

    def _input_waiting(self) -> bool:
        raise NotImplementedError

    def _handled(self) -> None:
        self._handling = False
        if self._world is not None:
            self._world.work_done()

    def _on_line(self, data: bytes) -> bytes:
        """`data` after the line faults in force (bytes dropped, bits flipped)."""
        return data if self.faults is None else self.faults.corrupt(self.target, data)

    @property
    def line(self) -> Line:
        """The device side's line settings."""
        return self.device.line if self.device is not None else self._line

    def _matches(self, host: Line) -> bool:
        return host == self.line

    def _deliver(self, data: bytes, host: Line) -> None:
        if self.device is None:
            return  # a tap: what the host sends goes nowhere
        sent, data = data, self._on_line(data)
        if data != sent:
            # Noise on the bus that hit the host's bytes reaches every receiver on it, the host's adapter too:
            # the host hears bytes that are not the meter's (a meter that stays silent sends none).
            self._send_raw(garble(sent, self._rng))
        if not data:
            return
        if not self._matches(host):
            data = garble(data, self._rng)
        self.device.receive(data, host, lambda reply: self.send(reply, host))

    def send(self, data: bytes, host: Line | None = None) -> None:
        """Bytes to the host; garbled when the host's settings are not the device's."""
        raise NotImplementedError

    def _send_raw(self, data: bytes) -> None:
        """Bytes to the host as they are (no line fault, no settings check)."""
        raise NotImplementedError

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._serve, name=f"serial:{self.name}", daemon=True)
        self._thread.start()
        if self._world is not None:
            self._world.add_pending(self.pending, server_thread=self._thread.ident)

    def _serve(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop serving."""
        self._stop.set()
        if self._world is not None and self._thread is not None:
            self._world.remove_pending(self.pending, server_thread=self._thread.ident)
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
