"""The master station's key source (drivers layer): the one place host-side key material lives.

`KeySource` is the interface the master-station session uses; it offers operations, never keys, as a
lab's real encryptor (a PCI cryptographic device, a USB ESAM reader) does. `SoftwareKeySource` implements
the documented SM4 emulation of the twin (README "ESAM-backed security"; not State Grid-compatible)
from a 16-byte master key read from a key file or environment variable. Nothing here prints, logs or
returns key material; imports nothing above the drivers layer.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from drivers.crypto import (
    KEY_BYTES,
    Sm4CbcMac,
    pad_iso9797_m2,
    random_bytes,
    sm4_cbc_decrypt,
    sm4_cbc_encrypt,
    sm4_ecb_encrypt,
    unpad_iso9797_m2,
)
from drivers.errors import SecurityError, ValidationError

DISPERSION_BYTES: Final = 8
RANDOM1_BYTES: Final = 8
RANDOM2_BYTES: Final = 4
CIPHERTEXT1_BYTES: Final = 8
MAC_BYTES: Final = 4

__all__ = [
    "CIPHERTEXT1_BYTES",
    "DISPERSION_BYTES",
    "MAC_BYTES",
    "RANDOM1_BYTES",
    "RANDOM2_BYTES",
    "KeySource",
    "SessionHandle",
    "SoftwareKeySource",
    "dispersion_factor",
]


def dispersion_factor(meter_number: str) -> bytes:
    """The 8-byte dispersion factor of a meter: 00 00 and the 6-byte meter number (12 digits, BCD)."""
    if not isinstance(meter_number, str) or len(meter_number) != 12 or not meter_number.isdigit():
        raise ValidationError(f"meter number {meter_number!r} must be 12 decimal digits, e.g. '000000000001'")
    return bytes(2) + bytes.fromhex(meter_number)


def _check(name: str, value: object, length: int) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise ValidationError(f"{name} must be bytes, got {type(value).__name__}")
    if len(value) != length:
        raise ValidationError(f"{name} must be {length} bytes, got {len(value)}")
    return bytes(value)


@dataclass(frozen=True)
class SessionHandle:
    """An opened session inside a key source: a number, never the session key itself."""

    number: int
    source: str  # the key source's description, for messages


@runtime_checkable
class KeySource(Protocol):
    """What the master station asks of its keys; implemented in software here, by a lab's encryptor later."""

    @property
    def description(self) -> str:
        """Where the keys are (a file, an environment variable, a device), never the keys."""
        ...

    def authentication_ciphertext(self, dispersion: bytes, random1: bytes) -> bytes:
        """ciphertext1 (8 bytes) of an identity authentication for the meter of `dispersion`."""
        ...

    def open_session(self, dispersion: bytes, random1: bytes, random2: bytes) -> SessionHandle:
        """Derive and keep the session key of an authentication that the meter answered with random2."""
        ...

    def encrypt(self, session: SessionHandle, plaintext: bytes) -> bytes:
        """Ciphertext of `plaintext` under the session key (SM4-CBC, IV 0, ISO 9797-1 method-2 padding)."""
        ...

    def decrypt(self, session: SessionHandle, ciphertext: bytes) -> bytes:
        """Plaintext of a meter's `ciphertext` under the session key (the inverse of `encrypt`)."""
        ...

    def mac(self, session: SessionHandle, data: bytes) -> bytes:
        """The 4-byte MAC of `data` under the session key."""
        ...

    def close_session(self, session: SessionHandle) -> None:
        """Forget the session key (a later use of the handle is a SecurityError)."""
        ...

    def appears_in(self, data: bytes | str) -> bool:
        """True when key material this source holds or derived shows in `data` (a leak check for logs)."""
        ...


