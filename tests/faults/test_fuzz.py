"""Fuzzing with mutated inputs (hypothesis): what a bench fault does to bytes and text on their way in.
Every decoder and parser gives a valid result or a clear RigError subclass, never another exception and
never a hang (a per-example deadline). tests/drivers holds the random-bytes properties of the codecs;
these start from valid frames, captures, replies and bench files and damage them as a line or a disk would."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.clock import ManualClock
from drivers.dlt645 import Dlt645Frame, Function, decode, encode
from drivers.dlt645.abnormal import abnormal_error
from drivers.dlt645.identifiers import DATA_ITEMS, decode_value, encode_di
from drivers.dlt645.payloads import decode_broadcast_time, encode_broadcast_time
from drivers.dlt645.reader import BadFrame, FrameReader
from drivers.errors import FrameError, RigError
from drivers.retry import RetryingTransport, RetryPolicy
from drivers.scpi import parse_error, parse_float
from drivers.spi.codec import SpiTransaction, decode_read, encode_read
from drivers.spi.rn8209 import RN8209
from drivers.spi.vcd import decode_vcd, write_vcd
from rig.config import DEFAULT_BENCH, ConfigError, load_bench, validate_bench

FAST = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """`original` with a few bit flips, dropped, inserted or duplicated bytes, or cut short."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "drop", "insert", "cut", "dup"]))
        if not data:
            data += draw(st.binary(min_size=1, max_size=3))
            continue
        i = draw(st.integers(0, len(data) - 1))
        if action == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif action == "drop":
            del data[i]
        elif action == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif action == "cut":
            del data[i:]
        else:
            data[i:i] = data[i:i + draw(st.integers(1, 8))]
    return bytes(data)


READ_ITEMS = sorted(DATA_ITEMS)
REQUEST = encode(Dlt645Frame.request("000000000001", Function.READ, encode_di(0x02010100)))


@FAST
@given(st.data())
def test_mutated_reply_frames_decode_or_raise_frame_error(data: st.DataObject) -> None:
    di = data.draw(st.sampled_from(READ_ITEMS))
    value = data.draw(st.binary(min_size=0, max_size=12))
    good = encode(Dlt645Frame("000000000001", 0x91, encode_di(di) + value))
    raw = data.draw(mutated(good))
    try:
        frame = decode(raw)
    except FrameError:
        return
    with contextlib.suppress(FrameError):  # a frame that survived: its data as the item it claims to carry
        decode_value(di, frame.data[4:])


@FAST
@given(st.data())
def test_reader_fed_mutated_streams_in_any_chunks_never_raises(data: st.DataObject) -> None:
    stream = data.draw(mutated(REQUEST * 3))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    reader = FrameReader()
    out = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += reader.feed(stream[a:b])
    out += reader.flush()
    assert all(isinstance(item, Dlt645Frame | BadFrame) for item in out)


@FAST
@given(st.sampled_from(READ_ITEMS), st.binary(max_size=16))
def test_any_item_value_bytes_decode_or_raise_frame_error(di: int, raw: bytes) -> None:
    with contextlib.suppress(FrameError):
        decode_value(di, raw)


@FAST
@given(st.data())
def test_mutated_abnormal_replies_and_time_broadcasts(data: st.DataObject) -> None:
    frame = Dlt645Frame("000000000001", data.draw(st.integers(0, 255)), data.draw(st.binary(max_size=4)))
    with contextlib.suppress(FrameError):
        abnormal_error(frame)
    good = encode_broadcast_time(dt.datetime(2026, 3, 4, 5, 6, 7))
    with contextlib.suppress(FrameError):
        decode_broadcast_time(data.draw(mutated(good)))


def _readable(register: object) -> bool:
    try:
        encode_read(RN8209, register)  # type: ignore[arg-type]
    except RigError:
        return False
    return True


READABLE = [r for r in RN8209.registers if _readable(r)]


