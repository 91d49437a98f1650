"""DL/T 645-2007 codec: golden frames from reference/dlt645.md, every FrameError, the stream reader, values."""

from __future__ import annotations

import ast
import datetime as dt
import re
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.dlt645 import (
    BAUD_WORDS,
    BROADCAST_ADDRESS,
    DATA_ITEMS,
    WILDCARD_ADDRESS,
    BadFrame,
    ControlErrorCode,
    DataItem,
    Dlt645Frame,
    ErrorCode,
    FrameReader,
    Function,
    Kind,
    SecurityErrorCode,
    abnormal_error,
    abnormal_reply,
    address_from_wire,
    address_to_wire,
    baud_from_word,
    baud_word,
    bcd_decode,
    bcd_encode,
    data_item,
    decode,
    decode_broadcast_time,
    decode_di,
    decode_value,
    encode,
    encode_broadcast_time,
    encode_di,
    encode_value,
    split_di,
)
from drivers.errors import FrameError

METER = "001234567890"


def raises_frame_error(message: str) -> AbstractContextManager[pytest.ExceptionInfo[FrameError]]:
    """pytest.raises for a FrameError whose message contains `message` word for word."""
    return pytest.raises(FrameError, match=re.escape(message))


def wire(text: str) -> bytes:
    return bytes.fromhex(text)


# ---------------------------------------------------------------- golden frames (reference/dlt645.md)

GOLDEN = [
    pytest.param(
        "68 90 78 56 34 12 00 68 11 04 33 33 33 33 55 16", 0,
        Dlt645Frame.request("001234567890", Function.READ, encode_di(0x00000000)),
        id="read-00000000",
    ),
    pytest.param(
        "68 78 56 34 12 00 00 68 11 04 33 34 34 35 C9 16", 0,
        Dlt645Frame.request("000012345678", Function.READ, encode_di(0x02010100)),
        id="read-02010100",
    ),
    pytest.param(
        "FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16", 4,
        Dlt645Frame.request(WILDCARD_ADDRESS, Function.READ_ADDRESS),
        id="read-address-wildcard",
    ),
    pytest.param(
        "FE FE FE FE 68 12 34 56 78 10 12 68 15 06 45 67 89 AB 43 46 8A 16", 4,
        Dlt645Frame.request("121078563412", Function.WRITE_ADDRESS, wire("12 34 56 78 10 13")),
        id="write-address",
    ),
    pytest.param(
        "FE FE FE FE 68 99 99 99 99 99 99 68 08 06 58 44 35 45 67 89 7A 16", 4,
        Dlt645Frame.request(BROADCAST_ADDRESS, Function.BROADCAST_TIME, wire("25 11 02 12 34 56")),
        id="broadcast-time",
    ),
]


@pytest.mark.parametrize(("hex_text", "preamble", "frame"), GOLDEN)
def test_golden_frame_encodes_byte_exact(hex_text: str, preamble: int, frame: Dlt645Frame) -> None:
    assert encode(frame, preamble=preamble) == wire(hex_text)


@pytest.mark.parametrize(("hex_text", "preamble", "frame"), GOLDEN)
def test_golden_frame_decodes(hex_text: str, preamble: int, frame: Dlt645Frame) -> None:
    assert decode(wire(hex_text)) == frame
    assert FrameReader().feed(wire(hex_text)) == [frame]


def test_golden_broadcast_time_payload_is_an_impossible_month() -> None:
    frame = decode(wire("FE FE FE FE 68 99 99 99 99 99 99 68 08 06 58 44 35 45 67 89 7A 16"))
    assert frame.function is Function.BROADCAST_TIME and frame.is_broadcast
    with raises_frame_error("month 34 out of range 1..12"):
        decode_broadcast_time(frame.data)


def test_read_golden_frame_carries_its_data_identifier() -> None:
    frame = decode(wire("68 78 56 34 12 00 00 68 11 04 33 34 34 35 C9 16"))
    assert frame.address == "000012345678"
    assert split_di(frame.data) == (0x02010100, b"")


# ---------------------------------------------------------------- frame layout


