"""Timing the meter's clock against the bench clock: a tick of its seconds located to a few milliseconds by
reads placed a whole number of seconds apart (each read halves the interval the tick lies in), its offset
from the bench's calendar time, and the daily error from two offsets a gate apart. Shared by the plans that time
the meter's clock (the RTC on mains, the RTC on battery over an outage); it imports no plan package."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Final

from drivers.dlt645.link import MeterLink
from drivers.errors import RigError
from rig.bench import Bench
from testplans.comms.spec import di

DAY_S = 86400.0
TIME: Final = di("time")  # DL/T 645-2007 04 00 01 02, hhmmss
# Timing a tick of the meter's seconds: read the time until the shown second changes, then place further reads
# a whole number of seconds later, each halving the interval the tick lies in, until it is this narrow.
RESOLUTION_S: Final = 0.005
MAX_TICK_READS: Final = 40


def _seconds_of_day(moment: dt.time) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second


def _read_time(link: MeterLink) -> tuple[int, float]:
    """The meter's time (seconds of the day) and the bench time the request left (when the meter samples
    its clock, but for the request's own wire time: the same for every read, so it cancels)."""
    value = link.read(TIME)
    exchange = link.last
    if not isinstance(value, dt.time) or exchange is None:
        raise RigError(f"meter {link.address}: the time read as {value!r}, not a time of day")
    return _seconds_of_day(value), exchange.attempts[-1].sent_at_s


@dataclass(frozen=True)
class Tick:
    """A tick of the meter's seconds: the bench time it happened (send-time coordinates), the meter's
    second of the day from then, and the offset of the meter's clock from the bench's calendar time."""

    at_s: float
    shown: int
    offset_s: float
    width_s: float  # the interval the tick was located in


def time_tick(bench: Bench, link: MeterLink, resolution_s: float = RESOLUTION_S) -> Tick:
    """Locate a tick of the meter's seconds to `resolution_s` (RigError when the clock does not tick or
    jumps)."""
    clock = bench.clock
    previous: tuple[int, float] | None = None
    lead = 0.0
    for _ in range(MAX_TICK_READS):
        called = clock.now()
        shown, sent = _read_time(link)
        lead = sent - called
        if previous is not None and shown != previous[0]:
            low, high, after = previous[1], sent, shown
            break
        previous = (shown, sent)
    else:
        raise RigError(f"meter {link.address}: its clock did not tick over {MAX_TICK_READS} reads of the time")
    for _ in range(MAX_TICK_READS):
        if high - low <= resolution_s:
            break
        middle = (low + high) / 2
        whole = math.ceil(clock.now() + lead - middle + 0.01)  # the next repeat of that instant still ahead
        clock.sleep(max(0.0, middle + whole - lead - clock.now()))
        called = clock.now()
        shown, sent = _read_time(link)
        lead = sent - called  # the link's own time before the request leaves (line quiet, wire time)
        k = round(sent - middle)
        if shown == (after + k) % DAY_S:
            high = min(high, sent - k)
        elif shown == (after + k - 1) % DAY_S:
            low = max(low, sent - k)
        else:
            raise RigError(f"meter {link.address}: its clock jumped while its tick was timed "
                           f"(showed second {shown}, expected {(after + k - 1) % DAY_S:g} or {(after + k) % DAY_S:g})")
    at = (low + high) / 2
    calendar = clock.datetime_now() - dt.timedelta(seconds=clock.now() - at)
    bench_second = calendar.hour * 3600 + calendar.minute * 60 + calendar.second + calendar.microsecond / 1e6
    offset = (after - bench_second + DAY_S / 2) % DAY_S - DAY_S / 2
    return Tick(at, after, offset, high - low)


def daily_error_s(first: Tick, second: Tick) -> float:
    """The meter's clock's gain over a day between two ticks, s/day (positive: runs fast)."""
    return (second.offset_s - first.offset_s) / ((second.at_s - first.at_s) / DAY_S)
