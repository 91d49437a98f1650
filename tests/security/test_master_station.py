"""The master station's side, sans-IO: request frames byte-exact against the emulation computed here from
the crypto primitives, reply handling (events, refusals with their error words, malformed replies),
session validity, the command counter, tampering, and a key source that never shows its key."""

from __future__ import annotations

import datetime as dt

import pytest

from drivers.crypto import mac4, pad_iso9797_m2, sm4_cbc_decrypt, sm4_ecb_encrypt, unpad_iso9797_m2
from drivers.dlt645 import (
    ControlErrorCode,
    Dlt645Frame,
    ErrorCode,
    Function,
    SecurityErrorCode,
    abnormal_reply,
    encode_datetime,
    encode_di,
    encode_value,
)
from drivers.errors import FrameError, SecurityError, ValidationError
from drivers.security import (
    CIPHERTEXT_LEVEL,
    MAC_LEVEL,
    Accepted,
    EsamSession,
    KeySource,
    RemoteControl,
    RequestKind,
    SecurityRefused,
    SessionState,
    SoftwareKeySource,
    dispersion_factor,
)

MASTER = bytes(range(0x10, 0x20))
ADDRESS = "000000000001"
RANDOM1 = bytes.fromhex("0102030405060708")
RANDOM2 = bytes.fromhex("a1b2c3d4")
SERIAL = bytes.fromhex("1122334455667788")
D = bytes.fromhex("0000000000000001")
METER_KEY = sm4_ecb_encrypt(MASTER, D + bytes(b ^ 0xFF for b in D))
SESSION_KEY = sm4_ecb_encrypt(METER_KEY, RANDOM1 + RANDOM2 + b"\x80" + bytes(3))
TIME_DI = 0x04000102


def auth_reply(random2: bytes = RANDOM2, serial: bytes = SERIAL, address: str = ADDRESS) -> Dlt645Frame:
    return Dlt645Frame.reply(address, Function.SECURITY, encode_di(0x070000FF) + random2[::-1] + serial[::-1])


def opened(validity_min: int | None = None) -> tuple[EsamSession, SoftwareKeySource]:
    keys = SoftwareKeySource(MASTER, "test key")
    session = EsamSession(ADDRESS, keys, validity_min=validity_min)
    request = session.authentication_request(random1=RANDOM1)
    session.handle_reply(request, auth_reply(), now_s=100.0)
    return session, keys


def test_authentication_request_is_the_emulation_byte_for_byte() -> None:
    session = EsamSession(ADDRESS, SoftwareKeySource(MASTER), operator="12345678")
    request = session.authentication_request(random1=RANDOM1)
    ciphertext1 = sm4_ecb_encrypt(METER_KEY, RANDOM1 + RANDOM1)[:8]
    expected = encode_di(0x070000FF) + bytes.fromhex("78563412") + ciphertext1[::-1] + RANDOM1[::-1] + D[::-1]
    assert request.frame == Dlt645Frame(ADDRESS, 0x03, expected)
    assert dispersion_factor(ADDRESS) == D
    assert session.state is SessionState.AUTHENTICATING


def test_authenticated_reply_opens_the_session_with_the_derived_key() -> None:
    session, _ = opened()
    assert session.state is SessionState.OPEN and session.random2 == RANDOM2 and session.esam_serial == SERIAL
    deadline = dt.datetime(2026, 1, 1, 9, 0, 0)
    request = session.control_request(RemoteControl.TRIP, deadline, now_s=101.0)
    data = request.frame.data
    assert request.frame.control == 0x1C and data[:8] == bytes((0x98, 0, 0, 0, 0, 0, 0, 0))
    ciphertext, counter, mac = data[8:24][::-1], data[24:28][::-1], data[28:32][::-1]
    assert counter == (1).to_bytes(4, "big")
    assert unpad_iso9797_m2(sm4_cbc_decrypt(SESSION_KEY, ciphertext)) == bytes((0x1A, 0)) + encode_datetime(deadline)
    assert mac == mac4(SESSION_KEY, bytes((0x1C, 0x98, 0, 0, 0)) + ciphertext + counter)
    assert session.handle_reply(request, request.frame.reply_to(b""), 101.5) == Accepted(RequestKind.CONTROL, 1)


def test_protected_writes_at_levels_99_and_98() -> None:
    session, _ = opened()
    value = dt.time(12, 34, 56)
    plain = session.write_request(TIME_DI, value, level=MAC_LEVEL, now_s=101.0)
    data = plain.frame.data
    assert data[:4] == encode_di(TIME_DI) and data[4] == 0x99 and data[12:15] == encode_value(TIME_DI, value)
    assert data[-4:][::-1] == mac4(SESSION_KEY, bytes((0x14,)) + encode_di(TIME_DI) + encode_value(TIME_DI, value)
                                   + (1).to_bytes(4, "big"))
    cipher = session.write_request(TIME_DI, value, level=CIPHERTEXT_LEVEL, now_s=101.0)
    body = cipher.frame.data[12:28][::-1]
    assert cipher.counter == 2 and cipher.frame.data[4] == 0x98
    assert unpad_iso9797_m2(sm4_cbc_decrypt(SESSION_KEY, body)) == encode_value(TIME_DI, value)
    with pytest.raises(ValidationError, match="not a secured level"):
        session.write_request(TIME_DI, value, level=0x02, now_s=101.0)


