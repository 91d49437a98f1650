"""The master station's ESAM session over DL/T 645, sans-IO (drivers layer): requests out, replies in.

Identity authentication (03H, DI 07 00 00 FF), session validity (07 00 01 FF, with MAC), protected
commands (1CH remote control with ciphertext at password level 98; 14H writes with MAC at level 99 or
ciphertext and MAC at level 98), session end (07 00 02 FF) and the per-session command counter. Keys
stay in the `KeySource`; times are passed in (bench seconds), nothing here does I/O or keeps a clock.

Wire layout of the emulation (README "ESAM-backed security"): every crypto field (ciphertext, random,
dispersion factor, ESAM serial, MAC, counter) goes on the wire lowest byte first, i.e. reversed; the MAC
covers function (1) || the first 4 data bytes (DI, or the password field of 1CH) || body || counter (4,
big-endian), where body is the value (level 99) or its ciphertext (level 98).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field, replace
from enum import Enum, IntEnum
from typing import Final

from drivers.crypto import random_bytes
from drivers.dlt645.abnormal import ControlErrorCode, ErrorCode, SecurityErrorCode, abnormal_error
from drivers.dlt645.frame import Dlt645Frame, Function
from drivers.dlt645.identifiers import Value, encode_datetime, encode_di, encode_value
from drivers.errors import FrameError, SecurityError, ValidationError
from drivers.security.keys import (
    CIPHERTEXT1_BYTES,
    DISPERSION_BYTES,
    MAC_BYTES,
    RANDOM1_BYTES,
    RANDOM2_BYTES,
    KeySource,
    SessionHandle,
    dispersion_factor,
)

AUTHENTICATE_DI: Final = 0x070000FF
SET_VALIDITY_DI: Final = 0x070001FF
END_SESSION_DI: Final = 0x070002FF
CIPHERTEXT_LEVEL: Final = 0x98  # password level: ciphertext and MAC
MAC_LEVEL: Final = 0x99  # password level: plaintext and MAC
COUNTER_BYTES: Final = 4
ESAM_SERIAL_BYTES: Final = 8
MAX_VALIDITY_MIN: Final = 9999  # 2 BCD bytes

__all__ = [
    "AUTHENTICATE_DI",
    "CIPHERTEXT_LEVEL",
    "END_SESSION_DI",
    "MAC_LEVEL",
    "SET_VALIDITY_DI",
    "Accepted",
    "Authenticated",
    "EsamSession",
    "RemoteControl",
    "RequestKind",
    "SecureRequest",
    "SecurityRefused",
    "SessionState",
]


class RemoteControl(IntEnum):
    """N1 of a remote-control (1CH) command."""

    TRIP = 0x1A
    CLOSE_ALLOWED = 0x1B
    DIRECT_CLOSE = 0x1C
    ALARM_ON = 0x2A
    ALARM_OFF = 0x2B
    KEEP_POWER_ON = 0x3A
    KEEP_POWER_OFF = 0x3B


class RequestKind(Enum):
    """What a secure request asks of the meter."""

    AUTHENTICATION = "identity authentication"
    VALIDITY = "session validity write"
    CONTROL = "remote control"
    WRITE = "protected write"
    END = "session end"


class SessionState(Enum):
    """Where the master station's session with one meter is."""

    IDLE = "idle"  # never authenticated
    AUTHENTICATING = "authenticating"  # request sent, no reply handled yet
    OPEN = "open"
    ENDED = "ended"  # ended, refused or expired; the last session's keys are kept until re-authentication


