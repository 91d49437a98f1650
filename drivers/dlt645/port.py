"""The UART port of a DL/T 645 link or tap (drivers layer): how a port is opened for `drivers.dlt645`, how often
its bytes are polled, and where its traffic goes. Imports nothing above the drivers layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from drivers.serial_transport import LineSettings, SerialPort, open_port

# How often the receive loop looks at the port (a read's wall timeout, and the clock's poll while it waits for
# bytes). The limits apply to bench time, on the injected clock, which alone decides how time passes.
POLL_WALL_S: Final = 0.01
# A tap read ends when the line has been quiet for this many polls (wall time).
TAP_QUIET_READS: Final = 5


PortFactory = Callable[[str, LineSettings], SerialPort]
# (port URL, direction '>' sent / '<' received, bytes): where a run's traffic log takes UART bytes.
TrafficHook = Callable[[str, str, bytes], None]


def open_serial_port(url: str, line: LineSettings) -> SerialPort:
    """A pyserial port for `url` with `line` settings, reads returning after the link's poll interval."""
    return open_port(url, line, timeout_s=POLL_WALL_S)