def test_validity_write_restarts_the_local_countdown() -> None:
    session, _ = opened(validity_min=5)
    assert session.valid_until_s == pytest.approx(400.0)
    request = session.validity_request(2, now_s=200.0)
    assert request.frame.data[8:10] == bytes((0x02, 0x00))  # BCD minutes, low byte first
    session.handle_reply(request, request.frame.reply_to(request.frame.data[:4]), 200.0)
    assert session.validity_min == 2 and session.is_open(319.0) and not session.is_open(321.0)
    with pytest.raises(SecurityError, match="validity has passed"):
        session.control_request(RemoteControl.ALARM_ON, dt.datetime(2026, 1, 1, 9), now_s=330.0)
    late = session.control_request(RemoteControl.ALARM_ON, dt.datetime(2026, 1, 1, 9), now_s=330.0,
                                   even_if_closed=True)
    assert late.counter == 2
    for bad in (0, 10000, 1.5, True):
        with pytest.raises(ValidationError, match=r"1\.\.9999"):
            session.validity_request(bad, now_s=200.0)  # type: ignore[arg-type]


def test_counter_increases_and_restarts_with_each_session() -> None:
    session, _ = opened()
    deadline = dt.datetime(2026, 1, 1, 9)
    counters = [session.control_request(RemoteControl.ALARM_OFF, deadline, now_s=101.0).counter for _ in range(3)]
    assert counters == [1, 2, 3]
    again = session.authentication_request(random1=RANDOM1)
    session.handle_reply(again, auth_reply(random2=bytes(4)), 102.0)
    assert session.control_request(RemoteControl.ALARM_OFF, deadline, now_s=103.0).counter == 1


def test_no_protected_command_without_keys_or_after_the_end() -> None:
    session = EsamSession(ADDRESS, SoftwareKeySource(MASTER))
    with pytest.raises(SecurityError, match="no session keys yet"):
        session.control_request(RemoteControl.TRIP, dt.datetime(2026, 1, 1), now_s=0.0, even_if_closed=True)
    session, _ = opened()
    end = session.end_request()
    assert end.frame.data == encode_di(0x070002FF) + bytes(4)
    session.handle_reply(end, end.frame.reply_to(end.frame.data[:4]), 110.0)
    assert session.state is SessionState.ENDED and not session.is_open(110.0)
    with pytest.raises(SecurityError, match="session is ended"):
        session.control_request(RemoteControl.TRIP, dt.datetime(2026, 1, 1), now_s=111.0)
    assert session.control_request(RemoteControl.TRIP, dt.datetime(2026, 1, 1), now_s=111.0,
                                   even_if_closed=True).counter == 1
    session.forget()
    with pytest.raises(SecurityError, match="no session keys"):
        session.control_request(RemoteControl.TRIP, dt.datetime(2026, 1, 1), now_s=111.0, even_if_closed=True)


@pytest.mark.parametrize(("function", "word", "flag", "hint"), [
    (Function.SECURITY, 0x0008, SecurityErrorCode.IDENTITY_AUTHENTICATION_FAILED, "wrong key"),
    (Function.SECURITY, 0x0001, SecurityErrorCode.OTHER, "dispersion factor"),
    (Function.SECURITY, 0x0100, SecurityErrorCode.METER_SUSPENDED, "daily reset"),
])
def test_refused_authentication_names_the_error(function: Function, word: int, flag: SecurityErrorCode,
                                                hint: str) -> None:
    session = EsamSession(ADDRESS, SoftwareKeySource(MASTER))
    request = session.authentication_request()
    with pytest.raises(SecurityRefused, match=hint) as caught:
        session.handle_reply(request, abnormal_reply(ADDRESS, function, word), 1.0)
    assert caught.value.error == flag and caught.value.kind is RequestKind.AUTHENTICATION
    assert f"0x{word:04X}" in str(caught.value) and session.state is SessionState.IDLE


def test_refused_control_and_write_carry_their_flag_types() -> None:
    session, _ = opened()
    control = session.control_request(RemoteControl.TRIP, dt.datetime(2026, 1, 1, 9), now_s=101.0)
    with pytest.raises(SecurityRefused, match="keep-power") as caught:
        session.handle_reply(control, abnormal_reply(ADDRESS, Function.CONTROL, 0x20), 101.0)
    assert caught.value.error == ControlErrorCode.TRIP_REFUSED
    write = session.write_request(TIME_DI, dt.time(1, 2, 3), now_s=101.0)
    with pytest.raises(SecurityRefused, match="UNAUTHORISED") as caught:
        session.handle_reply(write, abnormal_reply(ADDRESS, Function.WRITE, 0x04), 101.0)
    assert caught.value.error == ErrorCode.UNAUTHORISED