def test_address_goes_on_the_wire_lowest_byte_first() -> None:
    assert address_to_wire(METER) == wire("90 78 56 34 12 00")
    assert encode(Dlt645Frame.request(METER, Function.READ), preamble=0)[1:7] == wire("90 78 56 34 12 00")
    assert address_from_wire(wire("90 78 56 34 12 00")) == METER


def test_every_data_byte_is_sent_plus_33h_modulo_256() -> None:
    raw = encode(Dlt645Frame.request(METER, Function.WRITE, wire("00 01 CC CD FF")), preamble=0)
    assert raw[10:15] == wire("33 34 FF 00 32")
    assert decode(raw).data == wire("00 01 CC CD FF")


def test_checksum_covers_first_68_to_end_of_data_but_not_the_preamble() -> None:
    raw = encode(Dlt645Frame.request(METER, Function.READ, encode_di(0x02010100)), preamble=4)
    assert raw[:4] == wire("FE FE FE FE")
    assert raw[-2] == sum(raw[4:-2]) % 256
    assert raw[-1] == 0x16


@pytest.mark.parametrize("preamble", range(5))
def test_preamble_of_0_to_4_wake_up_bytes(preamble: int) -> None:
    frame = Dlt645Frame.request(METER, Function.READ)
    raw = encode(frame, preamble=preamble)
    assert raw[:preamble] == b"\xfe" * preamble and raw[preamble] == 0x68
    assert decode(raw) == frame


def test_control_byte_bits() -> None:
    request = Dlt645Frame.request(METER, Function.READ, encode_di(0))
    assert request.control == 0x11
    assert not (request.is_reply or request.is_abnormal or request.has_follow_up)
    reply = request.reply_to(encode_di(0) + wire("00 00 00 00"), follow_up=True)
    assert reply.control == 0xB1 and reply.is_reply and reply.has_follow_up and not reply.is_abnormal
    assert reply.function is Function.READ and reply.address == METER
    assert Dlt645Frame.reply(METER, Function.READ).control == 0x91
    abnormal = Dlt645Frame(METER, 0xD1, b"\x02")
    assert abnormal.is_reply and abnormal.is_abnormal and abnormal.function is Function.READ


def test_reply_to_a_wildcard_request_carries_the_meters_own_address() -> None:
    request = Dlt645Frame.request(WILDCARD_ADDRESS, Function.READ_ADDRESS)
    reply = request.reply_to(address_to_wire(METER), address=METER)
    assert (reply.address, reply.control) == (METER, 0x93)


def test_unknown_function_code_is_named() -> None:
    frame = Dlt645Frame(METER, 0x81)
    assert frame.function_code == 0x01
    with raises_frame_error("unknown function code 0x01 in control byte 0x81"):
        _ = frame.function


@pytest.mark.parametrize(
    "address", ["12345", "0012345678901", "00123456789A", "aaaaaaaaaaaa", "00123456789 ", "A0123456789A"]
)
def test_frame_rejects_an_address_that_is_not_12_nameplate_digits(address: str) -> None:
    with raises_frame_error("not 12 digits"):
        Dlt645Frame(address, 0x11)


def test_abbreviated_address_with_wildcard_high_bytes_is_accepted() -> None:
    frame = Dlt645Frame.request("AAAA34567890", Function.READ)
    assert encode(frame, preamble=0)[1:7] == wire("90 78 56 34 AA AA")


def test_frame_rejects_a_control_byte_above_255() -> None:
    with raises_frame_error("control byte 256"):
        Dlt645Frame(METER, 256)


def test_frame_freezes_bytearray_data() -> None:
    frame = Dlt645Frame(METER, 0x11, bytearray(b"\x01"))  # type: ignore[arg-type]
    assert type(frame.data) is bytes
    assert hash(frame) == hash(Dlt645Frame(METER, 0x11, b"\x01"))


def test_encode_rejects_data_longer_than_255() -> None:
    with raises_frame_error("data too long: L = 256"):
        encode(Dlt645Frame(METER, 0x14, bytes(256)))
    assert len(encode(Dlt645Frame(METER, 0x14, bytes(255)), preamble=0)) == 255 + 12