# Why a meter refuses, by the error word's type (the flag types share values, so they key separately).
_HINTS: Final[dict[type, dict[int, str]]] = {
    SecurityErrorCode: {
        SecurityErrorCode.OTHER: "the dispersion factor may not be this meter's number, or the request is malformed",
        SecurityErrorCode.ESAM_VERIFICATION_FAILED: "the MAC did not verify (wrong session, tampered data or replay)",
        SecurityErrorCode.IDENTITY_AUTHENTICATION_FAILED: "ciphertext1 did not match (wrong key or wrong "
                                                          "ciphertext), or no open session",
        SecurityErrorCode.METER_SUSPENDED: "too many MAC errors today; nothing secured until the daily reset",
    },
    ControlErrorCode: {
        ControlErrorCode.SUSPENDED: "too many MAC errors today; suspended until the meter's daily reset",
        ControlErrorCode.MAC_ERROR: "the MAC or ciphertext did not verify, or the frame was a replay",
        ControlErrorCode.UNAUTHORISED: "not a level-98 ciphertext command, or a command the meter does not know",
        ControlErrorCode.AUTHENTICATION_TIMED_OUT: "no open identity authentication (never opened, ended or expired)",
        ControlErrorCode.DEADLINE_PASSED: "the command's deadline is earlier than the meter's clock",
        ControlErrorCode.TRIP_REFUSED: "keep-power is on",
    },
    ErrorCode: {
        ErrorCode.UNAUTHORISED: "no open session, or the MAC or ciphertext did not verify",
    },
}


class SecurityRefused(SecurityError):
    """The meter refused a secure request with an abnormal reply; `error` is its error word."""

    def __init__(self, message: str, kind: RequestKind, error: ErrorCode | SecurityErrorCode | ControlErrorCode,
                 reply: Dlt645Frame) -> None:
        super().__init__(message)
        self.kind = kind
        self.error = error
        self.reply = reply


@dataclass(frozen=True)
class SecureRequest:
    """A request frame, the byte ranges of its fields in the plain data, and what its reply needs."""

    kind: RequestKind
    frame: Dlt645Frame
    fields: dict[str, tuple[int, int]] = field(default_factory=dict)
    counter: int | None = None
    dispersion: bytes | None = None
    random1: bytes | None = None
    minutes: int | None = None

    def tampered(self, field_name: str, *, bit: int = 0) -> SecureRequest:
        """The same request with one bit of field `field_name` flipped (e.g. 'mac', 'ciphertext')."""
        if field_name not in self.fields:
            raise ValidationError(f"{self.kind.value} request has no field {field_name!r}; it has "
                                  f"{', '.join(self.fields)}")
        if not 0 <= bit <= 7:
            raise ValidationError(f"bit {bit!r} must be 0..7")
        start, _ = self.fields[field_name]
        data = bytearray(self.frame.data)
        data[start] ^= 1 << bit
        return replace(self, frame=Dlt645Frame(self.frame.address, self.frame.control, bytes(data)))


@dataclass(frozen=True)
class Authenticated:
    """The meter accepted the identity authentication."""

    random2: bytes
    esam_serial: bytes
    opened_at_s: float


@dataclass(frozen=True)
class Accepted:
    """The meter accepted a request (normal reply)."""

    kind: RequestKind
    counter: int | None


def _operator_field(operator: str) -> bytes:
    if len(operator) != 8:
        raise ValidationError(f"operator code {operator!r} must be 8 hex digits")
    try:
        return bytes.fromhex(operator)[::-1]
    except ValueError:
        raise ValidationError(f"operator code {operator!r} must be 8 hex digits") from None


def _bcd_minutes(minutes: int) -> bytes:
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_VALIDITY_MIN:
        raise ValidationError(f"session validity {minutes!r} min must be an int in 1..{MAX_VALIDITY_MIN}")
    return bytes.fromhex(f"{minutes:04d}")[::-1]


