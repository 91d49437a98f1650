"""The twin's 645/698 demultiplexer hands a DL/T 645 frame on as soon as its last byte arrives, even when
a 68 near its end (a data byte, the checksum) could start a DL/T 698.45 header."""

from __future__ import annotations

from drivers.dlt645 import Dlt645Frame
from drivers.dlt645.frame import encode
from rig.twin.dlt698.demux import DualFrameReader


def _frame_with_checksum(value: int) -> bytes:
    """A 645 write request whose checksum byte is `value` (found by varying one data byte)."""
    for last in range(256):
        raw = encode(Dlt645Frame("000000000001", 0x14, bytes([0x35, 0x33, 0x33, 0x37, 0x68, last])), preamble=0)
        if raw[-2] == value:
            return raw
    raise AssertionError(f"no frame with checksum {value:#04x}")


def test_a_645_frame_ending_in_68_is_heard_when_it_completes_in_small_writes() -> None:
    raw = _frame_with_checksum(0x68)
    reader = DualFrameReader()
    heard = []
    for i in range(0, len(raw), 5):  # BLE-sized pieces: the frame's start is passed on before its tail
        heard += reader.feed(raw[i:i + 5])
    assert [type(f) for f in heard] == [Dlt645Frame], heard
    assert heard[0].data[-2] == 0x68


def test_a_698_header_after_a_645_frame_is_still_held_for_its_rest() -> None:
    raw = _frame_with_checksum(0x68)
    reader = DualFrameReader()
    heard = reader.feed(raw[:-4]) + reader.feed(raw[-4:] + bytes([0x68, 0x17]))
    assert [type(f) for f in heard] == [Dlt645Frame]
