"""Packed BCD as DL/T 645 sends it, low byte first, sans-IO (drivers layer)."""

from __future__ import annotations

from typing import Final

from drivers.errors import FrameError

# The 100 bytes holding two decimal digits.
BCD_BYTES: Final = frozenset(int(f"{n:02d}", 16) for n in range(100))


def bcd_encode(value: int, nbytes: int) -> bytes:
    """`value` as `nbytes` packed BCD bytes, low byte first (1234, 2 -> 34 12)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FrameError(f"BCD value must be an int, got {value!r}")
    if not 0 <= value < 10 ** (2 * nbytes):
        raise FrameError(f"{value} does not fit in {nbytes} BCD byte(s) (0..{10 ** (2 * nbytes) - 1})")
    return bytes.fromhex(f"{value:0{2 * nbytes}d}")[::-1]


def bcd_decode(raw: bytes) -> int:
    """The number of packed BCD bytes, low byte first; FrameError naming a byte that is not BCD."""
    text = bytes(raw[::-1]).hex()
    if not text.isdigit():
        if not raw:
            raise FrameError("no BCD bytes to decode")
        position, byte = next((i, b) for i, b in enumerate(raw) if b not in BCD_BYTES)
        raise FrameError(f"non-BCD byte 0x{byte:02X} at position {position} (lowest byte first)")
    return int(text)
