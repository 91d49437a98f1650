"""DL/T 645-2007 fixed payloads, sans-IO (drivers layer): the baud word (17) and broadcast time (08)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from drivers.dlt645.identifiers import decode_datetime, encode_datetime
from drivers.errors import FrameError

# One-hot baud word of function 17; bits 0 and 7 are reserved. The PyPI `dlt645` maps 4800/9600 wrongly.
BAUD_WORDS: Final[Mapping[int, int]] = MappingProxyType({
    600: 0x02,
    1200: 0x04,
    2400: 0x08,
    4800: 0x10,
    9600: 0x20,
    19200: 0x40,
})
_BAUD_OF_WORD: Final = MappingProxyType({word: baud for baud, word in BAUD_WORDS.items()})


def baud_word(baud: int) -> int:
    """The one-hot word of a baud rate (bit/s) for function 17."""
    try:
        return BAUD_WORDS[baud]
    except KeyError:
        raise FrameError(f"no baud word for {baud!r} bit/s; the standard has {sorted(BAUD_WORDS)}") from None


def baud_from_word(word: int) -> int:
    """The baud rate (bit/s) of a function-17 word; FrameError unless exactly one defined bit is set."""
    if word in _BAUD_OF_WORD:
        return _BAUD_OF_WORD[word]
    if not 0 <= word <= 0xFF:
        raise FrameError(f"baud word {word!r} is not one byte")
    if bin(word).count("1") > 1:
        raise FrameError(f"baud word 0x{word:02X} has more than one bit set; it must be one-hot")
    raise FrameError(
        f"unknown baud word 0x{word:02X}: bits 1..6 mean 600..19200 bit/s, bits 0 and 7 are reserved"
    )


def encode_broadcast_time(moment: dt.datetime) -> bytes:
    """The plain data of a broadcast-time frame: ss mm hh DD MM YY in BCD."""
    return encode_datetime(moment)


def decode_broadcast_time(data: bytes) -> dt.datetime:
    """The time a broadcast-time frame sets; FrameError naming an impossible field."""
    try:
        return decode_datetime(data)
    except FrameError as error:
        raise FrameError(f"broadcast time: {error}") from None
