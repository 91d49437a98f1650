"""The twin meter's DL/T 698.45 application-layer security, backed by its ESAM model (rig.twin.esam).

The real ESAM algorithms and the State Grid key hierarchy are not published; this is the same honest,
self-consistent SM4 emulation as the twin's DL/T 645 security (shared/reference/security.md), carried in
698's messages. It is documented here so a master station (or a lab's encryptor) can follow it:

- Session, CONNECT with SymmetrySecurity: ciphertext = random1 (8) || cipher1 (8), cipher1 = the first 8 bytes
  of SM4-ECB(K_m, random1 || random1), K_m = SM4-ECB(K_master, d || ~d); signature = d, the dispersion factor
  (8 bytes: 00 00 and the meter address). The ESAM compares, then its challenge random2 (4) opens the session
  key K_s = SM4-ECB(K_m, pad(random1 || random2)) for the validity in its parameter file (5 min as delivered).
  CONNECT-Response: result 0 and SecurityData {RN = random2, signature = MAC(random2)}; a wrong cipher1 gets
  result 2 (symmetric decryption error) and no session.
- SECURITY-Request, plaintext + RN (reads): the response is plaintext + MAC over RN || response APDU.
- plaintext + SID_MAC: SID identifier = a counter (4) above the last accepted; MAC over counter || APDU.
- ciphertext + SID_MAC: the APDU SM4-CBC encrypted under K_s (IV 0, ISO 9797-1 method 2 padding), the MAC over
  counter || ciphertext; the response comes back encrypted, with a MAC over counter || response ciphertext.
- MAC: the first 4 bytes of SM4-CBC-MAC under K_s. Refusals (SECURITY-Response DAR, nothing executed): no or
  expired session 20 (security authentication mismatch), wrong MAC 22 (ESAM verification failed), replayed
  counter 23 (security authentication failed), undecryptable ciphertext 28 (symmetric decryption error),
  ESAM blocked after too many MAC errors 22.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from drivers.errors import FrameError
from rig.twin.dlt698.codec import Tag, decode_typed, encode_length
from rig.twin.esam import SW_BLOCKED, SW_CONDITIONS, SW_MAC_WRONG, SW_OK, SW_SECURITY_STATUS, SW_WRONG_DATA

if TYPE_CHECKING:
    from rig.twin.esam import Esam

SECURITY_REQUEST: Final = 0x10
SECURITY_RESPONSE: Final = 0x90
# ConnectMechanismInfo and ConnectResult
MECHANISM_SYMMETRIC: Final = 2
CONNECT_ALLOWED: Final = 0
CONNECT_SYMMETRIC_ERROR: Final = 2
CONNECT_OTHER: Final = 255
# Verification choices of a SECURITY-Request
SID_MAC: Final = 0
RN: Final = 1
RN_MAC: Final = 2
SID: Final = 3
# DAR of a refused SECURITY-Request
DAR_NO_SESSION: Final = 20
DAR_MAC_WRONG: Final = 22
DAR_REPLAY: Final = 23
DAR_DECRYPT: Final = 28
DAR_OTHER: Final = 255
_DAR_BY_SW: Final = {SW_SECURITY_STATUS: DAR_NO_SESSION, SW_MAC_WRONG: DAR_MAC_WRONG, SW_CONDITIONS: DAR_REPLAY,
                     SW_WRONG_DATA: DAR_DECRYPT, SW_BLOCKED: DAR_MAC_WRONG}


def _octets(raw: bytes) -> bytes:
    return encode_length(len(raw)) + raw


def _take_octets(buf: bytes, pos: int) -> tuple[bytes, int]:
    data, pos = decode_typed(buf, pos, Tag.OCTET_STRING)
    assert isinstance(data.value, bytes)
    return data.value, pos


@dataclass(frozen=True)
class SecuredRequest:
    """A SECURITY-Request taken apart: the application data (plain or cipher), its verification choice and
    fields (SID counter, RN, MAC)."""

    ciphered: bool
    data: bytes
    verification: int
    counter: int = 0
    rn: bytes = b""
    mac: bytes = b""


def parse_security_request(apdu: bytes) -> SecuredRequest:
    """A SECURITY-Request's parts (FrameError when malformed)."""
    if len(apdu) < 3 or apdu[0] != SECURITY_REQUEST or apdu[1] > 1:
        raise FrameError("not a SECURITY-Request with plaintext or ciphertext application data")
    data, pos = _take_octets(apdu, 2)
    if pos >= len(apdu):
        raise FrameError("SECURITY-Request without verification information")
    choice, pos = apdu[pos], pos + 1
    if choice in (SID_MAC, SID):
        counter = int.from_bytes(apdu[pos:pos + 4], "big")
        _, pos = _take_octets(apdu, pos + 4)  # additional data: not used by this emulation
        mac = _take_octets(apdu, pos)[0] if choice == SID_MAC else b""
        return SecuredRequest(apdu[1] == 1, data, choice, counter=counter, mac=mac)
    if choice in (RN, RN_MAC):
        rn, pos = _take_octets(apdu, pos)
        mac = _take_octets(apdu, pos)[0] if choice == RN_MAC else b""
        return SecuredRequest(apdu[1] == 1, data, choice, rn=rn, mac=mac)
    raise FrameError(f"verification choice {choice} is not one this meter knows")


