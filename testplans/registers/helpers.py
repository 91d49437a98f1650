"""Helpers of the register plans: reading the registers of every position at once, and a status bit."""

from __future__ import annotations

from drivers.dlt645.link import MeterLink
from drivers.errors import RigError
from rig.bench import Bench
from testplans.comms import spec as comms_spec


def read_all(bench: Bench, di: int) -> dict[int, float | None]:
    """The numeric item `di` of every position over its UART (None where it could not be read)."""
    out: dict[int, float | None] = {}
    for position in bench.positions:
        link = position.link
        try:
            out[position.index] = link.read_number(di) if link is not None else None
        except RigError:
            out[position.index] = None
    return out


def status_bit(link: MeterLink | None, mask: int) -> int | None:
    """1 or 0 for `mask` in running status word 1 (None when it cannot be read)."""
    if link is None:
        return None
    try:
        word = link.read(comms_spec.STATUS_WORD_1)
    except RigError:
        return None
    return int(bool(word & mask)) if isinstance(word, int) else None


def moved(before: float | None, after: float | None) -> float | None:
    """How far a register moved, kWh (None when either reading is missing)."""
    return None if before is None or after is None else after - before