def test_encode_rejects_a_preamble_of_five() -> None:
    with raises_frame_error("preamble must be 0..4"):
        encode(Dlt645Frame(METER, 0x11), preamble=5)


# ---------------------------------------------------------------- decode: every FrameError named

GOOD = encode(Dlt645Frame.request(METER, Function.READ, encode_di(0)), preamble=0)  # ... 55 16


def with_checksum(body: bytes) -> bytes:
    """`body` (68 .. DATA) completed with its right checksum and 16."""
    return body + bytes((sum(body) % 256, 0x16))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(b"", "missing start byte 0x68", id="empty"),
        pytest.param(b"\xfe\xfe", "missing start byte 0x68", id="only-preamble"),
        pytest.param(b"\x00" + GOOD, "missing start byte 0x68 at offset 0: got 0x00", id="noise-first"),
        pytest.param(GOOD[:9], "truncated header: 9 byte", id="truncated-header"),
        pytest.param(GOOD[:7] + b"\x00" + GOOD[8:], "second start byte 0x68 missing at offset 7: got 0x00",
                     id="second-68"),
        pytest.param(GOOD[:-1], "length beyond buffer: L = 4 needs 16 bytes", id="short"),
        pytest.param(GOOD[:-2] + b"\x56\x16", "bad checksum: got 0x56, computed 0x55", id="checksum"),
        pytest.param(GOOD[:-1] + b"\x17", "bad end byte: got 0x17, expected 0x16", id="end-byte"),
        pytest.param(GOOD + b"\x00", "trailing bytes: 1 after the end byte", id="trailing"),
        pytest.param(GOOD + GOOD, "trailing bytes: 16 after the end byte", id="two-frames"),
        pytest.param(with_checksum(wire("68 90 78 56 1A 12 00 68 11 00")),
                     "non-BCD address byte 0x1A at address position 3", id="address-not-bcd"),
    ],
)
def test_decode_names_what_is_wrong(raw: bytes, message: str) -> None:
    with raises_frame_error(message):
        decode(raw)


def test_decode_error_is_also_a_value_error() -> None:
    with pytest.raises(ValueError, match="bad checksum"):
        decode(GOOD[:-2] + b"\x00\x16")


# ---------------------------------------------------------------- stream reader


def frame_bytes(address: str = METER, data: bytes = b"", control: int = 0x11, preamble: int = 4) -> bytes:
    return encode(Dlt645Frame(address, control, data), preamble=preamble)


def test_reader_skips_leading_noise_and_counts_it() -> None:
    reader = FrameReader()
    out = reader.feed(wire("00 16 A5 FE 16") + frame_bytes())
    assert out == [Dlt645Frame(METER, 0x11)]
    assert reader.discarded == 4  # the FE is a wake-up byte, not counted
    assert reader.pending == b""


def test_reader_copes_with_68_16_and_fe_inside_address_and_data() -> None:
    # Plain CB -> wire FE, 35 -> 68, E3 -> 16: the data field carries every framing byte.
    frame = Dlt645Frame("166816681668", 0x91, wire("35 E3 CB 35 35 E3"))
    raw = encode(frame)
    assert raw[14:20] == wire("68 16 FE 68 68 16")
    reader = FrameReader()
    assert reader.feed(raw + raw) == [frame, frame]
    assert reader.discarded == 0


def test_reader_fed_byte_by_byte_yields_the_frame_only_at_its_end_byte() -> None:
    raw = frame_bytes(data=encode_di(0x02010100))
    reader = FrameReader()
    for index, byte in enumerate(raw[:-1]):
        assert reader.feed(bytes((byte,))) == []
        assert reader.pending == raw[4 : index + 1]  # the FE preamble is not kept
    assert reader.feed(raw[-1:]) == [Dlt645Frame(METER, 0x11, encode_di(0x02010100))]
    assert reader.pending == b""


