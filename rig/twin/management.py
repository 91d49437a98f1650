"""The twin meter's management module: the MCU's DL/T 645-2007 server (RS-485 port and the internal
link to the expansion module), its RTC, passwords, address, line settings and status words (the port's timing on the
line is rig.twin.meter_uart, the clock rig.twin.meter_clock).

Written from the meter's side and independently of the rig's host-side link: it shares only the codec
in `drivers.dlt645` (pinned by golden vectors). Values come from the meter model: energy registers from
the metering module, U/I/P/f from the World's terminals as this meter measures them.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from drivers.dlt645 import (
    BROADCAST_ADDRESS,
    DATA_ITEMS,
    STATUS1_CLOCK_BATTERY_LOW,
    Dlt645Frame,
    ErrorCode,
    Function,
    Value,
    abnormal_reply,
    address_from_wire,
    address_to_wire,
    baud_from_word,
    decode_broadcast_time,
    decode_value,
    encode,
    encode_di,
    encode_value,
    split_di,
)
from drivers.errors import FrameError
from rig.config import MeterType, UartKnobs
from rig.twin.dlt698.codec import Dlt698Frame
from rig.twin.meter import MIN_OPERATING_VOLTAGE_FRACTION, MeteringModule
from rig.twin.meter_clock import MeterRtc, broadcast_refusal
from rig.twin.serial_port import Line
from rig.twin.world import Terminals, World

if TYPE_CHECKING:
    from rig.twin.display import Display
    from rig.twin.dlt698.server import Dlt698Server
    from rig.twin.power import MeterPower  # supply, battery, RTC on battery
    from rig.twin.security import MeterSecurity  # ESAM-backed security

# ---------------------------------------------------------------- the meter's factory settings (data)

RS485_LINE: Final = Line(2400, 8, "E", 1)  # DL/T 645's usual default
SUPPORTED_BAUDS: Final = (1200, 2400, 4800, 9600)  # what this meter's RS-485 port can switch to
# Passwords by level (PA): level -> the 6 password digits as printed. Levels 98/99 (ciphertext/MAC) are the
# ESAM's (SECURED_LEVELS): a meter built without one refuses them as unauthorised.
FACTORY_PASSWORDS: Final[Mapping[int, str]] = {0x02: "000000", 0x04: "000000"}
REPLY_JITTER_S: Final = 0.04  # each reply's delay is the knob ± this, seeded
REPLY_PREAMBLE: Final = 4  # FE bytes before each reply

@dataclass
class Housekeeping:
    """Temperature and clock battery of a management module without a power side: plausible, seeded values.

    A twin meter's power side (rig.twin.power.MeterPower, `attach_power`) serves the battery voltage,
    operating time and battery-low bit from its battery model instead.
    """

    temperature_c: float = 25.0
    battery_voltage_v: float = 3.60
    battery_low_threshold_v: float = 3.00
    minutes_on_battery: int = 0


# The reply (a DL/T 645 or a DL/T 698.45 frame), and what the meter does after sending it
Reply = tuple[Dlt645Frame | Dlt698Frame, Callable[[], None] | None]


@dataclass
class ManagementModule:
    """The management MCU of one twin meter: DL/T 645 server, RTC, passwords, line settings."""

    meter_type: MeterType
    knobs: UartKnobs
    address: str
    metering: MeteringModule
    world: World
    rng: random.Random
    line: Line = RS485_LINE
    housekeeping: Housekeeping = field(default_factory=Housekeeping)
    powered_since: float | None = None
    last_broadcast_sync: dt.date | None = None
    broadcasts_refused: list[str] = field(default_factory=list)
    programming_count: int = 0  # parameter writes taken (DI 03300000): how a lab sees a command act once
    # Told (time before, time after) of every clock set by a write: the clock-setting log (rig.twin.event_log).
    clock_set_listeners: list[Callable[[dt.datetime, dt.datetime], None]] = field(default_factory=list)
    display: Display | None = None  # its LCD (rig.twin.display): what an operator reads off the meter
    security: MeterSecurity | None = None  # ESAM-backed security: 03H, 1CH, levels 98/99
    power: MeterPower | None = None  # supply, power-down events, RTC on the battery, battery
    dlt698: Dlt698Server | None = None  # the same firmware's DL/T 698.45 server on the same ports
    rtc: MeterRtc = field(init=False)
    _gain: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        rng = self.rng
        # As delivered: set within seconds, a crystal a few ppm off, measuring chains a little off.
        self.rtc = MeterRtc(self.world.epoch, offset_s=rng.gauss(0.0, 4.0), drift_ppm=rng.uniform(-3.0, 3.0))
        self._gain = {"voltage": rng.gauss(0.0, 0.05), "current": rng.gauss(0.0, 0.08),
                      "frequency": rng.gauss(0.0, 0.005)}
        self.housekeeping.temperature_c = round(25.0 + rng.uniform(-2.0, 2.0), 1)
        self.housekeeping.battery_voltage_v = round(rng.uniform(3.55, 3.66), 2)
        self.items: dict[int, Callable[[float], Value]] = self._served_items()

    # ---- power

    def _has_supply(self, terminals: Terminals) -> bool:
        return terminals.voltage_v >= MIN_OPERATING_VOLTAGE_FRACTION * self.meter_type.un_v

    def attach_power(self, power: MeterPower) -> None:
        """Run the meter's power side: it decides when the MCU talks and serves the battery,
        power-down event and status-word items."""
        self.power = power
        self.items.update(power.items())

    def step(self, t0: float, dt_s: float, terminals: Terminals) -> None:
        """Track the mains supply: the MCU starts when voltage comes and stops when it goes."""
        if self.power is not None:
            self.power.step(t0, dt_s, terminals)
            return
        if not self._has_supply(terminals):
            self.powered_since = None
        elif self.powered_since is None:
            self.powered_since = t0

    def answering(self, now_s: float) -> bool:
        """True when the MCU has had mains for its start-up time (it does not talk on battery)."""
        if self.power is not None:
            return self.power.answering(now_s)
        if not self._has_supply(self.world.terminals()):
            self.powered_since = None
            return False
        if self.powered_since is None:
            self.powered_since = now_s
        return now_s - self.powered_since >= self.meter_type.start_up_time_s

    # ---- measured values (this meter's view of the World)

    def _measured(self) -> tuple[float, float, float, float]:
        """Voltage V, signed current A, signed active power W, frequency Hz as this meter measures them."""
        t = self.world.terminals()
        power_w = self.metering.registered_power_w(t) if self._has_supply(t) else 0.0
        voltage = t.voltage_v * (1.0 + self._gain["voltage"] / 100.0)
        current = t.current_a * (1.0 + self._gain["current"] / 100.0)
        frequency = t.frequency_hz * (1.0 + self._gain["frequency"] / 100.0) if t.voltage_v > 0 else 0.0
        return voltage, math.copysign(current, power_w if power_w else 1.0), power_w, frequency

    def _served_items(self) -> dict[int, Callable[[float], Value]]:
        """DI -> value at bench time `now`: what this meter answers to a read (others: no such data)."""

        def register(kwh: Callable[[], float]) -> Callable[[float], Value]:
            # The register shows whole hundredths of a kWh (truncated, as a meter's display counts).
            return lambda now: math.floor(kwh() * 100.0 + 1e-9) / 100.0

        m = self.metering
        items: dict[int, Callable[[float], Value]] = {
            0x00000000: register(lambda: m.forward_kwh + m.reverse_kwh),  # combination word 05: fwd + rev
            0x00010000: register(lambda: m.forward_kwh),
            0x00020000: register(lambda: m.reverse_kwh),
            0x02800002: lambda now: round(self._measured()[3], 2),
            0x02800007: lambda now: self.housekeeping.temperature_c,
            0x02800008: lambda now: self.housekeeping.battery_voltage_v,
            0x0280000A: lambda now: self.housekeeping.minutes_on_battery,
            0x03110000: lambda now: 0,  # power-down count: a power side (attach_power) serves the real one
            0x03300000: lambda now: self.programming_count,  # programming count
            0x04000101: lambda now: self.rtc.read(now).date(),
            0x04000102: lambda now: self.rtc.read(now).time(),
            0x04000501: lambda now: self._status_word_1(),
            0x02030000: lambda now: round(self._measured()[2] / 1000.0, 4),
        }
        phases = ("A",) if self.meter_type.wiring == "1P2W" else ("A", "B", "C")
        for n, _ in enumerate(phases, 1):
            # A rack feeds every element the same quantities (voltage in parallel, current in series).
            items[0x02010000 + n * 0x100] = lambda now: round(self._measured()[0], 1)
            items[0x02020000 + n * 0x100] = lambda now: round(self._measured()[1], 3)
            items[0x02030000 + n * 0x100] = lambda now: round(self._measured()[2] / 1000.0 / len(phases), 4)
        for n in range(1, 11):
            items[0x03110000 + n] = lambda now: (None, None)  # no power-down recorded yet
        for n in range(2, 8):
            items[0x04000500 + n] = lambda now: 0
        return items

    def _status_word_1(self) -> int:
        low = self.housekeeping.battery_voltage_v < self.housekeeping.battery_low_threshold_v
        return STATUS1_CLOCK_BATTERY_LOW if low else 0

    # ---- the server

    def _addressed(self, address: str, function: int) -> bool:
        """Own address, or abbreviated with AA wildcards for the reads and the address functions."""
        if address == self.address:
            return True
        wildcard_ok = function in (Function.READ, Function.READ_FOLLOW_UP, Function.READ_ADDRESS,
                                   Function.WRITE_ADDRESS)
        return wildcard_ok and all(w in ("AA", o) for w, o in zip(
            (address[i:i + 2] for i in range(0, 12, 2)), (self.address[i:i + 2] for i in range(0, 12, 2))))

    def respond(self, frame: Dlt645Frame | Dlt698Frame, now_s: float) -> Reply | None:
        """The reply to `frame` (None: the meter says nothing), and what to do after sending it."""
        if isinstance(frame, Dlt698Frame):
            reply = self.dlt698.respond(frame, now_s) if self.dlt698 is not None else None
            return (reply, None) if reply is not None else None
        if frame.is_reply:
            return None  # another device's reply on the line
        if frame.address == BROADCAST_ADDRESS:
            if frame.function_code == Function.BROADCAST_TIME:
                self._broadcast_time(frame, now_s)
            return None  # nobody answers a broadcast
        # A firmware that keeps its address high byte first reads the field of a request that way too.
        seen = _high_byte_first(frame.address) if self.knobs.address_high_byte_first else frame.address
        if not self._addressed(seen, frame.function_code) or frame.function_code == Function.BROADCAST_TIME:
            if seen != frame.address and self._addressed(frame.address, frame.function_code):
                # Its own address in the standard's order looks foreign to it: it refuses, echoing the field
                # as it came (as PyPI dlt645's server does: abnormal reply, "other error").
                echo = _high_byte_first(frame.address)  # encode_reply turns it back: the bytes as they came
                return Dlt645Frame(echo, frame.function_code | 0xC0, bytes((int(ErrorCode.OTHER),))), None
            return None  # not for this meter; a time sync not sent to all is ignored
        handler = _HANDLERS.get(frame.function_code)
        if handler is None:
            return self._error(frame, ErrorCode.OTHER)
        return handler(self, frame, now_s)

    def _error(self, frame: Dlt645Frame, error: ErrorCode) -> Reply | None:
        if self.knobs.silent_on_error:
            return None
        try:
            return abnormal_reply(self.address, frame.function, int(error)), None
        except FrameError:  # a function code the standard does not define
            return Dlt645Frame(self.address, frame.function_code | 0xC0, bytes((int(error),))), None

    def _read(self, frame: Dlt645Frame, now_s: float) -> Reply | None:
        try:
            di, _ = split_di(frame.data)
        except FrameError:
            return self._error(frame, ErrorCode.OTHER)
        getter = self.items.get(di)
        if getter is None:
            return self._error(frame, ErrorCode.NO_DATA)
        return frame.reply_to(encode_di(di) + encode_value(di, getter(now_s)), address=self.address), None

    def _password_ok(self, field_bytes: bytes) -> bool:
        level, digits = field_bytes[0], field_bytes[1:4][::-1].hex()
        return FACTORY_PASSWORDS.get(level) == digits

    def _write(self, frame: Dlt645Frame, now_s: float) -> Reply | None:
        if len(frame.data) < 12:
            return self._error(frame, ErrorCode.OTHER)
        di = int.from_bytes(frame.data[:4], "little")
        if self.security is not None and frame.data[4] in SECURED_LEVELS:
            return self.security.write(frame, now_s, _WRITABLE)  # levels 98/99: the ESAM checks
        if not self._password_ok(frame.data[4:8]):
            return self._error(frame, ErrorCode.UNAUTHORISED)
        setter = _WRITABLE.get(di)
        if setter is None:
            return self._error(frame, ErrorCode.NO_DATA if di not in DATA_ITEMS else ErrorCode.UNAUTHORISED)
        try:
            value = decode_value(di, frame.data[12:])
        except FrameError:
            return self._error(frame, ErrorCode.OTHER)
        setter(self, value, now_s)
        self.programming_count += 1  # every parameter write taken is a programming event
        return frame.reply_to(b"", address=self.address), None

    def _set_date(self, value: Value, now_s: float) -> None:
        assert isinstance(value, dt.date)
        self._set_clock(dt.datetime.combine(value, self.rtc.read(now_s).time()), now_s)

    def _set_time(self, value: Value, now_s: float) -> None:
        assert isinstance(value, dt.time)
        self._set_clock(dt.datetime.combine(self.rtc.read(now_s).date(), value), now_s)

    def _set_clock(self, moment: dt.datetime, now_s: float) -> None:
        """Set the RTC by a write; the clock-setting log (`clock_set_listeners`) hears the time before and after."""
        before = self.rtc.read(now_s)
        self.rtc.set(moment, now_s)
        for listener in self.clock_set_listeners:
            listener(before, moment)

    def _read_address(self, frame: Dlt645Frame, now_s: float) -> Reply | None:
        return frame.reply_to(address_to_wire(self.address), address=self.address), None

    def _write_address(self, frame: Dlt645Frame, now_s: float) -> Reply | None:
        try:
            new = address_from_wire(frame.data)
        except FrameError:
            return self._error(frame, ErrorCode.OTHER)
        if "A" in new or new == BROADCAST_ADDRESS:
            return self._error(frame, ErrorCode.OTHER)
        self.address = new
        return frame.reply_to(b"", address=new), None

    def _change_baud(self, frame: Dlt645Frame, now_s: float) -> Reply | None:
        try:
            baud = baud_from_word(frame.data[0]) if len(frame.data) == 1 else 0
        except FrameError:
            baud = 0
        if baud not in SUPPORTED_BAUDS:
            return self._error(frame, ErrorCode.BAUD_UNCHANGEABLE)

        def switch() -> None:
            # The reply goes out at the old rate; the port switches once it has been sent.
            self.line = Line(baud, self.line.bytesize, self.line.parity, self.line.stopbits)

        return frame.reply_to(frame.data, address=self.address), switch

    def _broadcast_time(self, frame: Dlt645Frame, now_s: float) -> None:
        if len(frame.data) != 6:
            self.broadcasts_refused.append("length not 6")
            return
        try:
            new_time = decode_broadcast_time(frame.data)
        except FrameError:
            self.broadcasts_refused.append("not a valid time")
            return
        meter_time = self.rtc.read(now_s)
        reason = None if self.knobs.broadcast_time_always_accepted else broadcast_refusal(
            meter_time, new_time, self.last_broadcast_sync)
        if reason is not None:
            self.broadcasts_refused.append(reason)
            return
        self.rtc.set(new_time, now_s)
        self.last_broadcast_sync = new_time.date()

    # ---- the bytes it sends

    def reply_delay_s(self) -> float:
        """Bench time from the end of a request to the first byte of the reply (seeded jitter)."""
        esam_s = self.security.take_busy_s() if self.security is not None else 0.0  # the ESAM's APDUs
        return max(0.0, self.knobs.reply_delay_s + self.rng.uniform(-REPLY_JITTER_S, REPLY_JITTER_S)) + esam_s

    def encode_reply(self, reply: Dlt645Frame | Dlt698Frame) -> bytes:
        """The wire bytes of a reply as this meter's firmware builds them (defect knobs applied)."""
        if isinstance(reply, Dlt698Frame):
            assert self.dlt698 is not None  # only its server makes 698 replies
            return self.dlt698.encode(reply)
        knobs = self.knobs
        address, control, data = reply.address, reply.control, reply.data
        if knobs.address_high_byte_first:
            address = _high_byte_first(address)
            if reply.function_code == Function.READ_ADDRESS:
                data = data[::-1]
        if knobs.wrong_control_bits and not reply.is_abnormal:
            control |= 0x20  # claims follow-up frames that never come
        if knobs.no_data_offset:
            data = bytes((b - 0x33) & 0xFF for b in data)  # the codec adds 33H back: the wire has it plain
        raw = bytearray(encode(Dlt645Frame(address, control, data), preamble=REPLY_PREAMBLE))
        if knobs.checksum_error:
            raw[-2] = (raw[-2] + 1) & 0xFF
        return bytes(raw)


