"""The twin's ESAM model at the APDU level: ATR, files, key dispersion and internal authentication, the
challenge that opens a session, update with MAC (plain and ciphertext files), the MAC-error counter and
its lockout, the session timer, and the status words of bad commands. Driven byte by byte, without the
MCU model or the master station."""

from __future__ import annotations

import random

import pytest

from drivers.clock import ManualClock
from drivers.crypto import mac4, pad_iso9797_m2, sm4_cbc_encrypt, sm4_ecb_encrypt
from rig.config import SecurityKnobs
from rig.twin.esam import LOCKOUT_THRESHOLD, Esam, twin_master_key

MASTER = twin_master_key(7)
NUMBER = "000000000042"
D = bytes(2) + bytes.fromhex(NUMBER)
SERIAL = bytes.fromhex("0102030405060708")
R1 = bytes(range(8))


def esam(**knobs: bool) -> tuple[Esam, ManualClock]:
    clock = ManualClock()
    return Esam(MASTER, NUMBER, SERIAL, SecurityKnobs(**knobs), random.Random(3), clock.now), clock


def apdu(chip: Esam, hex_header: str, data: bytes = b"") -> tuple[str, bytes]:
    response = chip.transmit(bytes.fromhex(hex_header) + data)
    return response[-2:].hex().upper(), response[:-2]


def open_session(chip: Esam) -> bytes:
    """The firmware's sequence; returns the session key the emulation says the chip now holds."""
    chip.reset()
    assert apdu(chip, "80FA000308", D)[0] == "9000"
    assert apdu(chip, "80FA000008", R1)[0] == "6108"
    status, ciphertext2 = apdu(chip, "00C0000008")
    meter_key = sm4_ecb_encrypt(MASTER, D + bytes(b ^ 0xFF for b in D))
    assert status == "9000" and ciphertext2 == sm4_ecb_encrypt(meter_key, R1 + R1)[:8]
    status, random2 = apdu(chip, "0084000004")
    assert status == "9000" and len(random2) == 4
    return sm4_ecb_encrypt(meter_key, pad_iso9797_m2(R1 + random2))


def protected(key: bytes, tag: int, selector: bytes, body: bytes, counter: int) -> bytes:
    signed = bytes((tag,)) + selector + body + counter.to_bytes(4, "big")
    return signed + mac4(key, signed)


def update(chip: Esam, p1: int, payload: bytes) -> str:
    return apdu(chip, f"04D6{p1:02X}00{len(payload):02X}", payload)[0]


def test_atr_serial_and_meter_number() -> None:
    chip, _ = esam()
    atr = chip.reset()
    assert atr[:2] == bytes((0x3B, 0x69)) and len(atr) == 13 and atr[-8:] == SERIAL
    assert apdu(chip, "00B0990108") == ("9000", SERIAL)
    assert apdu(chip, "00B0821E06") == ("9000", bytes.fromhex(NUMBER))
    assert apdu(chip, "00A4000002", bytes((0, 0x19)))[0] == "9000" and apdu(chip, "00B0000109")[1][:8] == SERIAL
    assert apdu(chip, "00A4000002", bytes((0, 0x55)))[0] == "6A82"


def test_session_opens_after_internal_authentication_and_expires_on_the_clock() -> None:
    chip, clock = esam()
    assert not chip.session_open()
    key = open_session(chip)
    assert chip.session_open() and chip.validity_min() == 5
    assert update(chip, 0x8A, protected(key, 0x14, bytes(4), b"\x12\x34", 1)) == "9000"
    assert chip.files[0x0A][:2] == b"\x12\x34"
    clock.t = 5 * 60 - 0.1
    assert chip.session_open()
    clock.t = 5 * 60 + 0.1
    assert not chip.session_open() and update(chip, 0x8A, protected(key, 0x14, bytes(4), b"\x00", 2)) == "6982"
    assert chip.mac_errors == 0


def test_validity_write_sets_the_timer_again() -> None:
    chip, clock = esam()
    key = open_session(chip)
    clock.t = 200.0
    assert update(chip, 0x82, protected(key, 0x03, bytes(4), bytes((0x02, 0x00)), 1)) == "9000"
    assert chip.validity_min() == 2
    clock.t = 200.0 + 119.0
    assert chip.session_open()
    clock.t = 200.0 + 121.0
    assert not chip.session_open()