def test_reader_keeps_a_partial_frame_until_more_bytes_come() -> None:
    raw = frame_bytes(data=b"\x01\x02\x03", preamble=0)
    reader = FrameReader()
    assert reader.feed(raw[:11]) == []
    assert reader.pending == raw[:11]
    assert reader.feed(raw[11:]) == [Dlt645Frame(METER, 0x11, b"\x01\x02\x03")]


def test_reader_reports_bad_checksum_then_still_delivers_the_good_frame() -> None:
    bad = bytearray(frame_bytes(preamble=0))
    bad[-2] ^= 0xFF
    good = frame_bytes(data=b"\x07")
    out = FrameReader().feed(bytes(bad) + good)
    assert out[0] == BadFrame(bytes(bad), f"bad checksum: got 0x{bad[-2]:02X}, computed 0x{bad[-2] ^ 0xFF:02X}")
    assert out[1:] == [Dlt645Frame(METER, 0x11, b"\x07")]


def test_reader_reports_bad_end_byte_then_resyncs() -> None:
    bad = frame_bytes(preamble=0)[:-1] + b"\x17"
    out = FrameReader().feed(bad + frame_bytes())
    assert out == [BadFrame(bad, "bad end byte: got 0x17, expected 0x16"), Dlt645Frame(METER, 0x11)]


def test_reader_finds_a_good_frame_hidden_behind_a_false_start() -> None:
    # A noise 68 seven bytes before the real frame looks like a header, with L = 0x78 from the
    # real address; the real frame lies inside that span and must come out once the false one fails.
    good = frame_bytes(data=b"\x11" * 20, preamble=0)
    noise = wire("68 00 00 00 00 00 00")
    later = frame_bytes(preamble=0) * 10
    out = FrameReader().feed(noise + good + later)
    assert isinstance(out[0], BadFrame) and out[0].raw == (noise + good + later)[: 12 + 0x78]
    assert out[0].reason.startswith("bad checksum")
    assert out[1:] == [Dlt645Frame(METER, 0x11, b"\x11" * 20)] + [Dlt645Frame(METER, 0x11)] * 10


def test_reader_reports_length_beyond_its_maximum_without_waiting_for_the_data() -> None:
    reader = FrameReader(max_length=200)
    oversize = frame_bytes(data=bytes(201), preamble=0)
    out = reader.feed(oversize[:10] + frame_bytes(preamble=0))
    assert out == [BadFrame(oversize[:10], "length beyond maximum: L = 201, at most 200"), Dlt645Frame(METER, 0x11)]


def test_flush_releases_a_frame_held_back_by_a_false_start() -> None:
    # After the oversize header, its own second 68 plus the FE preamble put the real frame's 68 seven
    # bytes on: a second false start with L = 0x78 that only a quiet line (flush) can end.
    reader = FrameReader(max_length=200)
    oversize = frame_bytes(data=bytes(201), preamble=0)[:10]
    out = reader.feed(oversize + frame_bytes())
    assert out == [BadFrame(oversize, "length beyond maximum: L = 201, at most 200")]
    assert reader.pending == oversize[7:] + frame_bytes()
    out = reader.flush()
    assert isinstance(out[0], BadFrame) and out[0].reason == "truncated: L = 120 needs 132 bytes, got 19"
    assert out[1:] == [Dlt645Frame(METER, 0x11)]
    assert reader.pending == b""


def test_reader_accepts_l_up_to_its_maximum() -> None:
    frame = Dlt645Frame(METER, 0x91, bytes(range(200)))
    assert FrameReader(max_length=200).feed(encode(frame)) == [frame]


def test_reader_reports_a_non_bcd_address_and_steps_over_the_frame() -> None:
    bad = with_checksum(wire("68 90 78 56 1A 12 00 68 11 00"))
    out = FrameReader().feed(bad + frame_bytes())
    assert isinstance(out[0], BadFrame) and "non-BCD address byte 0x1A" in out[0].reason
    assert out[1:] == [Dlt645Frame(METER, 0x11)]


