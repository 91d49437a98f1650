"""Byte-stream transport over pyserial (drivers layer): UART line settings and opening a port from a URL
(device path, rfc2217://, socket://, loop://). The one seam between a bench's UART adapters and the
twin's served ports; the DL/T 645 link (`drivers.dlt645.link`) talks through it.

Nothing opens at import; never imports the rig or pytest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Protocol

from drivers.errors import LinkError, ValidationError

_PARITIES: Final = ("N", "E", "O", "M", "S")


def carries_parity(url: str) -> bool:
    """False for ports that cannot carry parity: a pty (/dev/pts/N), socket:// and loop://."""
    return not url.startswith(("/dev/pts/", "socket://", "loop://"))


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
