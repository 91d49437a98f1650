"""SCPI building blocks for drivers: settings declared once, strict validation, error-queue checks.

Drivers layer: a `Setting` is data (command, unit, range); `ScpiInstrument` sends through a
`MessageTransport` and turns the instrument's error queue into `InstrumentError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from drivers.errors import InstrumentError, LinkError, ValidationError
from drivers.transport import MessageTransport


@dataclass(frozen=True)
class Setting:
    """One numeric setting of an instrument: `command value` sets it, `command?` reads it back."""

    name: str
    command: str
    unit: str
    low: float
    high: float
    decimals: int = 4

    def validate(self, value: float) -> float:
        """Return `value` as float, or raise ValidationError: a rig never clips a mains set-point."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValidationError(f"{self.name}: {value!r} is not a number") from None
        if not math.isfinite(number) or not self.low <= number <= self.high:
            raise ValidationError(
                f"{self.name}: {number:g} {self.unit} is outside the instrument's range "
                f"{self.low:g}..{self.high:g} {self.unit}; nothing was sent"
            )
        return number

    def set_message(self, value: float) -> str:
        """The message that sets `value` (validated)."""
        return f"{self.command} {self.validate(value):.{self.decimals}f}"

    def query_message(self) -> str:
        """The message that reads the setting back."""
        return f"{self.command}?"


def parse_float(reply: str, what: str, resource: str) -> float:
    """A numeric SCPI reply as float; InstrumentError naming the reply when it is garbled."""
    try:
        value = float(reply.strip())
    except ValueError:
        raise InstrumentError(f"{resource}: reply to {what} is not a number: {reply!r}") from None
    if not math.isfinite(value):
        raise InstrumentError(f"{resource}: reply to {what} is not a finite number: {reply!r}")
    return value


def parse_error(reply: str, resource: str) -> tuple[int, str]:
    """Parse `SYST:ERR?` -> (code, message)."""
    code_text, _, message = reply.partition(",")
    try:
        code = int(code_text.strip())
    except ValueError:
        raise InstrumentError(f"{resource}: reply to SYST:ERR? is not '<code>,\"<text>\"': {reply!r}") from None
    return code, message.strip().strip('"')


ESR_POWER_ON = 0x80  # IEEE 488.2 standard event status register: power on
DEVICE_SPECIFIC = range(-399, -299)  # SCPI-99 device-specific errors: the instrument is in trouble


class DeviceError(LinkError):
    """The instrument's error queue holds only device-specific errors (-3xx: system error, queue overflow):
    the instrument is in trouble, not what it was asked; a bench fault, worth asking again."""


class ScpiInstrument:
    """IEEE 488.2 basics shared by every SCPI instrument: identity, reset, error queue."""

    # An error queue that never empties is itself a fault; stop reading after this many entries.
    MAX_ERRORS_READ = 32

    def __init__(self, transport: MessageTransport) -> None:
        self.transport = transport

    @property
    def resource(self) -> str:
        """Where the instrument is reached."""
        return self.transport.resource

    def open(self) -> None:
        """Connect, clear the status and error queue, and wait until the instrument has done so."""
        self.transport.open()
        # *OPC? makes this a round trip: the instrument has acted before open() returns.
        self.transport.query("*CLS;*OPC?")

    def close(self) -> None:
        """Disconnect."""
        self.transport.close()

    def identity(self) -> str:
        """The `*IDN?` string: manufacturer, model, serial, firmware."""
        return self.transport.query("*IDN?")

    def errors(self) -> list[tuple[int, str]]:
        """Drain the error queue; empty when the instrument reports `0,"No error"`."""
        found: list[tuple[int, str]] = []
        for _ in range(self.MAX_ERRORS_READ):
            code, message = parse_error(self.transport.query("SYST:ERR?"), self.resource)
            if code == 0:
                return found
            found.append((code, message))
        raise DeviceError(f"{self.resource}: error queue did not empty after {self.MAX_ERRORS_READ} reads")

    def check(self, after: str) -> None:
        """Raise InstrumentError when the error queue holds anything (what was sent is named)."""
        found = self.errors()
        if found:
            listed = "; ".join(f"{code} {message}" for code, message in found)
            kind = DeviceError if all(code in DEVICE_SPECIFIC for code, _ in found) else InstrumentError
            raise kind(f"{self.resource}: instrument reported after {after!r}: {listed}")

    def send(self, message: str) -> None:
        """Send a command and read the error queue in the same program message (one round trip).

        A separate write then query would stall on Nagle's algorithm over TCP; pyvisa-py cannot turn
        it off for socket sessions (its VI_ATTR_TCPIP_NODELAY setter is not wired up).
        """
        code, text = parse_error(self.transport.query(f"{message};:SYST:ERR?"), self.resource)
        if code != 0:
            found = [(code, text), *self.errors()]
            listed = "; ".join(f"{c} {m}" for c, m in found)
            raise InstrumentError(f"{self.resource}: instrument reported after {message!r}: {listed}")

    def restarted(self) -> bool:
        """True when the instrument powered on since this was last asked or the session opened (IEEE 488.2
        `*ESR?` power-on bit; reading clears it): whatever it was set up to do is lost."""
        reply = self.transport.query("*ESR?")
        try:
            value = int(reply.strip())
        except ValueError:
            raise InstrumentError(f"{self.resource}: reply to *ESR? is not a number: {reply!r}") from None
        return bool(value & ESR_POWER_ON)

    def query_float(self, message: str) -> float:
        """A numeric query."""
        return parse_float(self.transport.query(message), message, self.resource)