def test_flush_reports_a_truncated_frame_and_starts_afresh() -> None:
    raw = frame_bytes(data=b"\x01\x02")
    reader = FrameReader()
    assert reader.feed(raw[:15]) == []
    assert reader.flush() == [BadFrame(raw[4:15], "truncated: L = 2 needs 14 bytes, got 11")]
    assert reader.pending == b""
    assert reader.feed(raw[:13]) == []
    assert reader.flush() == [BadFrame(raw[4:13], "truncated header: 9 byte(s)")]
    assert reader.feed(frame_bytes()) == [Dlt645Frame(METER, 0x11)]
    assert reader.discarded == 0


def test_flush_of_a_lone_start_byte_counts_it_as_noise() -> None:
    reader = FrameReader()
    assert reader.feed(wire("68 90 78")) == []
    assert reader.flush() == []
    assert (reader.discarded, reader.pending) == (3, b"")


def test_reader_rejects_a_maximum_beyond_255() -> None:
    with raises_frame_error("max_length must be 0..255"):
        FrameReader(max_length=256)


# ---------------------------------------------------------------- properties

ADDRESS_BYTE = st.sampled_from([f"{n:02d}" for n in range(100)] + ["AA"])
ADDRESSES = st.lists(ADDRESS_BYTE, min_size=6, max_size=6).map("".join)
FRAMES = st.builds(Dlt645Frame, ADDRESSES, st.integers(0, 255), st.binary(max_size=255))
NOISE = st.binary(max_size=30).map(lambda b: b.replace(b"\x68", b""))


@given(FRAMES, st.integers(0, 4))
def test_any_frame_round_trips(frame: Dlt645Frame, preamble: int) -> None:
    raw = encode(frame, preamble=preamble)
    assert len(raw) == preamble + 12 + len(frame.data)
    assert decode(raw) == frame


@given(st.lists(st.tuples(NOISE, FRAMES, st.integers(0, 4)), max_size=6), NOISE, st.data())
def test_reader_over_any_chunking_yields_exactly_the_frames(
    parts: list[tuple[bytes, Dlt645Frame, int]], tail: bytes, data: st.DataObject
) -> None:
    stream = b"".join(noise + encode(frame, preamble=preamble) for noise, frame, preamble in parts) + tail
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    reader = FrameReader()
    out = []
    for begin, end in zip([0, *cuts], [*cuts, len(stream)]):
        out += reader.feed(stream[begin:end])
    assert out == [frame for _, frame, _ in parts]
    noise_bytes = b"".join(noise for noise, _, _ in parts) + tail
    assert reader.discarded == len(noise_bytes) - noise_bytes.count(0xFE)


@given(st.binary(max_size=300))
def test_decode_of_any_bytes_gives_a_frame_or_frame_error(raw: bytes) -> None:
    try:
        frame = decode(raw)
    except FrameError:
        return
    assert encode(frame, preamble=0) == raw.lstrip(b"\xfe")


RANDOM_STREAM = st.lists(
    st.one_of(st.binary(max_size=40), st.sampled_from([b"\x68", b"\x16", b"\xfe", GOOD, GOOD[:-2]])), max_size=30
).map(b"".join)


@given(RANDOM_STREAM, st.lists(st.integers(0, 1200), max_size=20), st.integers(0, 255))
def test_reader_never_raises_and_gives_the_same_answer_for_any_chunking(
    stream: bytes, cuts: list[int], max_length: int
) -> None:
    whole = FrameReader(max_length)
    expected = whole.feed(stream)
    chunked = FrameReader(max_length)
    out = []
    cuts = sorted(min(cut, len(stream)) for cut in cuts)
    for begin, end in zip([0, *cuts], [*cuts, len(stream)]):
        out += chunked.feed(stream[begin:end])
        assert len(chunked.pending) < 12 + max_length  # bounded: at most one incomplete frame
    assert out == expected
    assert (chunked.discarded, chunked.pending) == (whole.discarded, whole.pending)
    assert all(isinstance(item, Dlt645Frame | BadFrame) for item in out)
    chunked.flush()
    assert chunked.pending == b""


# ---------------------------------------------------------------- data identifiers and values


def test_data_identifier_is_sent_low_byte_first() -> None:
    assert encode_di(0x02010100) == wire("00 01 01 02")
    assert decode_di(wire("00 01 01 02")) == 0x02010100
    assert encode_di(0x070000FF) == wire("FF 00 00 07")


