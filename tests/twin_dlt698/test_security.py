"""The twin meter's DL/T 698.45 security against a master station written here from the emulation's text
(rig/twin/dlt698/security.py docstring): symmetric CONNECT, plaintext + RN reads, ciphertext + SID_MAC
writes; wrong MAC, replay, wrong key and expired session refused with their DAR and without effect."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.crypto import mac4, pad_iso9797_m2, sm4_cbc_decrypt, sm4_cbc_encrypt, sm4_ecb_encrypt, unpad_iso9797_m2
from rig.config import load_bench
from rig.twin.dlt698.codec import Dlt698Frame, address_to_wire, encode_date_time_s
from rig.twin.dlt698.server import Dlt698Server
from rig.twin.runtime import Twin

codec = pytest.importorskip("dlt698.codec")

ADDRESS = "000000000001"
CONNECT_HEAD = bytes.fromhex("020000" "10ffff f8000000 0000" + "00" * 16 + "0400 0400 01 0400 00000064")
GET_CLOCK = bytes.fromhex("0501 07 40000200 00")
NEW_TIME = dt.datetime(2026, 1, 1, 12, 34, 56)


def _octets(raw: bytes) -> bytes:
    return bytes((len(raw),)) + raw


def _take(buf: bytes, pos: int) -> tuple[bytes, int]:
    n = buf[pos]
    return buf[pos + 1:pos + 1 + n], pos + 1 + n


@dataclass
class Master:
    """A master station's side of the emulation."""

    server: Dlt698Server
    master_key: bytes
    session_key: bytes = b""
    counter: int = 0

    def send(self, apdu: bytes) -> bytes:
        if apdu[0] == 0x10:
            codec.decode_security(apdu)  # the package reads this master's request as the same message
        reply = self.server.respond(Dlt698Frame(0x43, address_to_wire(ADDRESS), 0x10, apdu),
                                    self.server.management.world.time_s)
        assert reply is not None, "the meter said nothing"
        if reply.apdu[0] == 0x90:
            codec.decode_security(reply.apdu)  # and the meter's response, with nothing left over
        return reply.apdu

    def connect(self, key: bytes | None = None) -> int:
        dispersion = bytes(2) + bytes.fromhex(ADDRESS)
        meter_key = sm4_ecb_encrypt(key or self.master_key, dispersion + bytes(b ^ 0xFF for b in dispersion))
        random1 = random.Random(7).randbytes(8)
        cipher1 = sm4_ecb_encrypt(meter_key, random1 + random1)[:8]
        reply = self.send(CONNECT_HEAD + b"\x02" + _octets(random1 + cipher1) + _octets(dispersion) + b"\x00")
        assert reply[0] == 0x82
        result = reply[71]
        if result == 0:
            assert reply[72] == 1, "no SecurityData after a symmetric CONNECT"
            random2, pos = _take(reply, 73)
            signature, _ = _take(reply, pos)
            self.session_key = sm4_ecb_encrypt(meter_key, pad_iso9797_m2(random1 + random2))
            assert signature == mac4(self.session_key, random2)
        return result

    def read_with_rn(self, apdu: bytes) -> bytes:
        rn = bytes(range(16))
        reply = self.send(b"\x10\x00" + _octets(apdu) + b"\x01" + _octets(rn))
        assert reply[:2] == b"\x90\x00", reply.hex()
        response, pos = _take(reply, 2)
        assert reply[pos:pos + 2] == b"\x01\x00"
        assert _take(reply, pos + 2)[0] == mac4(self.session_key, rn + response)
        return response

    def write_ciphered(self, apdu: bytes, *, counter: int | None = None, spoil_mac: bool = False) -> bytes:
        """The SECURITY-Response (deciphered inner APDU when accepted, else the raw refusal)."""
        self.counter = self.counter + 1 if counter is None else counter
        sid = self.counter.to_bytes(4, "big")
        cipher = sm4_cbc_encrypt(self.session_key, pad_iso9797_m2(apdu))
        mac = mac4(self.session_key, sid + cipher)
        if spoil_mac:
            mac = bytes((mac[0] ^ 0x01,)) + mac[1:]
        reply = self.send(b"\x10\x01" + _octets(cipher) + b"\x00" + sid + b"\x00" + _octets(mac))
        if reply[1] == 2:
            return reply
        assert reply[:2] == b"\x90\x01", reply.hex()
        response, pos = _take(reply, 2)
        assert _take(reply, pos + 2)[0] == mac4(self.session_key, sid + response)
        return unpad_iso9797_m2(sm4_cbc_decrypt(self.session_key, response))


