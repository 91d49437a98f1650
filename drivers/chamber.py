"""Climate chamber driver (drivers layer): a chamber's temperature controller over Modbus TCP, through
pymodbus. Which registers hold the set point, the actual temperature and run/stop, and how they are scaled,
is a dialect row (data), so another controller family is a new row, not new code.

Importing this imports no instrument library (pymodbus is imported when the chamber opens).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final, Literal

from drivers.clock import Clock
from drivers.errors import InstrumentError, NotOpenError, SafetyLimitError, ValidationError

Table = Literal["holding", "input"]


@dataclass(frozen=True)
class Register:
    """One controller value: which register table and 0-based address holds it."""

    table: Table
    address: int


@dataclass(frozen=True)
class ChamberDialect:
    """A chamber controller family's Modbus register map (data, with where it comes from)."""

    name: str
    setpoint: Register  # temperature set point (read/write), one 16-bit register
    actual: Register  # measured air temperature (read), one 16-bit register
    run: Register | None  # run/stop of the conditioning (None: the controller always controls)
    run_value: int
    stop_value: int
    scale_c: float  # °C per register count (0.1: the value is in tenths of a degree)
    signed: bool  # two's-complement registers (temperatures below zero)
    min_c: float  # the controller's set-point range; a set point outside is refused before it is sent
    max_c: float
    unit_id: int
    source: str
    check: bool = False


# Watlow Series F4 (the ramping controller fitted to many Thermotron, Tenney and Cincinnati Sub-Zero chambers):
# Input 1 value at 100, Set Point 1 at 300, signed integers in tenths with decimal precision 0.0.
WATLOW_F4: Final = ChamberDialect(
    name="watlow-f4", setpoint=Register("holding", 300), actual=Register("holding", 100), run=None,
    run_value=1, stop_value=0, scale_c=0.1, signed=True, min_c=-70.0, max_c=180.0, unit_id=1,
    source="Watlow Series F4 user's manual, Modbus register list (Input 1 value 100, Set Point 1 300; tenths "
           "of a degree with decimal precision 0.0): from memory, not read against the manual",
    check=True,
)

# A generic PLC-style chamber map (many Chinese and European chamber builders publish one like it): set
# point and run/stop in holding registers, the measured value in an input register, tenths of a degree.
GENERIC_PLC: Final = ChamberDialect(
    name="generic-plc-chamber", setpoint=Register("holding", 0), actual=Register("input", 0),
    run=Register("holding", 1), run_value=1, stop_value=0, scale_c=0.1, signed=True, min_c=-70.0, max_c=150.0,
    unit_id=1, source="lab convention for a PLC-controlled chamber; confirm against the chamber's own map",
    check=True,
)

CHAMBER_DIALECTS: Final = {d.name: d for d in (WATLOW_F4, GENERIC_PLC)}

_SOCKET = re.compile(r"^TCPIP\d*::(?P<host>[^:]+)::(?P<port>\d+)::SOCKET$", re.IGNORECASE)
_MODBUS_URL = re.compile(r"^modbus\+tcp://(?P<host>[^:/]+):(?P<port>\d+)/?$", re.IGNORECASE)


def parse_resource(resource: str) -> tuple[str, int]:
    """Host and port of a chamber resource: `TCPIP::HOST::PORT::SOCKET` (the bench file's usual form) or
    `modbus+tcp://HOST:PORT`; ValidationError naming the resource otherwise."""
    match = _SOCKET.match(resource) or _MODBUS_URL.match(resource)
    if match is None:
        raise ValidationError(f"chamber resource {resource!r}: give TCPIP::HOST::PORT::SOCKET or "
                              "modbus+tcp://HOST:PORT (the chamber's Modbus TCP server)")
    port = int(match["port"])
    if not 0 < port < 65536:
        raise ValidationError(f"chamber resource {resource!r}: port {port} is not a TCP port")
    return match["host"], port


def to_register(value_c: float, dialect: ChamberDialect) -> int:
    """The register count for `value_c` (rounded to the controller's resolution)."""
    counts = round(value_c / dialect.scale_c)
    low, high = (-0x8000, 0x7FFF) if dialect.signed else (0, 0xFFFF)
    if not low <= counts <= high:
        raise ValidationError(f"{value_c} °C does not fit a {dialect.name} register")
    return counts & 0xFFFF


def from_register(raw: int, dialect: ChamberDialect) -> float:
    """°C from a register count."""
    counts = raw - 0x10000 if dialect.signed and raw >= 0x8000 else raw
    return round(counts * dialect.scale_c, 6)