@pytest.mark.parametrize("raw", [b"", b"\x00\x01\x01", bytes(5)])
def test_data_identifier_must_be_4_bytes(raw: bytes) -> None:
    with raises_frame_error(f"must be 4 bytes, got {len(raw)}"):
        decode_di(raw)


def test_data_identifier_beyond_4_bytes_is_refused() -> None:
    with raises_frame_error("does not fit in 4 bytes"):
        encode_di(1 << 32)


@pytest.mark.parametrize(
    ("di", "value", "raw"),
    [
        (0x00010000, 123456.78, "78 56 34 12"),
        (0x00000000, -1.5, "50 01 00 80"),  # combined energy: sign in the top bit
        (0x02010100, 230.1, "01 23"),
        (0x02020100, 5.123, "23 51 00"),
        (0x02020100, -1.234, "34 12 80"),
        (0x02030000, -12.3456, "56 34 92"),
        (0x02800002, 50.0, "00 50"),
        (0x02800007, -12.5, "25 81"),
        (0x02800008, 3.61, "61 03"),
        (0x0280000A, 1440, "40 14 00 00"),
        (0x03110000, 17, "17 00 00"),
        (0x04000101, dt.date(2024, 5, 6), "01 06 05 24"),  # a Monday: WW = 1
        (0x04000101, dt.date(2024, 5, 5), "00 05 05 24"),  # a Sunday: WW = 0
        (0x04000102, dt.time(12, 34, 56), "56 34 12"),
        (0x03110001, (dt.datetime(2024, 1, 2, 3, 4, 5), dt.datetime(2024, 1, 2, 3, 14, 15)),
         "05 04 03 02 01 24 15 14 03 02 01 24"),
        (0x0311000A, (dt.datetime(2024, 1, 2, 3, 4, 5), None), "05 04 03 02 01 24 00 00 00 00 00 00"),
        (0x04000501, 0x0004, "04 00"),
    ],
)
def test_value_encodes_and_decodes(di: int, value: object, raw: str) -> None:
    assert encode_value(di, value) == wire(raw)  # type: ignore[arg-type]
    assert decode_value(di, wire(raw)) == value


def test_table_gives_the_unit_and_layout() -> None:
    assert data_item(0x02010100).unit == "V"
    assert data_item(0x02020100).format.signed
    assert data_item(0x00010000).format.decimals == 2
    assert data_item(0x03110005).format.kind is Kind.RECORD
    assert sorted(di for di in DATA_ITEMS if 0x03110001 <= di <= 0x0311000A) == list(range(0x03110001, 0x0311000B))
    assert all(data_item(0x04000500 + n).format.length == 2 for n in range(1, 8))
    assert decode_value(0x070000FF, b"\x01\x02") == b"\x01\x02"


@pytest.mark.parametrize(
    ("di", "raw", "message"),
    [
        (0x02010100, "0A 23", "phase A voltage (DI 02010100): non-BCD byte 0x0A at position 0"),
        (0x02010100, "01 23 00", "needs 2 bytes, got 3"),
        (0x99999999, "00", "unknown data identifier DI 99999999"),
        (0x04000101, "03 06 05 24", "weekday 3 does not match 2024-05-06"),
        (0x04000101, "01 30 02 24", "day 30 out of range 1..29"),
        (0x04000102, "00 60 12", "minute 60 out of range 0..59"),
        (0x03110001, "05 04 03 02 13 24 00 00 00 00 00 00", "month 13 out of range 1..12"),
    ],
)
def test_value_decode_names_what_is_wrong(di: int, raw: str, message: str) -> None:
    with raises_frame_error(message):
        decode_value(di, wire(raw))


