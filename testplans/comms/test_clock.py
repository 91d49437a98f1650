"""The meter's clock over DL/T 645: it agrees with the bench's calendar time, and broadcast time sync
(08H to 999999999999) is taken within the rules and refused outside them (shift beyond 5 min, near
midnight, second sync of the day, wrong length, not sent to the broadcast address).

Each scenario sets the meter's clock (14H, password) to a day of its own, so the daily quota of one
scenario does not decide another, and puts the clock back to the bench's time afterwards."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from drivers.dlt645 import Dlt645Frame, Function, encode_broadcast_time
from drivers.dlt645.link import MeterLink
from drivers.errors import FrameError
from rig.bench import Bench, Position
from testplans.comms import spec
from testplans.comms.helpers import clock_offset_s, meter_clock, restore_clock, scenario_day

pytestmark = pytest.mark.plan


def test_meter_clock_agrees_with_bench(bench: Bench, link: MeterLink, position: Position, record) -> None:
    """The meter's date and time read as a valid calendar time, agree with the bench's, and the clock runs
    (over a few seconds of bench time it moves as much as the bench's)."""
    try:
        before, at0 = meter_clock(bench, link)
    except FrameError as exc:  # a date or time no calendar has: the meter keeps no clock
        record(f"meter clock reads as a calendar time: {exc}", 0, "", low=1, high=1, position=position)
        return
    offset = clock_offset_s(bench, link)
    limit = spec.CLOCK_OFFSET
    record("meter clock against the bench's calendar time", offset, limit.unit, low=limit.low, high=limit.high,
           position=position, source=limit.source, check=limit.check)
    bench.clock.sleep(spec.CLOCK_RUN_S)
    after, at1 = meter_clock(bench, link)
    ran = (after - before).total_seconds() - (at1 - at0)
    unmoved = spec.CLOCK_UNMOVED
    still = _still(before, after, at1 - at0)
    record(f"meter clock's run minus the bench time that passed{still}", ran, "s", low=unmoved.low, high=unmoved.high,
           position=position, source=unmoved.source, bench_s=at1 - at0)


def _moved(bench: Bench, link: MeterLink, send: Callable[[Callable[[], dt.datetime]], None]) -> tuple[float, str]:
    """Seconds the meter's clock moved beyond the bench time that passed while `send` ran, and '' or what that
    shows of the meter (its clock standing still); `send` gets the meter's time now (estimated from a read and
    the bench time since)."""
    before, at0 = meter_clock(bench, link)
    send(lambda: before + dt.timedelta(seconds=bench.clock.now() - at0))
    after, at1 = meter_clock(bench, link)
    return (after - before).total_seconds() - (at1 - at0), _still(before, after, at1 - at0)


def _not_taken(moved: float, shift_s: float) -> str:
    """': the meter's clock moved ... instead of ...' when a sync the meter must take was not taken."""
    low, high = spec.CLOCK_UNMOVED.low, spec.CLOCK_UNMOVED.high
    assert low is not None and high is not None
    if shift_s + low <= moved <= shift_s + high:
        return ""
    return f": the meter's clock moved {moved:+.0f} s instead of {shift_s:+g} s (the sync was not taken)"


def _still(before: dt.datetime, after: dt.datetime, bench_s: float) -> str:
    """': the meter's clock stood still ...' when two reads a second or more apart show the same time."""
    if bench_s >= 1.0 and abs((after - before).total_seconds()) < 1.0:
        return f": the meter's clock stood still over {bench_s:.0f} s"
    return ""


def test_broadcast_time_accepted_within_rules(bench: Bench, link: MeterLink, position: Position, transport: str,
                                              record) -> None:
    """A sync 90 s off the meter's clock, on a day without one yet, away from midnight: taken, and no
    meter answers it."""
    shift = 90.0
    heard: list[int] = []

    def send(meter_now: Callable[[], dt.datetime]) -> None:
        exchange = link.broadcast_time(meter_now() + dt.timedelta(seconds=shift), listen_s=0.3)
        heard.append(sum(1 for a in exchange.attempts for f in a.frames if f.is_reply))

    try:
        link.write_datetime(dt.datetime.combine(scenario_day(bench, 0, transport), dt.time(10, 0, 0)))
        moved, still = _moved(bench, link, send)
    finally:
        restore_clock(bench, link)
    limit = spec.CLOCK_UNMOVED
    why = _not_taken(moved, shift) or still
    record(f"clock moved by a broadcast sync of +{shift:g} s{why}", moved, "s", low=shift + limit.low,
           high=shift + limit.high, position=position, source=spec.BROADCAST_SOURCE)
    record("frames answering the broadcast", sum(heard), "frames", low=0, high=0, position=position)


@dataclass(frozen=True)
class Refusal:
    """A broadcast the meter must refuse: its clock is set to `start`, then `send` is done."""

    start: dt.time
    shift_s: float
    data_length: int = 6
    addressed: bool = False  # sent to the meter's own address instead of 999999999999
    synced_first: bool = False  # the day's one sync is used up first


REFUSALS = {
    "shift beyond 5 min": Refusal(dt.time(10, 0, 0), spec.BROADCAST_MAX_SHIFT_S + 60.0),
    "near midnight": Refusal(dt.time(23, 60 - spec.BROADCAST_QUIET_MIN + 1, 0), 60.0),
    "second sync of the day": Refusal(dt.time(10, 0, 0), 60.0, synced_first=True),
    "data length not 6": Refusal(dt.time(10, 0, 0), 60.0, data_length=5),
    "not the broadcast address": Refusal(dt.time(10, 0, 0), 60.0, addressed=True),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_broadcast_time_refused_outside_rules(bench: Bench, link: MeterLink, position: Position, case: str,
                                              transport: str, record) -> None:
    """A sync outside the rules leaves the meter's clock where it was (and nobody answers)."""
    refusal = REFUSALS[case]
    limit = spec.CLOCK_UNMOVED

    def send(meter_now: Callable[[], dt.datetime]) -> None:
        moment = meter_now() + dt.timedelta(seconds=refusal.shift_s)
        data = encode_broadcast_time(moment)[: refusal.data_length]
        if refusal.addressed:
            link.exchange(Dlt645Frame.request(link.address, Function.BROADCAST_TIME, data), expect_reply=False,
                          listen_s=0.3)
        else:
            link.broadcast_time(moment, data=data)

    try:
        day = scenario_day(bench, 1 + list(REFUSALS).index(case), transport)
        link.write_datetime(dt.datetime.combine(day, refusal.start))
        if refusal.synced_first:
            first, still = _moved(bench, link, lambda meter_now: link.broadcast_time(
                meter_now() + dt.timedelta(seconds=refusal.shift_s)))
            why = _not_taken(first, refusal.shift_s) or still
            record(f"clock moved by the day's first sync{why}", first, "s", low=refusal.shift_s + limit.low,
                   high=refusal.shift_s + limit.high, position=position, source=spec.BROADCAST_SOURCE)
        moved, still = _moved(bench, link, send)
    finally:
        restore_clock(bench, link)
    record(f"clock moved by a refused sync ({case}, {refusal.shift_s:+g} s){still}", moved, "s", low=limit.low,
           high=limit.high, position=position, source=spec.BROADCAST_SOURCE)
