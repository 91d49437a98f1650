"""DL/T 645-2007 daily period table (04 01 00 01.. and 04 02 00 01..), sans-IO (drivers layer): 14 periods of
3 bytes, each the period's start (hhmm) and its tariff number (NN), sent low byte first (NN mm hh, BCD).
A meter with fewer periods repeats its last one to fill the table (the count is 04 00 02 03)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

from drivers.dlt645.bcd import bcd_decode, bcd_encode
from drivers.errors import FrameError

PERIODS: Final = 14
PERIOD_BYTES: Final = 3

Period = tuple[dt.time, int]  # start, tariff number (1..63)


def decode_day_periods(raw: bytes) -> tuple[Period, ...]:
    """The periods of a daily period table in time order, repeats dropped; FrameError naming what is wrong."""
    if len(raw) != PERIODS * PERIOD_BYTES:
        raise FrameError(f"daily period table needs {PERIODS * PERIOD_BYTES} bytes, got {len(raw)}")
    periods: list[Period] = []
    for n in range(PERIODS):
        tariff, minute, hour = (bcd_decode(raw[3 * n + i:3 * n + i + 1]) for i in range(PERIOD_BYTES))
        if not (0 <= hour <= 23 and 0 <= minute <= 59 and 1 <= tariff <= 63):
            raise FrameError(f"period {n + 1} of the daily period table is {hour:02d}:{minute:02d} tariff {tariff}")
        period = (dt.time(hour, minute), tariff)
        if period not in periods:
            periods.append(period)
    return tuple(sorted(periods))


def encode_day_periods(periods: Sequence[Period]) -> bytes:
    """The 42 plain bytes of a daily period table (the last period repeated to fill 14)."""
    if not 1 <= len(periods) <= PERIODS:
        raise FrameError(f"a daily period table holds 1..{PERIODS} periods, got {len(periods)}")
    filled = [*periods, *[periods[-1]] * (PERIODS - len(periods))]
    return b"".join(bcd_encode(tariff, 1) + bcd_encode(start.minute, 1) + bcd_encode(start.hour, 1)
                    for start, tariff in filled)


def tariff_at(periods: Sequence[Period], moment: dt.time) -> int:
    """The tariff in force at `moment` of the day: the last period started by then (before the first period of
    the day, the day's last period goes on from the evening before)."""
    ordered = sorted(periods)
    current = ordered[-1][1]
    for start, tariff in ordered:
        if start <= moment:
            current = tariff
    return current
