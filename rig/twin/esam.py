"""The twin's ESAM security chip: an ISO 7816-style APDU model of the documented SM4 emulation
(README "ESAM-backed security"; not State Grid-compatible).

Twin side: written from the chip's point of view and independently of the master station in
`drivers.security`; it shares only the primitives of `drivers.crypto`. The management MCU model
(`rig.twin.security`) talks to it in APDUs exactly as the firmware sequence of the reference does.
Time is the twin's virtual clock (the session timer) and each APDU's transfer and processing time is
accumulated for the MCU's reply delay.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from drivers.crypto import (
    BLOCK_BYTES,
    mac4,
    pad_iso9797_m2,
    sm3,
    sm4_cbc_decrypt,
    sm4_cbc_encrypt,
    sm4_ecb_encrypt,
    unpad_iso9797_m2,
)
from drivers.errors import SecurityError
from rig.config import SecurityKnobs

# ---------------------------------------------------------------- status words (SW1 SW2)

SW_OK: Final = 0x9000
SW_WRONG_LENGTH: Final = 0x6700
SW_SECURITY_STATUS: Final = 0x6982  # no (valid) session: authentication needed
SW_BLOCKED: Final = 0x6983  # too many MAC errors: secured operations blocked
SW_CONDITIONS: Final = 0x6985  # conditions of use not satisfied (order of commands, replayed counter)
SW_MAC_WRONG: Final = 0x6988  # incorrect secure-messaging data (MAC)
SW_WRONG_DATA: Final = 0x6A80
SW_FILE_NOT_FOUND: Final = 0x6A82
SW_RECORD_NOT_FOUND: Final = 0x6A83
SW_WRONG_P1P2: Final = 0x6A86
SW_OFFSET: Final = 0x6B00
SW_INS_UNKNOWN: Final = 0x6D00
SW_CLA_UNKNOWN: Final = 0x6E00
SW_MORE_DATA: Final = 0x6100  # | length: the response waits for GET RESPONSE

# ---------------------------------------------------------------- files (short file identifiers)

# A binary command names a file by P1 = 0x80 | SFI (the reference's "file 0x82" is SFI 2) and the offset
# by P2; SELECT takes the FID 00 SFI.
INFO_FILE: Final = 0x19  # version (1) and the chip serial (8); read as 00 B0 99 01 08
PARAMETER_FILE: Final = 0x02  # validity (2, BCD minutes, low byte first) at 0; meter number (6) at 0x1E
RUNNING_FILE: Final = 0x07  # running information; the MAC-error count (2, binary) at MAC_ERRORS_OFFSET
CONTROL_FILE: Final = 0x08  # the last remote-control plaintext (N1..N8), written in ciphertext
CIPHER_PARAMETER_FILE: Final = 0x09  # the last level-98 parameter, written in ciphertext
MAC_PARAMETER_FILE: Final = 0x0A  # the last level-99 parameter, written in plain with MAC
VALIDITY_OFFSET: Final = 0x00
METER_NUMBER_OFFSET: Final = 0x1E
MAC_ERRORS_OFFSET: Final = 42
CIPHERTEXT_FILES: Final = frozenset({CONTROL_FILE, CIPHER_PARAMETER_FILE})
MAC_FILES: Final = frozenset({PARAMETER_FILE, CONTROL_FILE, CIPHER_PARAMETER_FILE, MAC_PARAMETER_FILE})
PLAIN_WRITABLE: Final = frozenset({RUNNING_FILE})  # the MCU writes its running information without MAC

FACTORY_VALIDITY_MIN: Final = 5  # identity-authentication validity as delivered
LOCKOUT_THRESHOLD: Final = 200  # MAC errors (a day) that block every secured operation
_ATR_HEAD: Final = bytes((0x3B, 0x69, 0x00, 0x00))  # TS, T0 (TB1 TC1 and 9 historical bytes), TB1, TC1
_ATR_VERSION: Final = 0x01

# Transfer and processing time: ISO 7816-3 T=0 at 9600 bit/s, 12 etu a character (start, 8 data,
# parity, 2 guard), plus a few milliseconds of work for each cryptographic step (seeded jitter).
CHARACTER_S: Final = 12 / 9600
PROCESSING_S: Final = 0.002
CRYPTO_S: Final = 0.004
JITTER_S: Final = 0.001

_IN_INS: Final = frozenset({0xA4, 0xD6, 0xFA, 0xD4})  # P3 is Lc: data follows the header
_OUT_INS: Final = frozenset({0xB0, 0xB2, 0xC0, 0x84})  # P3 is Le: data comes back


def sw(word: int, data: bytes = b"") -> bytes:
    """A response: data then SW1 SW2."""
    return data + word.to_bytes(2, "big")


def twin_master_key(seed: int) -> bytes:
    """The embedded twin's throwaway ESAM master key, derived from its seed at run time (never stored)."""
    return sm3(f"meter-hil-rig twin ESAM master key, seed {seed}".encode())[:16]