class EsamSession:
    """One meter's secure session as the master station keeps it (sans-IO).

    Build a request, send its `frame` however you like, and give the reply (or the abnormal reply) to
    `handle_reply`; it returns an event or raises `SecurityRefused` (the meter said no) or `FrameError`
    (the reply is not what the standard says). `validity_min`: what the meter's session validity is
    believed to be until this station sets it (None: unknown, the meter decides)."""

    def __init__(self, address: str, keys: KeySource, *, meter_number: str | None = None,
                 operator: str = "00000000", validity_min: int | None = None,
                 rng: random.Random | None = None) -> None:
        Dlt645Frame(address, int(Function.SECURITY))  # FrameError now for a bad address
        if not isinstance(keys, KeySource):
            raise ValidationError(f"keys must be a KeySource, got {type(keys).__name__}")
        self.address = address
        self.keys = keys
        self.meter_number = meter_number if meter_number is not None else address
        self.dispersion = dispersion_factor(self.meter_number)
        self.operator = operator
        self._operator = _operator_field(operator)
        self.validity_min = validity_min
        self.state = SessionState.IDLE
        self.counter = 0  # the last counter used in this session (0: none yet)
        self.opened_at_s: float | None = None
        self.valid_until_s: float | None = None
        self.random2: bytes | None = None
        self.esam_serial: bytes | None = None
        self._rng = rng
        self._handle: SessionHandle | None = None

    def __repr__(self) -> str:
        return f"EsamSession(meter {self.address}, {self.state.value}, counter {self.counter}, {self.keys.description})"

    # ---- state

    def is_open(self, now_s: float) -> bool:
        """True while this station holds an open session it believes the meter still honours."""
        if self.state is not SessionState.OPEN:
            return False
        return self.valid_until_s is None or now_s < self.valid_until_s

    def _require_keys(self, now_s: float | None, even_if_closed: bool) -> SessionHandle:
        if self._handle is None:
            raise SecurityError(f"meter {self.address}: no session keys yet; authenticate first (DI 07 00 00 FF)")
        if not even_if_closed and (now_s is None or not self.is_open(now_s)):
            why = ("the session validity has passed" if self.state is SessionState.OPEN else
                   f"the session is {self.state.value}")
            raise SecurityError(f"meter {self.address}: no open session ({why}); authenticate again")
        return self._handle

    def forget(self) -> None:
        """Drop the session keys from the key source (the meter is not told: see `end_request`)."""
        if self._handle is not None:
            self.keys.close_session(self._handle)
        self._handle = None
        self.state = SessionState.IDLE if self.state is SessionState.IDLE else SessionState.ENDED

    # ---- requests

    def authentication_request(self, *, random1: bytes | None = None, dispersion: bytes | None = None,
                               ciphertext1: bytes | None = None) -> SecureRequest:
        """Identity authentication (03H, DI 07 00 00 FF): operator code, ciphertext1, random1 and the
        dispersion factor (each 8-byte field reversed). `dispersion`: another meter's factor (tests);
        `ciphertext1`: a given one instead of the key source's (tests)."""
        d = self.dispersion if dispersion is None else bytes(dispersion)
        if len(d) != DISPERSION_BYTES:
            raise ValidationError(f"dispersion factor must be {DISPERSION_BYTES} bytes, got {len(d)}")
        r1 = random_bytes(RANDOM1_BYTES, self._rng) if random1 is None else bytes(random1)
        if len(r1) != RANDOM1_BYTES:
            raise ValidationError(f"random1 must be {RANDOM1_BYTES} bytes, got {len(r1)}")
        c1 = self.keys.authentication_ciphertext(d, r1) if ciphertext1 is None else bytes(ciphertext1)
        if len(c1) != CIPHERTEXT1_BYTES:
            raise ValidationError(f"ciphertext1 must be {CIPHERTEXT1_BYTES} bytes, got {len(c1)}")
        data = encode_di(AUTHENTICATE_DI) + self._operator + c1[::-1] + r1[::-1] + d[::-1]
        self.state = SessionState.AUTHENTICATING
        return SecureRequest(RequestKind.AUTHENTICATION, Dlt645Frame.request(self.address, Function.SECURITY, data),
                             {"di": (0, 4), "operator": (4, 8), "ciphertext1": (8, 16), "random1": (16, 24),
                              "dispersion": (24, 32)}, dispersion=d, random1=r1)

    def _protect(self, function: Function, head: bytes, body: bytes, *, encrypt: bool, now_s: float | None,
                 even_if_closed: bool) -> tuple[bytes, dict[str, tuple[int, int]], int]:
        """head || body' || counter || MAC, where body' is body or its ciphertext (both fields reversed)."""
        handle = self._require_keys(now_s, even_if_closed)
        self.counter += 1
        counter = self.counter.to_bytes(COUNTER_BYTES, "big")
        protected = self.keys.encrypt(handle, body) if encrypt else body
        mac = self.keys.mac(handle, bytes((int(function),)) + head[:4] + protected + counter)
        shown = protected[::-1] if encrypt else protected
        data = head + shown + counter[::-1] + mac[::-1]
        at = len(head)
        fields = {"ciphertext" if encrypt else "value": (at, at + len(shown)),
                  "counter": (at + len(shown), at + len(shown) + COUNTER_BYTES),
                  "mac": (len(data) - MAC_BYTES, len(data))}
        return data, fields, self.counter

    def validity_request(self, minutes: int, *, now_s: float | None = None,
                         even_if_closed: bool = False) -> SecureRequest:
        """Set the meter's identity-authentication validity (03H, DI 07 00 01 FF, BCD minutes, with MAC)."""
        head = encode_di(SET_VALIDITY_DI) + self._operator
        data, fields, counter = self._protect(Function.SECURITY, head, _bcd_minutes(minutes), encrypt=False,
                                              now_s=now_s, even_if_closed=even_if_closed)
        return SecureRequest(RequestKind.VALIDITY, Dlt645Frame.request(self.address, Function.SECURITY, data),
                             {"di": (0, 4), **fields}, counter=counter, minutes=minutes)

    def control_request(self, command: RemoteControl, deadline: dt.datetime, *, now_s: float | None = None,
                        even_if_closed: bool = False) -> SecureRequest:
        """Remote control (1CH) at level 98: N1 command, N2 reserved, N3..N8 deadline ssmmhhDDMMYY, as
        ciphertext with counter and MAC. `even_if_closed`: build it with the last session's keys anyway
        (to test that the meter refuses it)."""
        plain = bytes((int(RemoteControl(command)), 0)) + encode_datetime(deadline)
        head = bytes((CIPHERTEXT_LEVEL, 0, 0, 0)) + self._operator
        data, fields, counter = self._protect(Function.CONTROL, head, plain, encrypt=True, now_s=now_s,
                                              even_if_closed=even_if_closed)
        return SecureRequest(RequestKind.CONTROL, Dlt645Frame.request(self.address, Function.CONTROL, data),
                             {"password": (0, 4), "operator": (4, 8), **fields}, counter=counter)

    def write_request(self, di: int, value: Value, *, level: int = MAC_LEVEL, now_s: float | None = None,
                      even_if_closed: bool = False) -> SecureRequest:
        """A 14H write of `di` at level 99 (value in plain with MAC) or 98 (value as ciphertext with MAC)."""
        if level not in (MAC_LEVEL, CIPHERTEXT_LEVEL):
            raise ValidationError(f"password level {level:#x} is not a secured level (0x98 ciphertext, 0x99 MAC)")
        head = encode_di(di) + bytes((level, 0, 0, 0)) + self._operator
        data, fields, counter = self._protect(Function.WRITE, head, encode_value(di, value),
                                              encrypt=level == CIPHERTEXT_LEVEL, now_s=now_s,
                                              even_if_closed=even_if_closed)
        return SecureRequest(RequestKind.WRITE, Dlt645Frame.request(self.address, Function.WRITE, data),
                             {"di": (0, 4), "password": (4, 8), "operator": (8, 12), **fields}, counter=counter)

    def end_request(self) -> SecureRequest:
        """End the identity authentication at the meter (03H, DI 07 00 02 FF)."""
        data = encode_di(END_SESSION_DI) + self._operator
        return SecureRequest(RequestKind.END, Dlt645Frame.request(self.address, Function.SECURITY, data),
                             {"di": (0, 4), "operator": (4, 8)})

    # ---- replies

    def handle_reply(self, request: SecureRequest, reply: Dlt645Frame, now_s: float) -> Authenticated | Accepted:
        """The event of `reply` to `request`; SecurityRefused for an abnormal reply, FrameError for a reply
        that is not one (wrong address, function, length or DI)."""
        function = request.frame.function
        what = f"{request.kind.value} ({function.value:02X}H)"
        meter = f"meter {self.address}"
        if not reply.is_reply or reply.function_code != function:
            raise FrameError(f"{meter}: reply to {what} has control byte 0x{reply.control:02X}")
        if reply.address != self.address:
            raise FrameError(f"{meter}: reply to {what} comes from address {reply.address}")
        if reply.is_abnormal:
            self._refused(request)
            try:
                error = abnormal_error(reply)
            except FrameError as exc:
                raise FrameError(f"{meter}: abnormal reply to {what}: {exc}") from None
            name = error.name or "unknown error bits"
            hint = _HINTS.get(type(error), {}).get(int(error))
            raise SecurityRefused(f"{meter} refused the {what}: {name} (error word 0x{int(error):04X})"
                                  + (f"; {hint}" if hint else ""), request.kind, error, reply)
        if reply.has_follow_up:
            raise FrameError(f"{meter}: reply to {what} announces follow-up frames")
        if request.kind is RequestKind.AUTHENTICATION:
            return self._authenticated(request, reply, now_s)
        expected = request.frame.data[:4] if function is Function.SECURITY else b""
        if reply.data != expected:
            want = f"the DI {expected[::-1].hex().upper()}" if expected else "no data (L = 0)"
            raise FrameError(f"{meter}: reply to {what} carries {len(reply.data)} byte(s), expected {want}")
        if request.kind is RequestKind.VALIDITY and request.minutes is not None:
            self.validity_min = request.minutes
            if self.state is SessionState.OPEN:
                self.valid_until_s = now_s + 60.0 * request.minutes  # the meter restarts its countdown
        elif request.kind is RequestKind.END:
            self.state = SessionState.ENDED
        return Accepted(request.kind, request.counter)

    def _refused(self, request: SecureRequest) -> None:
        if request.kind is RequestKind.AUTHENTICATION:
            self.state = SessionState.ENDED if self._handle is not None else SessionState.IDLE

    def _authenticated(self, request: SecureRequest, reply: Dlt645Frame, now_s: float) -> Authenticated:
        meter = f"meter {self.address}"
        size = 4 + RANDOM2_BYTES + ESAM_SERIAL_BYTES
        if len(reply.data) != size:
            self.state = SessionState.IDLE if self._handle is None else SessionState.ENDED
            raise FrameError(f"{meter}: identity authentication reply carries {len(reply.data)} byte(s), expected "
                             f"{size} (DI, random2 (4), ESAM serial (8)): truncated or padded")
        if reply.data[:4] != encode_di(AUTHENTICATE_DI):
            raise FrameError(f"{meter}: identity authentication reply carries DI "
                             f"{reply.data[:4][::-1].hex().upper()}, expected 070000FF")
        assert request.dispersion is not None and request.random1 is not None
        random2 = reply.data[4:8][::-1]
        serial = reply.data[8:16][::-1]
        if self._handle is not None:
            self.keys.close_session(self._handle)
        self._handle = self.keys.open_session(request.dispersion, request.random1, random2)
        self.state = SessionState.OPEN
        self.counter = 0
        self.opened_at_s = now_s
        self.valid_until_s = None if self.validity_min is None else now_s + 60.0 * self.validity_min
        self.random2, self.esam_serial = random2, serial
        return Authenticated(random2, serial, now_s)