def test_ciphertext_file_is_decrypted() -> None:
    chip, _ = esam()
    key = open_session(chip)
    plain = bytes((0x1A, 0, 0, 0, 12, 1, 1, 26))
    ciphertext = sm4_cbc_encrypt(key, pad_iso9797_m2(plain))
    assert update(chip, 0x88, protected(key, 0x1C, bytes(4), ciphertext, 1)) == "9000"
    assert apdu(chip, "00B0880008") == ("9000", plain)
    broken = sm4_cbc_encrypt(key, plain + bytes(8))  # no method-2 padding inside
    assert update(chip, 0x88, protected(key, 0x1C, bytes(4), broken, 2)) == "6A80"


def test_bad_mac_and_replay_are_counted_and_block_at_the_threshold() -> None:
    chip, _ = esam()
    key = open_session(chip)
    good = protected(key, 0x14, bytes(4), b"\x01", 1)
    assert update(chip, 0x8A, good) == "9000"
    assert update(chip, 0x8A, good) == "6985" and chip.mac_errors == 1  # the replay
    bad = good[:-1] + bytes((good[-1] ^ 1,))
    for _ in range(LOCKOUT_THRESHOLD - 2):
        assert update(chip, 0x8A, bad) == "6988"
    assert chip.mac_errors == LOCKOUT_THRESHOLD - 1 and not chip.blocked
    assert update(chip, 0x8A, protected(key, 0x14, bytes(4), b"\x02", 5)) == "9000"
    assert update(chip, 0x8A, bad) == "6988" and chip.blocked
    assert update(chip, 0x8A, protected(key, 0x14, bytes(4), b"\x03", 6)) == "6983"
    chip.reset()
    assert apdu(chip, "80FA000308", D)[0] == "6983"
    # The MCU's daily reset: a plain write of the running-information file clears the count.
    assert apdu(chip, "00D6872A02", bytes(2))[0] == "9000" and chip.mac_errors == 0 and not chip.blocked
    assert apdu(chip, "80FA000308", D)[0] == "9000"


@pytest.mark.parametrize(("knob", "check"), [
    ("mac_not_checked", lambda chip, key, good, bad: update(chip, 0x8A, bad) == "9000"),
    ("replay_accepted", lambda chip, key, good, bad: update(chip, 0x8A, good) == "9000" == update(chip, 0x8A, good)),
    ("lockout_disabled", lambda chip, key, good, bad: all(update(chip, 0x8A, bad) == "6988"
                                                          for _ in range(LOCKOUT_THRESHOLD + 5))),
])
def test_defect_knobs(knob: str, check) -> None:
    for defective in (False, True):
        chip, _ = esam(**{knob: defective})
        key = open_session(chip)
        good = protected(key, 0x14, bytes(4), b"\x01", 1)
        bad = good[:-1] + bytes((good[-1] ^ 1,))
        assert check(chip, key, good, bad) is defective, (knob, defective)


def test_weak_random_repeats_random2() -> None:
    for weak in (False, True):
        chip, _ = esam(weak_random=weak)
        draws = {apdu(chip, "0084000004")[1] for _ in range(5)}
        assert (len(draws) == 1) is weak


def test_session_never_expires_knob() -> None:
    chip, clock = esam(session_never_expires=True)
    open_session(chip)
    clock.t = 1e6
    assert chip.session_open()


@pytest.mark.parametrize(("command", "status"), [
    ("00B0", "6700"),  # shorter than a header
    ("10B0000008", "6E00"),  # unknown class
    ("00EE000000", "6D00"),  # unknown instruction
    ("84D4010120" + "00" * 32, "6D00"),  # key update is not part of the emulation
    ("80FA000008" + "00" * 8, "6985"),  # encrypt before a key was dispersed
    ("80FA000508" + "00" * 8, "6A86"),
    ("00C0000008", "6985"),  # nothing to get
    ("00B0990110", "6B00"),  # past the end of the file
    ("00B09F0001", "6A82"),
    ("00D6820002" + "0000", "6982"),  # the parameter file is written with MAC only
    ("04D6880008" + "00" * 8, "6982"),  # no session
    ("00A4000003" + "0000", "6700"),  # Lc does not match the data
    ("00B2010400", "6A83"),
])
def test_bad_commands_get_the_iso_status(command: str, status: str) -> None:
    chip, _ = esam()
    assert apdu(chip, command)[0] == status


def test_get_response_with_the_wrong_length_and_busy_time() -> None:
    chip, _ = esam()
    chip.reset()
    apdu(chip, "80FA000308", D)
    apdu(chip, "80FA000008", R1)
    assert apdu(chip, "00C0000004")[0] == "6C08"
    busy = chip.take_busy_s()
    assert 0.02 < busy < 0.2 and chip.take_busy_s() == 0.0  # ISO 7816 at 9600 bit/s plus crypto work
    assert "master_key" not in repr(chip) and MASTER.hex() not in repr(chip)
