"""The twin meter's management-MCU firmware for ESAM-backed security: identity authentication (03H,
DI 07 00 00 FF), validity (07 00 01 FF) and session end (07 00 02 FF), remote control (1CH, level 98)
and protected writes (14H, levels 98 and 99), the daily reset of the MAC-error count, and the bits of
running status word 3 they set.

Twin side: speaks APDUs to its `Esam` in the reference's firmware sequence and frames through the codec
only; it never uses the rig's master-station code. The relay it drives belongs to the expansion module.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from drivers.dlt645 import (
    DATA_ITEMS,
    ControlErrorCode,
    Dlt645Frame,
    ErrorCode,
    Function,
    SecurityErrorCode,
    Value,
    abnormal_reply,
    decode_datetime,
    decode_value,
)
from drivers.errors import FrameError
from rig.config import SecurityKnobs
from rig.twin.esam import (
    CIPHER_PARAMETER_FILE,
    CONTROL_FILE,
    INFO_FILE,
    MAC_ERRORS_OFFSET,
    MAC_PARAMETER_FILE,
    METER_NUMBER_OFFSET,
    PARAMETER_FILE,
    RUNNING_FILE,
    SW_BLOCKED,
    SW_OK,
    SW_SECURITY_STATUS,
    VALIDITY_OFFSET,
    Esam,
)
from rig.twin.relay import Relay

if TYPE_CHECKING:
    from rig.twin.management import ManagementModule, Reply

# Data identifiers of the 03H security functions, as they arrive (low byte first).
AUTHENTICATE: Final = bytes((0xFF, 0x00, 0x00, 0x07))
SET_VALIDITY: Final = bytes((0xFF, 0x01, 0x00, 0x07))
END_SESSION: Final = bytes((0xFF, 0x02, 0x00, 0x07))
CIPHERTEXT_LEVEL: Final = 0x98
MAC_LEVEL: Final = 0x99
SECURED_LEVELS: Final = frozenset({CIPHERTEXT_LEVEL, MAC_LEVEL})
STATUS_WORD_3: Final = 0x04000503

# Running status word 3 (State Grid extension of DL/T 645-2007).
RELAY_OPEN_BIT: Final = 1 << 4
RELAY_TRIP_COMMAND_BIT: Final = 1 << 6
ALARM_BIT: Final = 1 << 7
KEEP_POWER_BIT: Final = 1 << 12
AUTHENTICATED_BIT: Final = 1 << 13

# N1 of a remote-control command.
TRIP: Final = 0x1A
CLOSE_ALLOWED: Final = 0x1B
DIRECT_CLOSE: Final = 0x1C
ALARM_ON: Final = 0x2A
ALARM_OFF: Final = 0x2B
KEEP_POWER_ON: Final = 0x3A
KEEP_POWER_OFF: Final = 0x3B


def _apdu(cla: int, ins: int, p1: int, p2: int, p3: int, data: bytes = b"") -> bytes:
    return bytes((cla, ins, p1, p2, p3)) + data


@dataclass
class MeterSecurity:
    """The MCU's security handlers of one twin meter, its ESAM and the relay it drives."""

    management: ManagementModule
    esam: Esam
    relay: Relay
    knobs: SecurityKnobs
    _day: dt.date | None = field(default=None, init=False)

    def attach(self) -> None:
        """Serve running status word 3 with this module's bits (ORed over whatever else it carries)."""
        items = self.management.items
        before = items.get(STATUS_WORD_3)

        def word(now: float) -> Value:
            other = before(now) if before is not None else 0
            return (other if isinstance(other, int) else 0) | self.status_word_3(now)

        items[STATUS_WORD_3] = word

    # ---- helpers

    def _sw(self, apdu: bytes) -> tuple[int, bytes]:
        response = self.esam.transmit(apdu)
        return int.from_bytes(response[-2:], "big"), response[:-2]

    def take_busy_s(self) -> float:
        """Bench time the ESAM worked for the request just handled, s (the reply waits for it)."""
        return self.esam.take_busy_s()

    def _daily_reset(self, now_s: float) -> None:
        """At the first request of a new day (the meter's clock), the MAC-error count starts again."""
        today = self.management.rtc.read(now_s).date()
        if self._day is not None and today != self._day:
            self._sw(_apdu(0x00, 0xD6, 0x80 | RUNNING_FILE, MAC_ERRORS_OFFSET, 2, bytes(2)))
        self._day = today

    def status_word_3(self, now_s: float) -> int:
        """Relay, alarm, keep-power and identity-authentication bits of running status word 3."""
        relay = self.relay
        word = 0
        word |= RELAY_OPEN_BIT if relay.is_open else 0
        word |= RELAY_TRIP_COMMAND_BIT if relay.trip_commanded else 0
        word |= ALARM_BIT if relay.alarm else 0
        word |= KEEP_POWER_BIT if relay.keep_power else 0
        word |= AUTHENTICATED_BIT if self.esam.session_open() else 0
        return word

    def _abnormal(self, function: Function, error: int) -> Reply | None:
        if self.management.knobs.silent_on_error:
            return None
        return abnormal_reply(self.management.address, function, error), None

    def _ok(self, frame: Dlt645Frame, data: bytes = b"", after: Callable[[], None] | None = None) -> Reply:
        return frame.reply_to(data, address=self.management.address), after

    # ---- 03H: identity authentication, validity, session end

    def security(self, frame: Dlt645Frame, now_s: float) -> Reply | None:
        """A 03H request, by its data identifier."""
        self._daily_reset(now_s)
        di = frame.data[:4]
        if di == AUTHENTICATE:
            return self._authenticate(frame)
        if di == SET_VALIDITY:
            return self._set_validity(frame)
        if di == END_SESSION:
            if len(frame.data) < 8:
                return self._abnormal(Function.SECURITY, SecurityErrorCode.OTHER)
            self.esam.reset()  # the firmware drops the session by resetting the chip
            return self._ok(frame, di)
        return self._abnormal(Function.SECURITY, SecurityErrorCode.OTHER)

    def _authenticate(self, frame: Dlt645Frame) -> Reply | None:
        data = frame.data
        if len(data) != 32:
            return self._abnormal(Function.SECURITY, SecurityErrorCode.OTHER)
        # Each 8-byte field arrives lowest byte first: reversed for the chip.
        ciphertext1, random1, dispersion = data[8:16][::-1], data[16:24][::-1], data[24:32][::-1]
        esam = self.esam
        esam.reset()  # 1. reset; the ATR carries the serial
        status, number = self._sw(_apdu(0x00, 0xB0, 0x80 | PARAMETER_FILE, METER_NUMBER_OFFSET, 6))
        if status != SW_OK:
            return self._abnormal(Function.SECURITY, SecurityErrorCode.OTHER)
        if not self.knobs.dispersion_not_checked and dispersion != bytes(2) + number:
            return self._abnormal(Function.SECURITY, SecurityErrorCode.OTHER)
        status, _ = self._sw(_apdu(0x80, 0xFA, 0x00, 0x03, 8, dispersion))  # 2. disperse the key
        if status != SW_OK:
            return self._esam_refused(status)
        status, _ = self._sw(_apdu(0x80, 0xFA, 0x00, 0x00, 8, random1))  # 3. encrypt random1
        if status != 0x6108:
            return self._esam_refused(status)
        status, ciphertext2 = self._sw(_apdu(0x00, 0xC0, 0x00, 0x00, 8))  # 4. fetch ciphertext2
        if status != SW_OK or ciphertext2 != ciphertext1:
            return self._abnormal(Function.SECURITY, SecurityErrorCode.IDENTITY_AUTHENTICATION_FAILED)
        status, random2 = self._sw(_apdu(0x00, 0x84, 0x00, 0x00, 4))  # 5. challenge: random2
        if status != SW_OK:
            return self._esam_refused(status)
        status, serial = self._sw(_apdu(0x00, 0xB0, 0x80 | INFO_FILE, 0x01, 8))  # 6. the ESAM serial
        if status != SW_OK:
            return self._esam_refused(status)
        return self._ok(frame, AUTHENTICATE + random2[::-1] + serial[::-1])

    def _esam_refused(self, status: int) -> Reply | None:
        error = SecurityErrorCode.METER_SUSPENDED if status == SW_BLOCKED else SecurityErrorCode.OTHER
        return self._abnormal(Function.SECURITY, error)

    def _set_validity(self, frame: Dlt645Frame) -> Reply | None:
        data = frame.data
        if len(data) != 4 + 4 + 2 + 4 + 4:
            return self._abnormal(Function.SECURITY, SecurityErrorCode.OTHER)
        minutes = data[8:10][::-1].hex()
        if not minutes.isdigit() or int(minutes) == 0:
            return self._abnormal(Function.SECURITY, SecurityErrorCode.OTHER)
        status = self._update_with_mac(Function.SECURITY, PARAMETER_FILE, VALIDITY_OFFSET, data[:4], data[8:10],
                                       data[10:14], data[14:18])
        if status == SW_OK:
            return self._ok(frame, data[:4])
        error = {SW_BLOCKED: SecurityErrorCode.METER_SUSPENDED,
                 SW_SECURITY_STATUS: SecurityErrorCode.IDENTITY_AUTHENTICATION_FAILED}.get(
            status, SecurityErrorCode.ESAM_VERIFICATION_FAILED)
        return self._abnormal(Function.SECURITY, error)

    def _update_with_mac(self, function: Function, file: int, offset: int, selector: bytes, body: bytes,
                         counter_wire: bytes, mac_wire: bytes) -> int:
        """04 D6 to the ESAM: function || selector || body || counter || MAC, fields back in chip order."""
        payload = bytes((int(function),)) + selector + body + counter_wire[::-1] + mac_wire[::-1]
        if len(payload) > 255:
            return 0x6700
        status, _ = self._sw(_apdu(0x04, 0xD6, 0x80 | file, offset, len(payload), payload))
        return status

    # ---- 1CH: remote control

    def control(self, frame: Dlt645Frame, now_s: float) -> Reply | None:
        """A remote-control command: level 98 ciphertext, verified and decrypted by the ESAM."""
        self._daily_reset(now_s)
        data = frame.data
        if len(data) < 8 or data[0] != CIPHERTEXT_LEVEL:
            return self._abnormal(Function.CONTROL, ControlErrorCode.UNAUTHORISED)
        if len(data) < 8 + 16 + 8:
            return self._abnormal(Function.CONTROL, ControlErrorCode.MAC_ERROR)
        status = self._update_with_mac(Function.CONTROL, CONTROL_FILE, 0, data[:4], data[8:-8][::-1], data[-8:-4],
                                       data[-4:])
        if status != SW_OK:
            error = {SW_BLOCKED: ControlErrorCode.SUSPENDED,
                     SW_SECURITY_STATUS: ControlErrorCode.AUTHENTICATION_TIMED_OUT}.get(status,
                                                                                    ControlErrorCode.MAC_ERROR)
            return self._abnormal(Function.CONTROL, error)
        status, plain = self._sw(_apdu(0x00, 0xB0, 0x80 | CONTROL_FILE, 0, 8))
        if status != SW_OK:
            return self._abnormal(Function.CONTROL, ControlErrorCode.MAC_ERROR)
        try:
            deadline = decode_datetime(plain[2:8])
        except FrameError:
            return self._abnormal(Function.CONTROL, ControlErrorCode.UNAUTHORISED)
        if deadline < self.management.rtc.read(now_s) and not self.knobs.deadline_not_checked:
            return self._abnormal(Function.CONTROL, ControlErrorCode.DEADLINE_PASSED)
        relay = self.relay
        command = plain[0]
        if command == TRIP and relay.keep_power:
            return self._abnormal(Function.CONTROL, ControlErrorCode.TRIP_REFUSED)
        action = _ACTIONS.get(command)
        if action is None:
            return self._abnormal(Function.CONTROL, ControlErrorCode.UNAUTHORISED)
        return self._ok(frame, b"", lambda: action(relay))  # the relay switches once the reply is out

    # ---- 14H at levels 98 / 99: protected parameter writes

    def write(self, frame: Dlt645Frame, now_s: float,
              writable: Mapping[int, Callable[[ManagementModule, Value, float], None]]) -> Reply | None:
        """A 14H write whose password level is 98 (ciphertext + MAC) or 99 (plain + MAC)."""
        self._daily_reset(now_s)
        data = frame.data
        di = int.from_bytes(data[:4], "little")
        item = DATA_ITEMS.get(di)
        setter = writable.get(di)
        if item is None or setter is None or item.format.length is None:
            return self._abnormal(Function.WRITE, ErrorCode.NO_DATA if item is None else ErrorCode.UNAUTHORISED)
        length = item.format.length
        rest = data[12:]
        if data[4] == MAC_LEVEL:
            if len(rest) != length + 8:
                return self._abnormal(Function.WRITE, ErrorCode.OTHER)
            value_bytes = rest[:length]
            status = self._update_with_mac(Function.WRITE, MAC_PARAMETER_FILE, 0, data[:4], value_bytes,
                                           rest[-8:-4], rest[-4:])
        else:
            if len(rest) < 16 + 8 or (len(rest) - 8) % 16:
                return self._abnormal(Function.WRITE, ErrorCode.OTHER)
            status = self._update_with_mac(Function.WRITE, CIPHER_PARAMETER_FILE, 0, data[:4], rest[:-8][::-1],
                                           rest[-8:-4], rest[-4:])
            if status == SW_OK:
                status, value_bytes = self._sw(_apdu(0x00, 0xB0, 0x80 | CIPHER_PARAMETER_FILE, 0, length))
        if status != SW_OK:
            return self._abnormal(Function.WRITE, ErrorCode.UNAUTHORISED)
        try:
            value = decode_value(di, value_bytes)
        except FrameError:
            return self._abnormal(Function.WRITE, ErrorCode.OTHER)
        setter(self.management, value, now_s)
        return self._ok(frame)