def _high_byte_first(address: str) -> str:
    """The address with its bytes in the other order (a firmware that sends and reads it high byte first)."""
    return "".join(address[i:i + 2] for i in range(10, -1, -2))


_HANDLERS: Final[Mapping[int, Callable[[ManagementModule, Dlt645Frame, float], Reply | None]]] = {
    Function.READ: ManagementModule._read,
    Function.WRITE: ManagementModule._write,
    Function.READ_ADDRESS: ManagementModule._read_address,
    Function.WRITE_ADDRESS: ManagementModule._write_address,
    Function.CHANGE_BAUD: ManagementModule._change_baud,
    Function.SECURITY: lambda meter, frame, now_s: _secured(meter, frame, now_s),
    Function.CONTROL: lambda meter, frame, now_s: _secured(meter, frame, now_s),
}
_WRITABLE: Final[Mapping[int, Callable[[ManagementModule, Value, float], None]]] = {
    0x04000101: ManagementModule._set_date,
    0x04000102: ManagementModule._set_time,
}


# ---------------------------------------------------------------- ESAM-backed security
# 03H and 1CH, and 14H at password levels 98 (ciphertext + MAC) / 99 (MAC), go to the MCU's security
# firmware (rig.twin.security) and its ESAM; a meter built without them answers "other error".

SECURED_LEVELS: Final = frozenset({0x98, 0x99})


def _secured(meter: ManagementModule, frame: Dlt645Frame, now_s: float) -> Reply | None:
    security = meter.security
    if security is None:
        return meter._error(frame, ErrorCode.OTHER)
    if frame.function_code == Function.SECURITY:
        return security.security(frame, now_s)
    return security.control(frame, now_s)
