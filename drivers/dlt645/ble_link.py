"""Host side of a meter's DL/T 645-2007 over Bluetooth LE (drivers layer): the UART link's request/reply logic
(`MeterLink`: preamble, reply timeout in bench time, bounded retry, exchange history, abnormal replies) over
the meter's transparent-UART GATT service (`drivers.ble.BleUartPort`) instead of a serial port.

Plans use it exactly as the UART link; what is BLE's own (advertising, MTU, notifications, drops) is on
`link.ble`. Imports nothing above the drivers layer.
"""

from __future__ import annotations

from typing import Final

from drivers.ble import BleBackend, BleTarget, BleUartPort
from drivers.clock import Clock
from drivers.dlt645.frame import Dlt645Frame, Function, encode
from drivers.dlt645.identifiers import encode_di
from drivers.dlt645.link import MeterLink, TrafficHook
from drivers.errors import NotOpenError
from drivers.retry import RetryPolicy
from drivers.serial_transport import LineSettings, SerialPort

# The LE 1M PHY's raw rate: the host's request occupies the air for a negligible time against the meter's
# reply delay (the link measures reply latency from the end of the request, as on the UART).
BLE_AIR: Final = LineSettings(baud=1_000_000, bytesize=8, parity="N", stopbits=1)


class BleMeterLink(MeterLink):
    """Request/reply to one meter over its BLE transparent-UART service; the same interface as `MeterLink`.

    Nothing opens in `__init__`; `open()` starts the link's event loop and the meter is found and connected at
    the first request (again after a drop). A BLE link carries no baud rate or parity.
    """

    def __init__(self, target: BleTarget, address: str, clock: Clock, *, backend: BleBackend | None = None,
                 password: str = "02000000", operator: str = "00000000", reply_timeout_s: float = 1.0,
                 inter_byte_timeout_s: float = 0.5, retries: int = 1, preamble: int = 4,
                 traffic: TrafficHook | None = None, retry: RetryPolicy | None = None,
                 reconnect_attempts: int = 3, reconnect_backoff_s: float = 0.5) -> None:
        self.target = target
        self.backend = backend if backend is not None else BleBackend()
        self.reconnect_attempts = reconnect_attempts
        self.reconnect_backoff_s = reconnect_backoff_s
        self._ble: BleUartPort | None = None
        super().__init__(target.url, address, clock, line=BLE_AIR, password=password, operator=operator,
                         reply_timeout_s=reply_timeout_s, inter_byte_timeout_s=inter_byte_timeout_s, retries=retries,
                         preamble=preamble, port_factory=self._open_port, traffic=traffic, retry=retry)

    def _open_port(self, url: str, line: LineSettings) -> SerialPort:
        port = BleUartPort(self.target, self._clock, backend=self.backend, reconnect_attempts=self.reconnect_attempts,
                           reconnect_backoff_s=self.reconnect_backoff_s)
        port.open()
        self._ble = port
        return port

    @property
    def ble(self) -> BleUartPort:
        """The BLE side of the link: advertising heard, GATT services, MTU, counters, drop() and connect()."""
        if self._ble is None or not self.is_open:
            raise NotOpenError(f"meter link {self.url} is not open: call open() first")
        return self._ble

    @property
    def carries_parity(self) -> bool:
        """A BLE link has no parity."""
        return False

    @property
    def carries_baud(self) -> bool:
        """A BLE link has no baud rate."""
        return False

    def reconfigure(self, line: LineSettings) -> None:
        """Nothing to set on a BLE link (17H changes the meter's RS-485 port, not this link)."""

    def request_bytes(self, di: int) -> bytes:
        """The wire bytes of a read of `di` as this link sends it (preamble included): for a raw GATT write."""
        return encode(Dlt645Frame.request(self.address, Function.READ, encode_di(di)), preamble=self.preamble)
