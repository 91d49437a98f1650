"""Outages: the energy registers do not change across one; a power-down is logged (count and record, its
start and end against the rig's clock) and a short interruption below the meter's logging threshold is
not; the RTC keeps time on the battery through 72 h without mains; the meter answers again within its
start-up time. Rack-wide: one outage serves every position."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from drivers.dlt645.link import MeterLink
from drivers.transients import interruption
from rig.bench import Bench, Position
from rig.procedures import LoadPoint, RackCache, energise
from testplans.meter_clock import time_tick
from testplans.power import spec
from testplans.power.helpers import (
    PerPosition,
    after_power_returns,
    clock_offset_s,
    each,
    mains_on,
    not_answering,
    outage,
    probe,
    read_events,
    read_registers,
    wait_answering,
)

pytestmark = pytest.mark.plan


def _registers_across(bench: Bench, rack: RackCache, duration_s: float) -> dict[int, PerPosition]:
    """Energy into every register first (Imax, PF 1), then no current, read, an outage, read again."""
    results: dict[int, PerPosition] = {}
    positions = bench.positions
    energise(bench, LoadPoint(voltage_v=bench.meter.un_v, current_a=bench.meter.imax_a), settle_s=0.5)
    rack.forget_load()
    bench.clock.sleep(spec.FILL_ENERGY_S)
    mains_on(bench, rack)
    not_answering(results, positions, wait_answering(bench, positions), "on mains before the outage")
    each(positions, results, "registers before the outage", lambda p, link: {"before": read_registers(link)})
    timed = outage(bench, rack, duration_s)
    not_answering(results, positions, after_power_returns(bench, positions), "after the outage")
    each(positions, results, "registers after the outage", lambda p, link: {"after": read_registers(link)})
    for result in results.values():
        result.values["outage"] = timed
    return results


def test_registers_unchanged_across_outage(bench: Bench, rack: RackCache, position: Position, record) -> None:
    """Forward, reverse and combined active energy read the same before and after a 10 min outage."""
    result = rack.cached(("power", "registers", spec.REGISTER_OUTAGE_S),
                         lambda: _registers_across(bench, rack, spec.REGISTER_OUTAGE_S))[position.index]
    before, after = result.get("before"), result.get("after")
    limit = spec.REGISTERS_UNCHANGED
    record("forward active energy before the outage (filled at Imax)", before["forward active energy"], "kWh",
           position=position)
    for name in spec.REGISTERS:
        record(f"{name}: change across a {spec.REGISTER_OUTAGE_S / 60:g} min outage",
               round(after[name] - before[name], 2), limit.unit, low=limit.low, high=limit.high, position=position,
               source=limit.source)


def _events_across(bench: Bench, rack: RackCache, duration_s: float, *, program: bool) -> dict[int, PerPosition]:
    """Clock offsets, power-down count and records; an outage (output off, or a 0 % source program); the
    count and records again."""
    results: dict[int, PerPosition] = {}
    positions = bench.positions
    mains_on(bench, rack)
    not_answering(results, positions, wait_answering(bench, positions), "on mains before the outage")

    def before(p: Position, link: MeterLink) -> dict[str, Any]:
        offset, tick = clock_offset_s(bench, link)
        count, records = read_events(link)
        return {"offset": offset, "tick": tick, "count": count, "records": records}

    each(positions, results, "clock and power-down events before the outage", before)
    if program:
        start = bench.clock.now()
        bench.source.run_transient(interruption(duration_s=duration_s, name="short interruption"),
                                   voltage_v=bench.meter.un_v, frequency_hz=bench.meter.frequency_hz,
                                   clock=bench.clock)
        timed = None
        took = bench.clock.now() - start
    else:
        timed = outage(bench, rack, duration_s)
        took = duration_s
    not_answering(results, positions, after_power_returns(bench, positions), "after the outage")

    def after(p: Position, link: MeterLink) -> dict[str, Any]:
        count, records = read_events(link)
        return {"count after": count, "records after": records, "outage": timed, "took": took}

    each(positions, results, "power-down events after the outage", after)
    return results


def test_power_down_event_recorded(bench: Bench, rack: RackCache, position: Position, record) -> None:
    """A 3 min outage adds one to the power-down count; the newest record starts when the rig switched
    the mains off and ends when it switched them on (the meter's clock offset taken into account); the
    record before it moves down to 'last 2'."""
    result = rack.cached(("power", "events", spec.EVENT_OUTAGE_S),
                         lambda: _events_across(bench, rack, spec.EVENT_OUTAGE_S, program=False))[position.index]
    count, records = result.get("count"), result.get("records")
    count_after, records_after = result.get("count after"), result.get("records after")
    timed = result.get("outage")
    offset, tick = result.get("offset"), result.get("tick")
    record("power-down count: increase across one outage", count_after - count, "", low=1, high=1,
           position=position, source=spec.EVENT_SOURCE)
    start, end = records_after[0]
    for what, logged, rig_at, at_s in (("start", start, timed.off_at, timed.off_s), ("end", end, timed.on_at,
                                                                                   timed.on_s)):
        limit = spec.event_time_limit(at_s - tick)
        error = None
        if isinstance(logged, dt.datetime):
            error = (logged - (rig_at + dt.timedelta(seconds=offset))).total_seconds()
        record(f"power-down record 1 {what} against the rig's clock", error, limit.unit, low=limit.low,
               high=limit.high, position=position, source=limit.source, check=limit.check,
               logged=str(logged), rig=str(rig_at), meter_offset_s=round(offset, 3))
    record("power-down record 2 is the former record 1", float(records_after[1] == records[0]), "", low=1, high=1,
           position=position, source=spec.EVENT_SOURCE)


def test_short_interruption_not_logged(bench: Bench, rack: RackCache, position: Position, record) -> None:
    """An interruption (a 0 % source program) of half the meter type's shortest logged outage leaves the
    power-down count and records as they were."""
    shortest = bench.meter.min_logged_outage_s
    if shortest is None:
        pytest.skip("the meter type gives no shortest logged outage (meter.min_logged_outage_s)")
    duration = spec.SHORT_FRACTION * shortest
    result = rack.cached(("power", "short", duration),
                         lambda: _events_across(bench, rack, duration, program=True))[position.index]
    record(f"interruption length (source program of {duration:g} s)", result.get("took"), "s", position=position)
    record(f"power-down count: change across a {duration:g} s interruption", result.get("count after")
           - result.get("count"), "", low=0, high=0, position=position, source=spec.SHORT_SOURCE, check=True)
    record("power-down record 1 unchanged", float(result.get("records after")[0] == result.get("records")[0]), "",
           low=1, high=1, position=position, source=spec.SHORT_SOURCE, check=True)


def _long_outage(bench: Bench, rack: RackCache) -> dict[int, PerPosition]:
    """The clock timed from its tick, registers and battery time; 72 h without mains; the same again."""
    results: dict[int, PerPosition] = {}
    positions = bench.positions
    mains_on(bench, rack)
    not_answering(results, positions, wait_answering(bench, positions), "on mains before the outage")

    def read(p: Position, link: MeterLink, when: str) -> dict[str, Any]:
        # The tick located finely (the RTC plan's method): a read interval's worth of error at each end would be
        # a tenth of the 0.5 s/day limit over 72 h.
        tick = time_tick(bench, link, spec.RTC_TICK_RESOLUTION_S)
        return {f"offset {when}": tick.offset_s, f"tick {when}": tick.at_s, f"registers {when}": read_registers(link),
                f"battery minutes {when}": link.read_number(spec.BATTERY_TIME)}

    each(positions, results, "clock before the outage", lambda p, link: read(p, link, "before"))
    timed = outage(bench, rack, spec.LONG_OUTAGE_S)
    not_answering(results, positions, after_power_returns(bench, positions), "after 72 h without mains")
    each(positions, results, "clock after the outage", lambda p, link: read(p, link, "after"))
    for result in results.values():
        result.values["outage"] = timed
    return results


def test_rtc_after_72h_outage(bench: Bench, rack: RackCache, position: Position, record) -> None:
    """After 72 h without mains the meter's clock has drifted by no more than 0.5 s a day against the
    rig's; the registers are as they were and the battery operating time grew by the outage."""
    result = rack.cached(("power", "72h"), lambda: _long_outage(bench, rack))[position.index]
    days = (result.get("tick after") - result.get("tick before")) / 86400.0
    rate = (result.get("offset after") - result.get("offset before")) / days
    limit = spec.RTC_RATE
    record("RTC rate over a 72 h outage (meter minus rig)", rate, limit.unit, low=limit.low, high=limit.high,
           position=position, source=limit.source, check=limit.check,
           offset_before_s=round(result.get("offset before"), 3), offset_after_s=round(result.get("offset after"), 3))
    before, after = result.get("registers before"), result.get("registers after")
    unchanged = spec.REGISTERS_UNCHANGED
    for name in spec.REGISTERS:
        record(f"{name}: change across 72 h without mains", round(after[name] - before[name], 2), unchanged.unit,
               low=unchanged.low, high=unchanged.high, position=position, source=unchanged.source)
    timed = result.get("outage")
    expected_min = (timed.on_s - timed.off_s) / 60.0
    grew = result.get("battery minutes after") - result.get("battery minutes before")
    tolerance = spec.BATTERY_TIME_TOLERANCE_MIN
    record("battery operating time: increase over the outage", grew, "min", low=expected_min - tolerance,
           high=expected_min + tolerance, position=position, source=spec.BATTERY_TIME_SOURCE, check=True)


def test_meter_answers_within_start_up_time(bench: Bench, rack: RackCache, link: MeterLink, position: Position,
                                            record) -> None:
    """After mains returns (10 s off) the meter answers a request sent within its start-up time (asked
    every 0.6 s from the moment the output is on)."""
    timed = outage(bench, rack, spec.STARTUP_OUTAGE_S)
    limit_s = bench.meter.start_up_time_s
    first = None
    while bench.clock.now() < timed.on_s + 3 * limit_s + 10.0:
        at = probe(link)
        if at is not None:
            first = at - timed.on_s
            break
    record("time from power-up to the first answered request", first, "s", low=0.0, high=limit_s,
           position=position, source=spec.STARTUP_SOURCE)
