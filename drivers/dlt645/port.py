"""The UART port of a DL/T 645 link or tap (drivers layer): how a port is opened for `drivers.dlt645`, how often
its bytes are polled, and where its traffic goes. Imports nothing above the drivers layer."""

from __future__ import annotations

from typing import Final

from drivers.serial_link import POLL_WALL_S, PortFactory, TrafficHook
from drivers.serial_transport import LineSettings, SerialPort, open_port

__all__ = ["POLL_WALL_S", "TAP_QUIET_READS", "PortFactory", "TrafficHook", "open_serial_port"]

# A tap read ends when the line has been quiet for this many polls (wall time).
TAP_QUIET_READS: Final = 5


def open_serial_port(url: str, line: LineSettings) -> SerialPort:
    """A pyserial port for `url` with `line` settings, reads returning after the link's poll interval."""
    return open_port(url, line, timeout_s=POLL_WALL_S)
