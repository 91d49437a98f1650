"""The twin meter's own DL/T 698.45 codec and the 645/698 demultiplexer on one byte stream; its frames and data
cross-checked against the PyPI `dlt698` package (an independent implementation)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.dlt645 import BadFrame, Dlt645Frame, Function, encode, encode_di
from rig.twin.dlt698.codec import (
    CONTROL_RESPONSE,
    Data,
    Dlt698Frame,
    Tag,
    address_to_wire,
    array,
    crc16_x25,
    decode_data,
    encode_frame,
    parse_frame,
    structure,
    wire_matches,
)
from rig.twin.dlt698.demux import DualFrameReader

dlt698 = pytest.importorskip("dlt698")

ADDRESS = "000000000001"
# A GET-Request normal for 0010 0200 (forward active energy) with no time tag.
GET_ENERGY = bytes.fromhex("0501010010020000")


def _frame(apdu: bytes = GET_ENERGY, control: int = 0x43) -> Dlt698Frame:
    return Dlt698Frame(control, address_to_wire(ADDRESS), 0x10, apdu)


def test_crc_is_x25() -> None:
    assert crc16_x25(b"123456789") == 0x906E


def test_frame_round_trip_and_each_check_refused() -> None:
    raw = encode_frame(_frame())
    assert raw[0] == 0x68 and raw[-1] == 0x16
    assert int.from_bytes(raw[1:3], "little") == len(raw) - 2
    assert parse_frame(raw) == _frame()
    for index, reason in ((12, "HCS"), (-3, "FCS")):
        broken = bytearray(raw)
        broken[index] ^= 0x01
        with pytest.raises(Exception, match=reason):
            parse_frame(bytes(broken))


def test_frames_agree_with_the_pypi_package() -> None:
    """The package decodes the twin's frame, and the twin decodes the package's re-encoding of it."""
    from dlt698.protocol import link

    ours = encode_frame(Dlt698Frame(CONTROL_RESPONSE, address_to_wire(ADDRESS), 0x10, bytes.fromhex("8501")))
    theirs = link.decode_frame(ours)
    assert bytes(theirs.payload) == bytes.fromhex("8501")
    assert bytes(theirs.server.bytes) == address_to_wire(ADDRESS) and theirs.client == 0x10
    assert parse_frame(bytes(link.encode_frame(theirs))) == parse_frame(ours)


def test_data_round_trips_and_matches_the_package_encoding() -> None:
    value = structure([
        array([Data(Tag.DOUBLE_LONG_UNSIGNED, 123456), Data(Tag.DOUBLE_LONG_UNSIGNED, 0)]),
        Data(Tag.DATE_TIME_S, dt.datetime(2026, 1, 2, 3, 4, 5)),
        Data(Tag.OCTET_STRING, bytes.fromhex(ADDRESS)),
        Data(Tag.LONG, -5),
        Data(Tag.SCALER_UNIT, (-2, 33)),
        Data(Tag.BIT_STRING, b"\x80\x01"),
        Data(Tag.BOOL, True),
    ])
    raw = value.encode()
    assert decode_data(raw, 0) == (value, len(raw))
    theirs = dlt698.decode_data(raw)  # the package parses the twin's bytes with nothing left over
    assert bytes(dlt698.encode_data(theirs)) == raw


def test_demux_separates_645_and_698_frames_in_one_burst_and_split_anywhere() -> None:
    f645 = encode(Dlt645Frame(ADDRESS, Function.READ, encode_di(0x00010000)), preamble=4)
    f698 = b"\xfe" * 4 + encode_frame(_frame())
    stream = f698 + f645 + f698
    for cut in range(1, len(stream)):
        reader = DualFrameReader()
        heard = reader.feed(stream[:cut]) + reader.feed(stream[cut:])
        kinds = [type(h).__name__ for h in heard]
        assert kinds == ["Dlt698Frame", "Dlt645Frame", "Dlt698Frame"], cut


def test_demux_reports_a_698_frame_with_a_bad_fcs_and_keeps_645_rules() -> None:
    raw = bytearray(encode_frame(_frame()))
    raw[-3] ^= 0xFF
    reader = DualFrameReader()
    heard = reader.feed(bytes(raw))
    assert [type(h).__name__ for h in heard] == ["Bad698Frame"]
    broken_645 = bytearray(encode(Dlt645Frame(ADDRESS, Function.READ, encode_di(0x00010000))))
    broken_645[-2] ^= 0x01
    heard = reader.feed(bytes(broken_645)) + reader.flush()
    assert any(isinstance(h, BadFrame) for h in heard)


def test_address_matching() -> None:
    own = address_to_wire(ADDRESS)
    assert wire_matches(own, 0, own)
    assert not wire_matches(address_to_wire("000000000002"), 0, own)
    assert wire_matches(bytes.fromhex("aaaaaaaaaaaa"), 1, own)
    assert wire_matches(b"\xaa", 3, own)


@settings(max_examples=60, deadline=None)
@given(
    addresses=st.lists(st.integers(0, 999999999999), min_size=1, max_size=4),
    apdus=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=4),
    cuts=st.lists(st.integers(1, 400), max_size=5),
)
def test_demux_recovers_interleaved_frames_whatever_the_addresses_and_splits(
        addresses: list[int], apdus: list[bytes], cuts: list[int]) -> None:
    """698 addresses may hold 68 where a 645 frame has its second start byte; 645 data may hold 68 too."""
    expected: list[object] = []
    stream = b""
    for n, apdu in enumerate(apdus):
        address = f"{addresses[n % len(addresses)]:012d}"
        frame698 = Dlt698Frame(0x43, address_to_wire(address), n, apdu)
        frame645 = Dlt645Frame(address, Function.READ, encode_di(0x00010000 + n) + apdu[:8])
        stream += b"\xfe\xfe" + encode_frame(frame698) + encode(frame645, preamble=2)
        expected += [frame698, frame645]
    reader = DualFrameReader()
    heard: list[object] = []
    last = 0
    for cut in sorted({c % len(stream) for c in cuts} - {0}):
        heard += reader.feed(stream[last:cut])
        last = cut
    heard += reader.feed(stream[last:]) + reader.flush()
    assert heard == expected


def test_a_645_frame_with_68_near_its_end_is_delivered_when_its_last_byte_arrives() -> None:
    """A 68 in the checksum or the last data byte of a 645 frame begun in an earlier burst is not a 698 header."""
    frame = next(f for n in range(256)
                 if (f := Dlt645Frame(ADDRESS, Function.READ, encode_di(0x00010000) + bytes((n,))))
                 and 0x68 in encode(f)[-3:-1])
    raw = encode(frame, preamble=4)
    for cut in range(1, len(raw)):
        reader = DualFrameReader()
        assert reader.feed(raw[:cut]) == [], cut
        assert reader.feed(raw[cut:]) == [frame], cut