def _alarm(relay: Relay, on: bool) -> None:
    relay.alarm = on


def _keep_power(relay: Relay, on: bool) -> None:
    relay.keep_power = on


_ACTIONS: Final[Mapping[int, Callable[[Relay], None]]] = {
    TRIP: Relay.trip,
    CLOSE_ALLOWED: Relay.allow_close,
    DIRECT_CLOSE: Relay.close,
    ALARM_ON: lambda relay: _alarm(relay, True),
    ALARM_OFF: lambda relay: _alarm(relay, False),
    KEEP_POWER_ON: lambda relay: _keep_power(relay, True),
    KEEP_POWER_OFF: lambda relay: _keep_power(relay, False),
}


def build_security(management: ManagementModule, relay: Relay, is_open_hooks: list[Callable[[], bool]],
                   knobs: SecurityKnobs, master_key: bytes, seed: str) -> MeterSecurity:
    """Fit a twin meter with its ESAM (serial from `seed`, meter number = its address) and security
    firmware; its relay joins the series current loop through `is_open_hooks` (the World's breakers)."""
    rng = random.Random(seed)
    world = management.world
    esam = Esam(master_key, meter_number=management.address, serial=rng.randbytes(8), knobs=knobs, rng=rng,
                clock=lambda: world.time_s)
    security = MeterSecurity(management, esam, relay, knobs)
    management.security = security
    security.attach()
    is_open_hooks.append(lambda: relay.contacts_open)  # the contacts, not what the meter reports
    return security