@pytest.mark.parametrize(
    ("di", "value", "message"),
    [
        (0x02010100, 1000.0, "phase A voltage (DI 02010100): 1000.0 V out of range: magnitude at most 999.9 V"),
        (0x02010100, 230.15, "230.15 V has more than 1 decimal"),
        (0x02010100, -1.0, "cannot be negative"),
        (0x02020100, 800.0, "out of range: magnitude at most 799.999 A"),
        (0x02010100, float("nan"), "must be finite"),
        (0x02010100, "230", "takes a number"),
        (0x02010100, True, "takes a number"),
        (0x04000101, dt.date(1999, 12, 31), "year 1999 out of range 2000..2099"),
        (0x04000102, "12:00", "takes a datetime.time"),
        (0x03110001, (None,), "takes (start, end)"),
        (0x04000501, 0x10000, "takes an int of 16 bits"),
    ],
)
def test_value_encode_refuses_what_does_not_fit(di: int, value: object, message: str) -> None:
    with raises_frame_error(message):
        encode_value(di, value)  # type: ignore[arg-type]


NUMBER_ITEMS = [item for item in DATA_ITEMS.values() if item.format.kind is Kind.NUMBER]


@given(st.sampled_from(NUMBER_ITEMS), st.data())
def test_any_number_in_range_round_trips(item: DataItem, data: st.DataObject) -> None:
    fmt = item.format
    assert fmt.length is not None
    limit = 8 * 10 ** (2 * fmt.length - 1) if fmt.signed else 10 ** (2 * fmt.length)
    scaled = data.draw(st.integers(-(limit - 1) if fmt.signed else 0, limit - 1))
    value = scaled / 10**fmt.decimals if fmt.decimals else scaled
    raw = encode_value(item.di, value)
    assert len(raw) == fmt.length
    assert decode_value(item.di, raw) == value


def test_bcd_helpers() -> None:
    assert bcd_encode(1234, 2) == wire("34 12")
    assert bcd_encode(7, 3) == wire("07 00 00")
    assert bcd_decode(wire("34 12")) == 1234
    with raises_frame_error("10000 does not fit in 2 BCD byte"):
        bcd_encode(10000, 2)
    with raises_frame_error("does not fit"):
        bcd_encode(-1, 2)
    with raises_frame_error("non-BCD byte 0xA0 at position 1"):
        bcd_decode(wire("12 A0"))
    with raises_frame_error("no BCD bytes"):
        bcd_decode(b"")


@given(st.integers(1, 6).flatmap(lambda n: st.tuples(st.integers(0, 10 ** (2 * n) - 1), st.just(n))))
def test_bcd_round_trips(value_and_length: tuple[int, int]) -> None:
    value, nbytes = value_and_length
    assert bcd_decode(bcd_encode(value, nbytes)) == value


# ---------------------------------------------------------------- abnormal replies


def test_abnormal_reply_to_read() -> None:
    frame = abnormal_reply(METER, Function.READ, ErrorCode.NO_DATA)
    assert (frame.control, frame.data) == (0xD1, b"\x02")
    assert encode(frame, preamble=0)[8:11] == wire("D1 01 35")
    assert abnormal_error(decode(encode(frame))) == ErrorCode.NO_DATA


def test_abnormal_reply_to_security_carries_two_byte_serr_low_byte_first() -> None:
    frame = abnormal_reply(METER, Function.SECURITY, SecurityErrorCode.METER_SUSPENDED)
    assert (frame.control, frame.data) == (0xC3, wire("00 01"))
    error = abnormal_error(frame)
    assert isinstance(error, SecurityErrorCode) and error == SecurityErrorCode.METER_SUSPENDED
    both = SecurityErrorCode.IDENTITY_AUTHENTICATION_FAILED | SecurityErrorCode.ESAM_VERIFICATION_FAILED
    assert abnormal_reply(METER, Function.SECURITY, both).data == wire("0C 00")


def test_abnormal_reply_to_control() -> None:
    frame = abnormal_reply(METER, Function.CONTROL, ControlErrorCode.AUTHENTICATION_TIMED_OUT)
    assert (frame.control, frame.data) == (0xDC, b"\x08")
    error = abnormal_error(frame)
    assert isinstance(error, ControlErrorCode) and error == ControlErrorCode.AUTHENTICATION_TIMED_OUT


