"""Byte-stream transport over pyserial (drivers layer): UART line settings and opening a port from a URL
(device path, rfc2217://, socket://, loop://). The one seam between a bench's UART adapters and the
twin's served ports; the DL/T 645 link (`drivers.dlt645.link`) talks through it.

Nothing opens at import; never imports the rig or pytest.
"""

from __future__ import annotations

import os
import select
import stat
from dataclasses import dataclass
from typing import Any, Final, Protocol

from drivers.errors import LinkError, ValidationError

_PARITIES: Final = ("N", "E", "O", "M", "S")


_PTY_SLAVE_MAJORS: Final = range(136, 144)  # Linux UNIX98 pty slaves (Documentation/admin-guide/devices.txt)


def is_pty(url: str) -> bool:
    """True when `url` is a pseudo-terminal however it is named: /dev/pts/N, or a symlink to one (socat's
    `pty,link=/tmp/ttyRig`). Judged by the device itself (its real path, its device number), not the name."""
    if "://" in url:
        return False
    try:
        st = os.stat(url)  # follows symlinks
    except OSError:
        return False
    if not stat.S_ISCHR(st.st_mode):
        return False
    return os.major(st.st_rdev) in _PTY_SLAVE_MAJORS or os.path.realpath(url).startswith("/dev/pts/")


def carries_parity(url: str) -> bool:
    """False for ports that cannot carry parity: a pty (Linux drops or refuses parity on it), socket://
    and loop://."""
    return not url.startswith(("socket://", "loop://")) and not is_pty(url)


def carries_baud(url: str) -> bool:
    """False for ports with no baud rate at all (socket://, loop://); a pty keeps the baud it is set to."""
    return not url.startswith(("socket://", "loop://"))


@dataclass(frozen=True)
class LineSettings:
    """UART line settings: baud (bit/s), data bits, parity (N/E/O/M/S), stop bits."""

    baud: int = 2400
    bytesize: int = 8
    parity: str = "E"
    stopbits: float = 1

    def __post_init__(self) -> None:
        if isinstance(self.baud, bool) or not isinstance(self.baud, int) or self.baud <= 0:
            raise ValidationError(f"baud {self.baud!r} must be a positive whole number of bit/s")
        if self.bytesize not in (5, 6, 7, 8):
            raise ValidationError(f"bytesize {self.bytesize!r} must be 5, 6, 7 or 8 data bits")
        if self.parity not in _PARITIES:
            raise ValidationError(f"parity {self.parity!r} must be one of {', '.join(_PARITIES)}")
        if self.stopbits not in (1, 1.5, 2):
            raise ValidationError(f"stopbits {self.stopbits!r} must be 1, 1.5 or 2")

    @property
    def char_time_s(self) -> float:
        """Time one character occupies the line: start bit, data bits, parity bit, stop bits, s."""
        return (1 + self.bytesize + (self.parity != "N") + self.stopbits) / self.baud

    def wire_time_s(self, nbytes: int) -> float:
        """Time `nbytes` characters occupy the line, s."""
        return nbytes * self.char_time_s

    def pyserial(self, url: str = "") -> dict[str, Any]:
        """The settings as pyserial's keyword arguments for a port at `url`: a port that cannot carry
        parity (a pty: Linux drops it or refuses it with EINVAL) is opened without."""
        stopbits: float = int(self.stopbits) if self.stopbits != 1.5 else 1.5
        parity = self.parity if carries_parity(url) else "N"
        return {"baudrate": self.baud, "bytesize": self.bytesize, "parity": parity, "stopbits": stopbits}

    def __str__(self) -> str:
        stop = f"{self.stopbits:g}"
        return f"{self.baud} {self.bytesize}{self.parity}{stop}"


class SerialPort(Protocol):
    """The part of a pyserial port the link uses (reads return after `timeout` s of wall time)."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def apply_settings(self, d: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def open_port(url: str, line: LineSettings, *, timeout_s: float) -> SerialPort:
    """A pyserial port for `url` (device path, rfc2217://, socket://, loop://) with `line` settings;
    a read returns after `timeout_s` of wall time at the latest. InstrumentError naming the port."""
    import serial  # imported here so that nothing touches a port library at import time

    try:
        port: SerialPort = serial.serial_for_url(url, timeout=timeout_s, **line.pyserial(url))
    except (serial.SerialException, OSError, ValueError) as exc:
        reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise LinkError(
            f"cannot open serial port {url} at {line}: {reason} (is the adapter plugged in and the URL right?)"
        ) from None
    return port


def bytes_arriving(port: SerialPort) -> bool:
    """True when bytes wait at `port` or are already on their way in: an RFC 2217 port's socket may hold
    bytes its reader thread has not yet moved to `in_waiting`. A port that fails the question answers True,
    so that the caller's next read reports the failure."""
    try:
        if port.in_waiting > 0:
            return True
        sock = getattr(port, "_socket", None)  # pyserial's rfc2217:// and socket:// ports keep their socket here
        return sock is not None and bool(select.select([sock], [], [], 0)[0])
    except Exception:  # noqa: BLE001 - pyserial raises several types for a port that went away
        return True