class Dlt698Security:
    """The MCU's 698 security firmware: it hands every cryptographic step to the ESAM as an APDU."""

    def __init__(self, esam: Esam, address: Callable[[], str]) -> None:
        self.esam = esam
        self._address = address

    def _apdu(self, header: tuple[int, int, int, int], data: bytes = b"", le: int = 0) -> tuple[int, bytes]:
        response = self.esam.transmit(bytes((*header, len(data) & 0xFF if data else le)) + data)
        return int.from_bytes(response[-2:], "big"), response[:-2]

    # ---- CONNECT

    def connect(self, mechanism: bytes) -> tuple[int, bytes]:
        """(ConnectResult, SecurityData bytes or b'') for a ConnectMechanismInfo; only symmetric security opens
        a session (null and password security associate without one)."""
        if not mechanism or mechanism[0] != MECHANISM_SYMMETRIC:
            return CONNECT_ALLOWED, b""
        try:
            ciphertext, pos = _take_octets(mechanism, 1)
            dispersion, _ = _take_octets(mechanism, pos)
        except FrameError:
            return CONNECT_OTHER, b""
        if len(ciphertext) != 16 or len(dispersion) != 8 or dispersion[2:] != bytes.fromhex(self._address()):
            return CONNECT_SYMMETRIC_ERROR, b""
        random1, cipher1 = ciphertext[:8], ciphertext[8:]
        self.esam.reset()
        steps = (((0x80, 0xFA, 0x00, 0x03), dispersion, SW_OK), ((0x80, 0xFA, 0x00, 0x00), random1, 0x6108))
        for header, data, expected in steps:
            if self._apdu(header, data)[0] != expected:
                return CONNECT_SYMMETRIC_ERROR, b""
        status, cipher2 = self._apdu((0x00, 0xC0, 0x00, 0x00), le=8)
        if status != SW_OK or cipher2 != cipher1:
            return CONNECT_SYMMETRIC_ERROR, b""
        status, random2 = self._apdu((0x00, 0x84, 0x00, 0x00), le=4)
        if status != SW_OK:
            return CONNECT_OTHER, b""
        status, signature = self._apdu((0x80, 0x0E, 0x03, 0x00), random2)
        if status != SW_OK:
            return CONNECT_OTHER, b""
        return CONNECT_ALLOWED, _octets(random2) + _octets(signature)

    # ---- SECURITY-Request

    def open(self, request: SecuredRequest) -> bytes | int:
        """The plain APDU a SECURITY-Request carries once the ESAM accepts it, or the DAR refusing it."""
        if request.verification == SID_MAC:
            signed = request.counter.to_bytes(4, "big") + request.data + request.mac
            status, _ = self._apdu((0x80, 0x0E, 0x01, 0x00), signed)
            if status != SW_OK:
                return _DAR_BY_SW.get(status, DAR_OTHER)
        elif request.verification != RN or request.ciphered:
            return DAR_MAC_WRONG  # this meter takes plain reads with RN, everything else with SID_MAC
        elif not self.esam.session_open():
            return DAR_NO_SESSION
        if not request.ciphered:
            return request.data
        status, plain = self._apdu((0x80, 0x0E, 0x02, 0x00), request.data)
        return plain if status == SW_OK else _DAR_BY_SW.get(status, DAR_OTHER)

    def seal(self, request: SecuredRequest, response: bytes) -> bytes:
        """The SECURITY-Response that carries `response` back, protected as the request was."""
        data = response
        if request.ciphered:
            status, data = self._apdu((0x80, 0x0E, 0x04, 0x00), response)
            if status != SW_OK:
                return refusal(DAR_OTHER)
        prefix = request.rn if request.verification == RN else request.counter.to_bytes(4, "big")
        status, mac = self._apdu((0x80, 0x0E, 0x03, 0x00), prefix + data)
        if status != SW_OK:
            return refusal(_DAR_BY_SW.get(status, DAR_OTHER))
        return bytes((SECURITY_RESPONSE, 1 if request.ciphered else 0)) + _octets(data) + b"\x01\x00" + _octets(mac)


def refusal(dar: int) -> bytes:
    """A SECURITY-Response that refuses with `dar` (no verification information)."""
    return bytes((SECURITY_RESPONSE, 2, dar, 0))