def test_error_codes_have_the_reference_values() -> None:
    assert [int(code) for code in ErrorCode] == [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40]
    assert [int(code) for code in SecurityErrorCode] == [1 << n for n in range(9)]
    assert [int(code) for code in ControlErrorCode] == [1 << n for n in range(6)]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (Dlt645Frame(METER, 0x91, b"\x02"), "not an abnormal reply: control byte 0x91"),
        (Dlt645Frame(METER, 0xD1, b""), "must carry L = 1, got L = 0"),
        (Dlt645Frame(METER, 0xC3, b"\x01"), "must carry L = 2, got L = 1"),
    ],
)
def test_abnormal_error_refuses_a_frame_that_is_not_one(frame: Dlt645Frame, message: str) -> None:
    with raises_frame_error(message):
        abnormal_error(frame)


def test_abnormal_reply_refuses_a_zero_word_and_broadcast() -> None:
    with raises_frame_error("must be 1..0xFF, got 0"):
        abnormal_reply(METER, Function.READ, 0)
    with raises_frame_error("must be 1..0xFFFF, got 65536"):
        abnormal_reply(METER, Function.SECURITY, 0x10000)
    with raises_frame_error("broadcast time (08) has no reply"):
        abnormal_reply(METER, Function.BROADCAST_TIME, ErrorCode.OTHER)


# ---------------------------------------------------------------- baud word and broadcast time


@pytest.mark.parametrize(("baud", "word"), [(600, 0x02), (1200, 0x04), (2400, 0x08), (4800, 0x10),
                                            (9600, 0x20), (19200, 0x40)])
def test_baud_word_is_one_hot_as_in_the_standard(baud: int, word: int) -> None:
    # The PyPI dlt645 gets 4800 and 9600 wrong; 0x08 = 2400 and 0x20 = 9600 per the standard.
    assert BAUD_WORDS[baud] == word
    assert baud_word(baud) == word
    assert baud_from_word(word) == baud


@pytest.mark.parametrize(
    ("word", "message"),
    [(0x28, "0x28 has more than one bit set"), (0x01, "unknown baud word 0x01"),
     (0x80, "unknown baud word 0x80"), (0x00, "unknown baud word 0x00"), (0x100, "not one byte")],
)
def test_baud_word_refused(word: int, message: str) -> None:
    with raises_frame_error(message):
        baud_from_word(word)


def test_baud_rate_without_a_word_is_refused() -> None:
    with raises_frame_error("no baud word for 115200"):
        baud_word(115200)


def test_broadcast_time_payload_is_ss_mm_hh_dd_mm_yy() -> None:
    moment = dt.datetime(2024, 5, 6, 12, 34, 56)
    data = encode_broadcast_time(moment)
    assert data == wire("56 34 12 06 05 24")
    assert decode_broadcast_time(data) == moment
    frame = Dlt645Frame.request(BROADCAST_ADDRESS, Function.BROADCAST_TIME, data)
    assert decode_broadcast_time(decode(encode(frame)).data) == moment


@pytest.mark.parametrize(
    ("raw", "message"),
    [("00 00 00 30 02 24", "day 30 out of range 1..29"), ("00 00 24 01 01 24", "hour 24 out of range"),
     ("00 00 00 01 01", "must be 6 bytes, got 5"), ("00 00 00 01 1A 24", "month byte 0x1A is not BCD")],
)
def test_broadcast_time_payload_errors_are_named(raw: str, message: str) -> None:
    with raises_frame_error(message):
        decode_broadcast_time(wire(raw))


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31, 23, 59, 59)))
def test_broadcast_time_round_trips(moment: dt.datetime) -> None:
    assert decode_broadcast_time(encode_broadcast_time(moment)) == moment.replace(microsecond=0)


# ---------------------------------------------------------------- layer rule


def test_codec_imports_nothing_above_the_drivers_layer_and_never_sleeps() -> None:
    package = Path(__file__).resolve().parents[2] / "drivers" / "dlt645"
    for source in sorted(package.glob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for name in names:
                    assert name.split(".")[0] not in {"rig", "fixtures", "testplans", "pytest", "serial"}, source
            if isinstance(node, ast.Attribute):
                assert node.attr != "sleep", source
