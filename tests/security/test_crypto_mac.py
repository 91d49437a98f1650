"""The keyed SM4 CBC-MAC engine (one OpenSSL context per key, chaining cancelled per message) gives the
same MACs as the one-shot `sm4_cbc_mac` and as gmssl, for any sequence of messages."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.crypto import Sm4CbcMac, gmssl_sm4_cbc_encrypt, mac4, pad_iso9797_m2, sm4_cbc_mac

KEYS = st.binary(min_size=16, max_size=16)


@settings(max_examples=60, deadline=None)
@given(key=KEYS, messages=st.lists(st.binary(max_size=80), min_size=1, max_size=8))
def test_engine_matches_one_shot_and_gmssl(key: bytes, messages: list[bytes]) -> None:
    engine = Sm4CbcMac(key)
    for message in messages:
        full = engine.mac(message)
        assert full == sm4_cbc_mac(key, message) == gmssl_sm4_cbc_encrypt(key, pad_iso9797_m2(message))[-16:]
        assert engine.mac4(bytearray(message)) == mac4(key, message)


def test_engine_hides_its_key_and_checks_input() -> None:
    key = bytes(range(16))
    engine = Sm4CbcMac(key)
    assert key.hex() not in repr(engine)
    try:
        engine.mac("text")  # type: ignore[arg-type]
    except ValueError as exc:
        assert "must be bytes" in str(exc)
    else:
        raise AssertionError("a str was MACed")