def _set_clock(moment: dt.datetime) -> bytes:
    return bytes.fromhex("0601 09 40000200 1c") + encode_date_time_s(moment) + b"\x00"


@pytest.fixture
def master() -> Iterator[Master]:
    twin = Twin(load_bench())
    world = twin.world
    world.output_on = True
    world.set_point.voltage_v = 220.0
    twin.clock.sleep(30.0)
    server = twin.meters[0].management.dlt698  # type: ignore[union-attr]
    assert server is not None
    yield Master(server, twin.esam_key.key)


def _clock(master: Master) -> dt.datetime:
    management = master.server.management
    return management.rtc.read(management.world.time_s)


def test_session_then_protected_read_and_ciphered_write(master: Master) -> None:
    assert master.connect() == 0
    response = master.read_with_rn(GET_CLOCK)
    assert response[:2] == b"\x85\x01" and response[7] == 1  # GET-Response with data
    reply = master.write_ciphered(_set_clock(NEW_TIME))
    assert reply[:2] == b"\x86\x01" and reply[7] == 0, reply.hex()  # SET-Response, DAR success
    assert abs(_clock(master) - NEW_TIME) <= dt.timedelta(seconds=2)


def test_wrong_mac_and_replay_refused_without_effect(master: Master) -> None:
    assert master.connect() == 0
    esam = master.server.management.security.esam  # type: ignore[union-attr]
    errors = esam.mac_errors
    refused = master.write_ciphered(_set_clock(NEW_TIME), spoil_mac=True)
    assert refused == bytes((0x90, 2, 22, 0))  # ESAM verification failed
    assert abs(_clock(master) - NEW_TIME) > dt.timedelta(hours=1)
    assert esam.mac_errors == errors + 1
    assert master.write_ciphered(_set_clock(NEW_TIME), counter=5)[7] == 0
    later = NEW_TIME + dt.timedelta(hours=2)
    assert master.write_ciphered(_set_clock(later), counter=6)[7] == 0
    assert master.write_ciphered(_set_clock(NEW_TIME), counter=5) == bytes((0x90, 2, 23, 0))  # replayed counter
    assert abs(_clock(master) - later) <= dt.timedelta(seconds=2)


def test_wrong_key_gets_no_session(master: Master) -> None:
    assert master.connect(key=bytes(16)) == 2  # symmetric decryption error
    master.session_key = bytes(16)
    assert master.write_ciphered(_set_clock(NEW_TIME)) == bytes((0x90, 2, 20, 0))
    assert abs(_clock(master) - NEW_TIME) > dt.timedelta(hours=1)


def test_session_expires_after_its_validity(master: Master) -> None:
    assert master.connect() == 0
    management = master.server.management
    with management.world.lock:
        management.world.advance(6 * 60.0)  # the ESAM's validity is 5 min as delivered
    assert master.write_ciphered(_set_clock(NEW_TIME)) == bytes((0x90, 2, 20, 0))
    assert abs(_clock(master) - NEW_TIME) > dt.timedelta(hours=1)
    assert master.connect() == 0  # a new session works again
    assert master.write_ciphered(_set_clock(NEW_TIME))[7] == 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tag=st.sampled_from([2, 3, 5, 6, 7, 8, 0x10, 0x99]), body=st.binary(max_size=60))
def test_any_apdu_gets_an_answer_or_silence_never_a_crash(master: Master, tag: int, body: bytes) -> None:
    """Whatever a master (or noise with a good CRC) sends, the meter's firmware keeps serving."""
    apdu = bytes((tag,)) + body
    reply = master.server.respond(Dlt698Frame(0x43, address_to_wire(ADDRESS), 0x10, apdu),
                                  master.server.management.world.time_s)
    assert reply is None or reply.apdu[0] == tag | 0x80