class SoftwareKeySource:
    """The twin emulation's master key in this process: K_m = SM4-ECB(K_master, d || ~d) per meter,
    ciphertext1 = SM4-ECB(K_m, random1 || random1)[:8], K_s = SM4-ECB(K_m, pad(random1 || random2))."""

    def __init__(self, master_key: bytes, description: str = "a key given in memory") -> None:
        if not isinstance(master_key, bytes | bytearray) or len(master_key) != KEY_BYTES:
            size = len(master_key) if isinstance(master_key, bytes | bytearray) else type(master_key).__name__
            raise SecurityError(f"ESAM master key from {description} must be {KEY_BYTES} bytes "
                                f"({2 * KEY_BYTES} hex digits), got {size}")
        self._master = bytes(master_key)
        self._description = description
        self._sessions: dict[int, bytes] = {}
        self._macs: dict[int, Sm4CbcMac] = {}  # one MAC engine per session: no cipher set-up per frame
        self._derived: set[bytes] = set()  # every meter and session key made, for appears_in
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    @classmethod
    def generate(cls, description: str = "a throwaway key") -> SoftwareKeySource:
        """A source with a fresh random master key (e.g. the 'wrong key' of a test)."""
        return cls(random_bytes(KEY_BYTES), description)

    def __repr__(self) -> str:
        return f"SoftwareKeySource({self._description})"

    @property
    def description(self) -> str:
        """Where the master key came from."""
        return self._description

    def _meter_key(self, dispersion: bytes) -> bytes:
        d = _check("dispersion factor", dispersion, DISPERSION_BYTES)
        key = sm4_ecb_encrypt(self._master, d + bytes(b ^ 0xFF for b in d))
        with self._lock:
            self._derived.add(key)
        return key

    def authentication_ciphertext(self, dispersion: bytes, random1: bytes) -> bytes:
        """ciphertext1: the first 8 bytes of SM4-ECB(K_m, random1 || random1)."""
        r1 = _check("random1", random1, RANDOM1_BYTES)
        return sm4_ecb_encrypt(self._meter_key(dispersion), r1 + r1)[:CIPHERTEXT1_BYTES]

    def open_session(self, dispersion: bytes, random1: bytes, random2: bytes) -> SessionHandle:
        """K_s = SM4-ECB(K_m, random1 || random2 padded to 16 bytes), kept under a new handle."""
        r1 = _check("random1", random1, RANDOM1_BYTES)
        r2 = _check("random2", random2, RANDOM2_BYTES)
        session_key = sm4_ecb_encrypt(self._meter_key(dispersion), pad_iso9797_m2(r1 + r2))
        with self._lock:
            number = next(self._numbers)
            self._sessions[number] = session_key
            self._macs[number] = Sm4CbcMac(session_key)
            self._derived.add(session_key)
        return SessionHandle(number, self._description)

    def _session_key(self, session: SessionHandle) -> bytes:
        with self._lock:
            key = self._sessions.get(session.number) if isinstance(session, SessionHandle) else None
        if key is None:
            raise SecurityError(f"session {getattr(session, 'number', session)!r} is not open in {self._description}:"
                                " authenticate again")
        return key

    def encrypt(self, session: SessionHandle, plaintext: bytes) -> bytes:
        """SM4-CBC (IV 0) of `plaintext` padded with ISO/IEC 9797-1 method 2."""
        if not isinstance(plaintext, bytes | bytearray):
            raise ValidationError(f"plaintext must be bytes, got {type(plaintext).__name__}")
        return sm4_cbc_encrypt(self._session_key(session), pad_iso9797_m2(bytes(plaintext)))

    def decrypt(self, session: SessionHandle, ciphertext: bytes) -> bytes:
        """SM4-CBC (IV 0) decryption of a meter's `ciphertext`, its method-2 padding removed (SecurityError when
        it is not whole blocks or the padding is wrong: the meter encrypted under another key)."""
        try:
            return unpad_iso9797_m2(sm4_cbc_decrypt(self._session_key(session), bytes(ciphertext)))
        except (ValueError, ValidationError) as exc:
            raise SecurityError(f"ciphertext does not decrypt under this session's key ({exc})") from None

    def mac(self, session: SessionHandle, data: bytes) -> bytes:
        """First 4 bytes of the SM4 CBC-MAC (IV 0, method-2 padding) of `data`."""
        if not isinstance(data, bytes | bytearray):
            raise ValidationError(f"MAC data must be bytes, got {type(data).__name__}")
        self._session_key(session)  # SecurityError for a closed or foreign session
        with self._lock:
            return self._macs[session.number].mac4(bytes(data))

    def close_session(self, session: SessionHandle) -> None:
        """Forget the session key."""
        with self._lock:
            self._sessions.pop(session.number, None)
            self._macs.pop(session.number, None)

    def appears_in(self, data: bytes | str) -> bool:
        """True when the master key or any meter or session key derived here shows in `data`: as raw
        bytes, or as hex (lower or upper case, with or without spaces)."""
        with self._lock:
            keys = [self._master, *self._derived]
        if isinstance(data, str):
            text = data.lower()
            squeezed = text.replace(" ", "")
            return any(key.hex() in squeezed or key.hex(" ") in text for key in keys)
        raw = bytes(data)
        lowered = raw.lower()
        return any(key in raw or key.hex().encode() in lowered or key.hex(" ").encode() in lowered for key in keys)