@pytest.mark.parametrize(("reply", "message"), [
    (Dlt645Frame.reply(ADDRESS, Function.SECURITY, encode_di(0x070000FF) + bytes(6)), "truncated"),
    (Dlt645Frame.reply(ADDRESS, Function.SECURITY, encode_di(0x070001FF) + bytes(12)), "DI 070001FF"),
    (Dlt645Frame.reply("000000000002", Function.SECURITY, encode_di(0x070000FF) + bytes(12)), "000000000002"),
    (Dlt645Frame.reply(ADDRESS, Function.READ, encode_di(0x070000FF) + bytes(12)), "control byte 0x91"),
    (Dlt645Frame(ADDRESS, 0xA3, encode_di(0x070000FF) + bytes(12)), "follow-up"),
    (Dlt645Frame(ADDRESS, 0xC3, bytes(3)), "abnormal reply to identity authentication .*L = 2"),
])
def test_malformed_authentication_reply_is_a_frame_error(reply: Dlt645Frame, message: str) -> None:
    session = EsamSession(ADDRESS, SoftwareKeySource(MASTER))
    request = session.authentication_request()
    with pytest.raises(FrameError, match=message):
        session.handle_reply(request, reply, 1.0)
    assert session.state is not SessionState.OPEN


def test_reply_to_a_protected_command_must_carry_what_the_standard_says() -> None:
    session, _ = opened()
    control = session.control_request(RemoteControl.TRIP, dt.datetime(2026, 1, 1, 9), now_s=101.0)
    with pytest.raises(FrameError, match="expected no data"):
        session.handle_reply(control, control.frame.reply_to(b"\x00"), 101.0)
    validity = session.validity_request(9, now_s=101.0)
    with pytest.raises(FrameError, match="expected the DI 070001FF"):
        session.handle_reply(validity, validity.frame.reply_to(b""), 101.0)


def test_tampered_flips_one_bit_of_the_named_field() -> None:
    session, _ = opened()
    request = session.control_request(RemoteControl.TRIP, dt.datetime(2026, 1, 1, 9), now_s=101.0)
    for name, (start, stop) in request.fields.items():
        changed = request.tampered(name, bit=6)
        diff = [i for i, (a, b) in enumerate(zip(request.frame.data, changed.frame.data)) if a != b]
        assert diff == [start] and start < stop and changed.frame.data[start] ^ request.frame.data[start] == 0x40
    assert set(request.fields) == {"password", "operator", "ciphertext", "counter", "mac"}
    with pytest.raises(ValidationError, match="no field 'signature'"):
        request.tampered("signature")


def test_key_source_never_shows_its_key() -> None:
    keys = SoftwareKeySource(MASTER, "key file /secure/esam.key")
    assert isinstance(keys, KeySource)
    session, _ = opened()
    shown = [repr(keys), keys.description, repr(session)]
    assert not any(MASTER.hex() in text or METER_KEY.hex() in text for text in shown)
    with pytest.raises(SecurityError) as caught:
        SoftwareKeySource(MASTER[:15] + b"\xee\xff", "key file x")
    assert "16 bytes" in str(caught.value) and MASTER.hex() not in str(caught.value)
    with pytest.raises(SecurityError, match="not open"):
        keys.mac(session._handle, b"x")  # type: ignore[arg-type]  # another source's handle


def test_appears_in_finds_master_meter_and_session_keys() -> None:
    _, keys = opened()
    assert keys.appears_in(MASTER.hex().upper()) and keys.appears_in(f"line: {METER_KEY.hex(' ')} end")
    assert keys.appears_in(b"junk" + SESSION_KEY + b"junk") and keys.appears_in(SESSION_KEY.hex().encode())
    assert not keys.appears_in(RANDOM1.hex() + SERIAL.hex()) and not keys.appears_in(bytes(64))


def test_bad_arguments_are_validation_errors() -> None:
    keys = SoftwareKeySource(MASTER)
    with pytest.raises(ValidationError, match="12 decimal digits"):
        dispersion_factor("12345")
    with pytest.raises(ValidationError, match="operator code"):
        EsamSession(ADDRESS, keys, operator="xyz")
    with pytest.raises(FrameError):
        EsamSession("12345", keys)
    with pytest.raises(ValidationError, match="random1 must be 8 bytes"):
        EsamSession(ADDRESS, keys).authentication_request(random1=bytes(7))
    with pytest.raises(ValidationError, match="KeySource"):
        EsamSession(ADDRESS, object())  # type: ignore[arg-type]
    assert pad_iso9797_m2(b"") == b"\x80" + bytes(15)