class ClimateChamber:
    """A climate chamber's controller: set point, actual air temperature, run/stop, and waiting until the
    air is stable at the set point (on the bench clock)."""

    def __init__(self, resource: str, dialect: ChamberDialect, clock: Clock, *, timeout_s: float = 2.0) -> None:
        self.resource = resource
        self.host, self.port = parse_resource(resource)
        self.dialect = dialect
        self.clock = clock
        self.timeout_s = timeout_s
        self._client: Any = None  # pymodbus's ModbusTcpClient while open (its methods are untyped)

    @property
    def is_open(self) -> bool:
        """True while connected."""
        return self._client is not None

    def open(self) -> None:
        """Connect to the controller's Modbus TCP server."""
        from pymodbus.client import ModbusTcpClient  # only a bench with a chamber needs pymodbus

        client: Any = ModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=1)
        if not client.connect():
            client.close()
            raise InstrumentError(f"climate chamber at {self.resource}: no Modbus TCP connection")
        self._client = client

    def close(self) -> None:
        """Disconnect (the chamber keeps its set point)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> ClimateChamber:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- registers

    def _call(self, what: str, call: Any) -> Any:
        from pymodbus.exceptions import ModbusException

        if self._client is None:
            raise NotOpenError(f"climate chamber at {self.resource} is not open")
        try:
            reply = call(self._client)
        except ModbusException as exc:
            raise InstrumentError(f"climate chamber at {self.resource}: {what}: {exc}") from None
        if reply.isError():
            raise InstrumentError(f"climate chamber at {self.resource}: {what}: the controller refused it ({reply})")
        return reply

    def _read(self, register: Register) -> int:
        unit = self.dialect.unit_id
        if register.table == "holding":
            reply = self._call(f"read holding register {register.address}",
                               lambda c: c.read_holding_registers(register.address, count=1, device_id=unit))
        else:
            reply = self._call(f"read input register {register.address}",
                               lambda c: c.read_input_registers(register.address, count=1, device_id=unit))
        return int(reply.registers[0])

    def _write(self, register: Register, raw: int) -> None:
        if register.table != "holding":
            raise InstrumentError(f"{self.dialect.name}: register {register.address} is an input register")
        unit = self.dialect.unit_id
        self._call(f"write register {register.address}",
                   lambda c: c.write_register(register.address, raw, device_id=unit))

    # ---- the chamber

    def set_temperature(self, value_c: float) -> None:
        """Set the air temperature set point (refused outside the controller's range before sending)."""
        d = self.dialect
        if not math.isfinite(value_c) or not d.min_c <= value_c <= d.max_c:
            raise SafetyLimitError(f"chamber set point {value_c} °C outside {d.name}'s range "
                                   f"{d.min_c:g}..{d.max_c:g} °C")
        self._write(d.setpoint, to_register(value_c, d))

    def setpoint_c(self) -> float:
        """The set point the controller holds, °C."""
        return from_register(self._read(self.dialect.setpoint), self.dialect)

    def temperature_c(self) -> float:
        """The measured air temperature, °C."""
        return from_register(self._read(self.dialect.actual), self.dialect)

    def start(self) -> None:
        """Run the conditioning (a controller without run/stop always runs)."""
        if self.dialect.run is not None:
            self._write(self.dialect.run, self.dialect.run_value)

    def stop(self) -> None:
        """Stop the conditioning."""
        if self.dialect.run is not None:
            self._write(self.dialect.run, self.dialect.stop_value)

    def running(self) -> bool:
        """True while the conditioning runs."""
        run = self.dialect.run
        return True if run is None else self._read(run) == self.dialect.run_value

    def wait_stable(self, value_c: float, *, band_k: float, hold_s: float, timeout_s: float,
                    poll_s: float = 30.0) -> bool:
        """Wait (bench time) until the air has stayed within `band_k` of `value_c` for `hold_s`; False when
        `timeout_s` passed first."""
        since: list[float] = []

        def stable() -> bool:
            now = self.clock.now()
            if abs(self.temperature_c() - value_c) > band_k:
                since.clear()
                return False
            if not since:
                since.append(now)
            return now - since[0] >= hold_s

        return self.clock.wait_until(stable, timeout_s, poll_s=poll_s)


def chamber_driver(name: str, resource: str, clock: Clock, *, timeout_s: float = 2.0) -> ClimateChamber:
    """The chamber a bench file names (driver = its controller family's dialect), not opened."""
    try:
        dialect = CHAMBER_DIALECTS[name]
    except KeyError:
        raise ValidationError(f"unknown chamber driver {name!r}; known: {', '.join(CHAMBER_DIALECTS)}") from None
    return ClimateChamber(resource, dialect, clock, timeout_s=timeout_s)