@FAST
@given(st.data())
def test_spi_read_of_a_damaged_miso_is_a_value_or_a_frame_error(data: st.DataObject) -> None:
    register = data.draw(st.sampled_from(READABLE))
    length = len(encode_read(RN8209, register)) - 1
    miso = data.draw(st.one_of(st.binary(max_size=length + 2), mutated(b"\x00" + b"\x5a" * length)))
    try:
        value = decode_read(RN8209, register, miso)
    except RigError:
        return
    assert isinstance(value, int)


_CAPTURE = io.StringIO()
write_vcd([SpiTransaction(0.00001, 0.0001, b"\x7f\x00\x00\x00", b"\x00\x82\x09\x00")], _CAPTURE, clock_hz=500_000)
GOOD_VCD = _CAPTURE.getvalue().encode()


@FAST
@given(st.data())
def test_damaged_vcd_captures_decode_or_raise_a_rig_error(data: st.DataObject) -> None:
    capture = data.draw(mutated(GOOD_VCD))
    try:
        transactions = decode_vcd(capture, decoder="builtin")
    except RigError:
        return
    assert all(isinstance(t, SpiTransaction) for t in transactions)


SCPI_TEXT = st.one_of(st.text(max_size=30), st.sampled_from(['0,"No error"', "230.1", "9.91E37", "nan", "-inf",
                                                             '-310,"System error"', "1e999", "+5,", ",", ""]))


@FAST
@given(st.one_of(SCPI_TEXT, SCPI_TEXT.map(lambda t: t.encode("utf-8", "replace")).flatmap(mutated).map(
    lambda b: b.decode("latin-1"))))
def test_scpi_reply_parsing_gives_a_value_or_an_instrument_error(reply: str) -> None:
    with contextlib.suppress(RigError):
        assert isinstance(parse_float(reply, "MEAS:VOLT?", "res"), float)
    try:
        code, message = parse_error(reply, "res")
        assert isinstance(code, int) and isinstance(message, str)
    except RigError:
        pass


class _Replies:
    resource = "fuzz"

    def __init__(self, reply: str) -> None:
        self.reply = reply

    def open(self) -> None: ...

    def close(self) -> None: ...

    def write(self, message: str) -> None: ...

    def query(self, message: str) -> str:
        return self.reply


@FAST
@given(SCPI_TEXT, st.sampled_from(["*IDN?", "OUTP ON;:SYST:ERR?", "SYST:ERR?"]))
def test_retrying_transport_returns_a_reply_or_a_rig_error(reply: str, message: str) -> None:
    transport = RetryingTransport(_Replies(reply), RetryPolicy(ManualClock(), attempts=2, backoff_s=0))
    with contextlib.suppress(RigError):
        assert transport.query(message) == reply


BENCH_TEXT = DEFAULT_BENCH.read_bytes()


@settings(max_examples=80, deadline=3000, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.data())
def test_damaged_bench_files_load_or_raise_config_error(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "bench.yaml"
    path.write_bytes(data.draw(st.one_of(mutated(BENCH_TEXT), st.binary(max_size=200))))
    with contextlib.suppress(ConfigError):
        load_bench(path)


LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                   st.text(max_size=12), st.lists(st.integers(), max_size=3),
                   st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


@st.composite
def damaged_document(draw: st.DrawFn) -> object:
    """The default bench document with one value somewhere replaced by something else."""
    document = yaml.safe_load(BENCH_TEXT)
    node = document
    while isinstance(node, dict | list) and node and draw(st.booleans()):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = draw(st.sampled_from(keys))
        if not isinstance(node[key], dict | list) or not node[key]:
            node[key] = draw(LEAVES)
            return document
        node = node[key]
    if isinstance(node, dict):
        node[draw(st.sampled_from([*node, "unknown_key"]))] = draw(LEAVES)
    return document


@FAST
@given(damaged_document())
def test_damaged_bench_documents_validate_or_raise_config_error(document: object) -> None:
    if not isinstance(document, dict):
        pytest.skip("validate_bench takes a mapping; load_bench refuses the rest")
    try:
        validate_bench(document)
    except ConfigError as exc:
        assert "invalid bench file" in str(exc)