@dataclass
class Esam:
    """One meter's ESAM: files, the master key, a session after a successful internal authentication,
    the MAC-error counter and its lockout. `transmit(apdu)` -> response data + SW."""

    master_key: bytes = field(repr=False)
    meter_number: str
    serial: bytes
    knobs: SecurityKnobs
    rng: random.Random
    clock: Callable[[], float]  # bench seconds (the twin's virtual clock)
    files: dict[int, bytearray] = field(init=False, repr=False)
    busy_s: float = 0.0
    apdus: int = 0
    _selected: int | None = field(default=None, init=False)
    _auth_key: bytes | None = field(default=None, init=False, repr=False)
    _random1: bytes | None = field(default=None, init=False, repr=False)
    _response: bytes | None = field(default=None, init=False, repr=False)
    _session_key: bytes | None = field(default=None, init=False, repr=False)
    _session_until_s: float = field(default=0.0, init=False)
    _last_counter: int = field(default=0, init=False)
    _weak_random: bytes | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.master_key) != 16 or len(self.serial) != 8:
            raise SecurityError("an ESAM needs a 16-byte master key and an 8-byte serial")
        parameters = bytearray(64)
        parameters[VALIDITY_OFFSET:VALIDITY_OFFSET + 2] = _bcd_low_first(FACTORY_VALIDITY_MIN)
        parameters[METER_NUMBER_OFFSET:METER_NUMBER_OFFSET + 6] = bytes.fromhex(self.meter_number)
        self.files = {
            INFO_FILE: bytearray(bytes((_ATR_VERSION,)) + self.serial + bytes(7)),
            PARAMETER_FILE: parameters,
            RUNNING_FILE: bytearray(49),
            CONTROL_FILE: bytearray(8),
            CIPHER_PARAMETER_FILE: bytearray(64),
            MAC_PARAMETER_FILE: bytearray(64),
        }

    # ---- what the MCU (and the twin's tests) may look at

    @property
    def mac_errors(self) -> int:
        """MAC errors counted since the counter was last cleared (running-information file)."""
        return int.from_bytes(self.files[RUNNING_FILE][MAC_ERRORS_OFFSET:MAC_ERRORS_OFFSET + 2], "big")

    def _count_mac_error(self) -> None:
        count = min(self.mac_errors + 1, 0xFFFF)
        self.files[RUNNING_FILE][MAC_ERRORS_OFFSET:MAC_ERRORS_OFFSET + 2] = count.to_bytes(2, "big")

    @property
    def blocked(self) -> bool:
        """True once the MAC-error count reached the lockout threshold (unless the lockout is disabled)."""
        return self.mac_errors >= LOCKOUT_THRESHOLD and not self.knobs.lockout_disabled

    def session_open(self) -> bool:
        """True while a session key exists and its validity has not passed on the clock."""
        if self._session_key is None:
            return False
        return self.knobs.session_never_expires or self.clock() < self._session_until_s

    def validity_min(self) -> int:
        """The identity-authentication validity in the parameter file, minutes."""
        raw = bytes(self.files[PARAMETER_FILE][VALIDITY_OFFSET:VALIDITY_OFFSET + 2])[::-1].hex()
        return int(raw) if raw.isdigit() else 0

    def take_busy_s(self) -> float:
        """Bench time the chip spent on APDUs since the last call, s."""
        busy, self.busy_s = self.busy_s, 0.0
        return busy

    # ---- the card interface

    def reset(self) -> bytes:
        """Cold reset: volatile state (session, pending response, derived key) is lost; returns the ATR."""
        self._selected = None
        self._auth_key = self._random1 = self._response = self._session_key = None
        self._last_counter = 0
        atr = _ATR_HEAD + bytes((_ATR_VERSION,)) + self.serial
        self._spend(len(atr), PROCESSING_S)
        return atr

    def _spend(self, characters: int, work_s: float) -> None:
        self.busy_s += characters * CHARACTER_S + work_s + self.rng.uniform(0.0, JITTER_S)

    def transmit(self, apdu: bytes) -> bytes:
        """One command APDU (CLA INS P1 P2 P3 [data]) -> response data + SW1 SW2."""
        self.apdus += 1
        response = self._dispatch(bytes(apdu))
        crypto = len(apdu) > 1 and apdu[1] in (0xFA, 0xD6) and apdu[0] in (0x80, 0x04)
        self._spend(len(apdu) + len(response), CRYPTO_S if crypto else PROCESSING_S)
        return response

    def _dispatch(self, apdu: bytes) -> bytes:
        if len(apdu) < 5:
            return sw(SW_WRONG_LENGTH)
        cla, ins, p1, p2, p3 = apdu[:5]
        data = apdu[5:]
        if cla not in (0x00, 0x04, 0x80, 0x84):
            return sw(SW_CLA_UNKNOWN)
        if (ins in _IN_INS and len(data) != p3) or (ins in _OUT_INS and data):
            return sw(SW_WRONG_LENGTH)
        handler = _COMMANDS.get((cla, ins))
        if handler is None:
            return sw(SW_INS_UNKNOWN)
        return handler(self, p1, p2, p3, data)

    # ---- commands

    def _select(self, p1: int, p2: int, p3: int, data: bytes) -> bytes:
        if p3 != 2:
            return sw(SW_WRONG_LENGTH)
        fid = int.from_bytes(data, "big")
        if fid == 0x3F00:
            self._selected = None
            return sw(SW_OK)
        if fid > 0xFF or fid not in self.files:
            return sw(SW_FILE_NOT_FOUND)
        self._selected = fid
        return sw(SW_OK)

    def _target(self, p1: int, p2: int) -> tuple[int | None, int]:
        """The file and offset of a binary command: P1 bit 7 set = short file identifier, P2 the offset."""
        if p1 & 0x80:
            return p1 & 0x1F if (p1 & 0x1F) in self.files else None, p2
        return self._selected, (p1 << 8) | p2

    def _read_binary(self, p1: int, p2: int, p3: int, data: bytes) -> bytes:
        fid, offset = self._target(p1, p2)
        if fid is None:
            return sw(SW_FILE_NOT_FOUND)
        length = p3 or 256
        content = self.files[fid]
        if offset + length > len(content):
            return sw(SW_OFFSET)
        return sw(SW_OK, bytes(content[offset:offset + length]))

    def _read_record(self, p1: int, p2: int, p3: int, data: bytes) -> bytes:
        return sw(SW_RECORD_NOT_FOUND)  # this emulation keeps no record files

    def _update_binary(self, p1: int, p2: int, p3: int, data: bytes) -> bytes:
        fid, offset = self._target(p1, p2)
        if fid is None:
            return sw(SW_FILE_NOT_FOUND)
        if fid not in PLAIN_WRITABLE:
            return sw(SW_SECURITY_STATUS)  # every other file is written with MAC only
        content = self.files[fid]
        if offset + len(data) > len(content):
            return sw(SW_OFFSET)
        content[offset:offset + len(data)] = data
        return sw(SW_OK)

    def _derive_or_encrypt(self, p1: int, p2: int, p3: int, data: bytes) -> bytes:
        if self.blocked:
            return sw(SW_BLOCKED)
        if p1 != 0 or p3 != 8:
            return sw(SW_WRONG_P1P2 if p1 else SW_WRONG_LENGTH)
        if p2 == 0x03:  # disperse the authentication key: K_m = SM4(K_master, d || ~d)
            self._auth_key = sm4_ecb_encrypt(self.master_key, data + bytes(b ^ 0xFF for b in data))
            self._random1 = None
            return sw(SW_OK)
        if p2 == 0x00:  # encrypt the host's random: first 8 bytes of SM4(K_m, r1 || r1)
            if self._auth_key is None:
                return sw(SW_CONDITIONS)
            self._random1 = data
            self._response = sm4_ecb_encrypt(self._auth_key, data + data)[:8]
            return sw(SW_MORE_DATA | len(self._response))
        return sw(SW_WRONG_P1P2)

    def _get_response(self, p1: int, p2: int, p3: int, data: bytes) -> bytes:
        if self._response is None:
            return sw(SW_CONDITIONS)
        if p3 != len(self._response):
            return sw(0x6C00 | len(self._response))
        response, self._response = self._response, None
        return sw(SW_OK, response)

    def _get_challenge(self, p1: int, p2: int, p3: int, data: bytes) -> bytes:
        if p3 not in (4, 8):
            return sw(SW_WRONG_LENGTH)
        if self.knobs.weak_random:
            if self._weak_random is None:
                self._weak_random = self.rng.randbytes(8)
            challenge = self._weak_random[:p3]
        else:
            challenge = self.rng.randbytes(p3)
        if p3 == 4 and self._auth_key is not None and self._random1 is not None:
            # The challenge that follows an internal authentication opens the session:
            # K_s = SM4(K_m, pad(random1 || random2)), valid for the parameter file's minutes.
            self._session_key = sm4_ecb_encrypt(self._auth_key, pad_iso9797_m2(self._random1 + challenge))
            self._session_until_s = self.clock() + 60.0 * self.validity_min()
            self._last_counter = 0
            self._random1 = None
        return sw(SW_OK, challenge)

    def _update_with_mac(self, p1: int, p2: int, p3: int, data: bytes) -> bytes:
        """04 D6: tag (1) || selector (4) || body || counter (4, big-endian) || MAC (4), the MAC over all
        before it under the session key; the body (decrypted for the ciphertext files) is written."""
        if self.blocked:
            return sw(SW_BLOCKED)
        if not self.session_open():
            return sw(SW_SECURITY_STATUS)
        fid, offset = self._target(p1, p2)
        if fid is None or fid not in MAC_FILES:
            return sw(SW_FILE_NOT_FOUND)
        if len(data) < 1 + 4 + 1 + 4 + 4:
            return sw(SW_WRONG_LENGTH)
        assert self._session_key is not None
        signed, mac = data[:-4], data[-4:]
        body, counter = data[5:-8], int.from_bytes(data[-8:-4], "big")
        if not self.knobs.mac_not_checked and mac4(self._session_key, signed) != mac:
            self._count_mac_error()
            return sw(SW_MAC_WRONG)
        if counter <= self._last_counter and not self.knobs.replay_accepted:
            self._count_mac_error()  # a replay is an attack like a wrong MAC
            return sw(SW_CONDITIONS)
        if fid in CIPHERTEXT_FILES:
            if not body or len(body) % BLOCK_BYTES:
                return sw(SW_WRONG_LENGTH)
            try:
                body = unpad_iso9797_m2(sm4_cbc_decrypt(self._session_key, body))
            except SecurityError:
                return sw(SW_WRONG_DATA)
        content = self.files[fid]
        if offset + len(body) > len(content):
            return sw(SW_OFFSET)
        content[offset:offset + len(body)] = body
        self._last_counter = max(self._last_counter, counter)
        if fid == PARAMETER_FILE and offset <= VALIDITY_OFFSET < offset + len(body):
            self._session_until_s = self.clock() + 60.0 * self.validity_min()  # the countdown restarts
        return sw(SW_OK)

    def _key_update(self, p1: int, p2: int, p3: int, data: bytes) -> bytes:
        return sw(SW_INS_UNKNOWN)  # key update (84 D4) is not part of this emulation

    def _application_protection(self, p1: int, p2: int, p3: int, data: bytes) -> bytes:
        """80 0E: DL/T 698.45 application-layer protection under the session key (this emulation's command).
        P1 01 verify: counter (4, big-endian) || protected data || MAC (4), the MAC over all before it, the
        counter above the last accepted; 02 decrypt (SM4-CBC, IV 0, ISO 9797-1 method 2 padding); 03 MAC of
        the data; 04 encrypt."""
        if self.blocked:
            return sw(SW_BLOCKED)
        if not self.session_open():
            return sw(SW_SECURITY_STATUS)
        key = self._session_key
        assert key is not None
        if p1 == 0x01:
            if len(data) < 8:
                return sw(SW_WRONG_LENGTH)
            signed, mac, counter = data[:-4], data[-4:], int.from_bytes(data[:4], "big")
            if not self.knobs.mac_not_checked and mac4(key, signed) != mac:
                self._count_mac_error()
                return sw(SW_MAC_WRONG)
            if counter <= self._last_counter and not self.knobs.replay_accepted:
                self._count_mac_error()
                return sw(SW_CONDITIONS)
            self._last_counter = max(self._last_counter, counter)
            return sw(SW_OK)
        if p1 == 0x02:
            if not data or len(data) % BLOCK_BYTES:
                return sw(SW_WRONG_LENGTH)
            try:
                return sw(SW_OK, unpad_iso9797_m2(sm4_cbc_decrypt(key, data)))
            except SecurityError:
                return sw(SW_WRONG_DATA)
        if p1 == 0x03:
            return sw(SW_OK, mac4(key, data))
        if p1 == 0x04:
            return sw(SW_OK, sm4_cbc_encrypt(key, pad_iso9797_m2(data)))
        return sw(SW_WRONG_P1P2)


def _bcd_low_first(value: int) -> bytes:
    return bytes.fromhex(f"{value:04d}")[::-1]


_Command = Callable[[Esam, int, int, int, bytes], bytes]
_COMMANDS: Final[dict[tuple[int, int], _Command]] = {
    (0x00, 0xA4): Esam._select,
    (0x00, 0xB0): Esam._read_binary,
    (0x00, 0xB2): Esam._read_record,
    (0x00, 0xD6): Esam._update_binary,
    (0x04, 0xD6): Esam._update_with_mac,
    (0x80, 0xFA): Esam._derive_or_encrypt,
    (0x00, 0xC0): Esam._get_response,
    (0x00, 0x84): Esam._get_challenge,
    (0x84, 0xD4): Esam._key_update,
    (0x80, 0x0E): Esam._application_protection,
}
