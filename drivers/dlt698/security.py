"""DL/T 698.45 application-layer security on the host side (drivers layer): a symmetric-security association
(CONNECT with SymmetrySecurity) and SECURITY-Request wrapping in the modes a master station uses — plaintext
with RN (reads; the meter answers with a MAC), plaintext with SID_MAC and ciphertext with SID_MAC — each reply's
MAC checked and its ciphertext deciphered.

The messages are the standard's, encoded by the `dlt698` package. What the ESAM computes (session key, MACs,
ciphers) comes from the rig's key source (`drivers.security.KeySource`): the real ESAM algorithms are not
published, so this is the same documented SM4 emulation as the DL/T 645 security (shared reference
security.md), and a real meter needs the lab's encryptor behind a `KeySource` instead.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final, Literal

from dlt698 import Data, Oad, codec
from dlt698._native import (
    GetRequest,
    GetResponse,
    Mac,
    Rn,
    SecurityRequest,
    SecurityResponse,
    SetAttribute,
    SetRequest,
    SetResponse,
    Sid,
    SidMac,
    SymmetrySecurity,
)

from drivers.dlt698.apdu import oad_text
from drivers.dlt698.link import DarRefused, Dlt698Link, dar_text
from drivers.errors import FrameError, InstrumentTimeout, SecurityError
from drivers.security.keys import KeySource, SessionHandle, dispersion_factor

__all__ = ["MODES", "Mode", "SecureLink", "SecureReply"]

Mode = Literal["plain+rn", "plain+sid_mac", "cipher+sid_mac"]
MODES: Final[tuple[Mode, ...]] = ("plain+rn", "plain+sid_mac", "cipher+sid_mac")
RN_BYTES: Final = 16
RANDOM1_BYTES: Final = 8


@dataclass(frozen=True)
class SecureReply:
    """A SECURITY-Response taken apart: the APDU it carries (deciphered), or the DAR refusing the request."""

    apdu: bytes | None
    dar: int | None
    mac_ok: bool


class SecureLink:
    """Security over one `Dlt698Link`: `associate()` opens the session; `get`/`set` send their APDU wrapped in
    the chosen mode. `tamper` hooks let a plan send a wrong MAC or replay a counter."""

    def __init__(self, link: Dlt698Link, keys: KeySource, meter_number: str) -> None:
        self.link = link
        self.keys = keys
        self.dispersion = dispersion_factor(meter_number)
        self.session: SessionHandle | None = None
        self.counter = 0

    def associate(self) -> None:
        """CONNECT with symmetric security: random1 and ciphertext1 from the key source; the meter's random2
        opens the session key and its signature (a MAC of random2) must check."""
        random1 = secrets.token_bytes(RANDOM1_BYTES)
        cipher1 = self.keys.authentication_ciphertext(self.dispersion, random1)
        response = self.link.connect(mechanism=SymmetrySecurity(ciphertext=random1 + cipher1,
                                                                signature=self.dispersion))
        data = response.security
        if data is None:
            raise SecurityError(f"meter {self.link.server}: CONNECT with symmetric security answered without "
                                "SecurityData (no session)")
        self.close()
        self.session = self.keys.open_session(self.dispersion, random1, data.random)
        self.counter = 0
        if self.keys.mac(self.session, data.random) != data.signature:
            raise SecurityError(f"meter {self.link.server}: the session's signature does not check (another key?)")

    def close(self) -> None:
        """Forget the session key."""
        if self.session is not None:
            self.keys.close_session(self.session)
            self.session = None

    def _session(self) -> SessionHandle:
        if self.session is None:
            raise SecurityError(f"meter {self.link.server}: no security session: associate() first")
        return self.session

    def wrap(self, apdu: bytes, mode: Mode, *, counter: int | None = None, bad_mac: bool = False) -> tuple[bytes,
                                                                                                             bytes]:
        """(the SECURITY-Request carrying `apdu` in `mode`, what the reply's MAC covers before its data: the RN,
        or the SID counter). `counter`: send this SID counter (a replay); `bad_mac`: a MAC with a bit flipped."""
        session = self._session()
        if mode == "plain+rn":
            rn = secrets.token_bytes(RN_BYTES)
            request = SecurityRequest(application=apdu, encrypted=False, verification=Rn(value=rn))
            return codec.encode_security(request), rn
        if counter is None:
            self.counter += 1
            counter = self.counter
        data = self.keys.encrypt(session, apdu) if mode == "cipher+sid_mac" else apdu
        mac = self.keys.mac(session, counter.to_bytes(4, "big") + data)
        if bad_mac:
            mac = bytes((mac[0] ^ 0x01,)) + mac[1:]
        sid = SidMac(sid=Sid(identifier=counter, additional=b""), mac=Mac(value=mac))
        request = SecurityRequest(application=data, encrypted=mode == "cipher+sid_mac", verification=sid)
        return codec.encode_security(request), counter.to_bytes(4, "big")

    def send(self, apdu: bytes, mode: Mode, *, counter: int | None = None, bad_mac: bool = False) -> SecureReply:
        """Send `apdu` secured; the reply opened (MAC checked, deciphered) or its DAR. InstrumentTimeout /
        FrameError when the meter does not answer with a SECURITY-Response."""
        request, prefix = self.wrap(apdu, mode, counter=counter, bad_mac=bad_mac)
        exchange = self.link.exchange(request)
        body = exchange.apdu
        what = f"SECURITY-Request ({mode}) to meter {self.link.server}"
        if body is None:
            raise InstrumentTimeout(f"{what}: no valid reply")
        try:
            response = codec.decode_security(body)
        except Exception as exc:  # noqa: BLE001 - the package's error classes
            raise FrameError(f"{what}: reply does not decode as SECURITY-Response: {exc}") from None
        if not isinstance(response, SecurityResponse):
            raise FrameError(f"{what}: reply is not a SECURITY-Response")
        if isinstance(response.application, int):
            return SecureReply(None, response.application, True)
        data = bytes(response.application)
        verification = response.verification
        mac = verification.value if isinstance(verification, Mac) else None
        mac_ok = mac is not None and mac == self.keys.mac(self._session(), prefix + data)
        if response.encrypted:
            data = self.keys.decrypt(self._session(), data)
        return SecureReply(data, None, mac_ok)

    def get(self, attribute: Oad, mode: Mode) -> Data:
        """GET of `attribute` in `mode`; DarRefused for a security refusal or a refused attribute, SecurityError
        when the reply's MAC does not check."""
        apdu = codec.encode_apdu(GetRequest(attributes=[attribute], piid=self.link.next_piid()))
        reply = self._checked(self.send(apdu, mode), f"GET {oad_text(attribute)} ({mode})")
        message = codec.decode_apdu(reply)
        if not isinstance(message, GetResponse) or len(message.attributes) != 1:
            raise FrameError(f"meter {self.link.server}: secured GET answered with {type(message).__name__}")
        result = message.attributes[0].result
        if isinstance(result, int):
            raise DarRefused(f"meter {self.link.server} refused {oad_text(attribute)}: {dar_text(result)}", result)
        return result

    def set(self, attribute: Oad, value: Data, mode: Mode, *, counter: int | None = None,
            bad_mac: bool = False) -> None:
        """SET of `attribute` in `mode`; DarRefused for a refusal (security or the attribute's)."""
        apdu = codec.encode_apdu(SetRequest(attributes=[SetAttribute(attribute=attribute, value=value)],
                                            piid=self.link.next_piid()))
        reply = self._checked(self.send(apdu, mode, counter=counter, bad_mac=bad_mac),
                              f"SET {oad_text(attribute)} ({mode})")
        message = codec.decode_apdu(reply)
        if not isinstance(message, SetResponse):
            raise FrameError(f"meter {self.link.server}: secured SET answered with {type(message).__name__}")
        for result in message.attributes:
            if result.dar:
                raise DarRefused(f"meter {self.link.server} refused SET {oad_text(attribute)}: "
                                 f"{dar_text(result.dar)}", result.dar)

    def _checked(self, reply: SecureReply, what: str) -> bytes:
        if reply.dar is not None:
            raise DarRefused(f"meter {self.link.server} refused {what}: {dar_text(reply.dar)}", reply.dar)
        if not reply.mac_ok:
            raise SecurityError(f"meter {self.link.server}: the MAC of the reply to {what} does not check")
        assert reply.apdu is not None
        return reply.apdu
