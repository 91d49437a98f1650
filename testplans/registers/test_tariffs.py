"""Tariff switching over a day of bench time: at Un, PF 1 for 24 h (Ib, and Imax around each switch so a late
switch books many register steps), every position's tariff registers (forward active energy T1..T4) are read
just before each switch of the meter's daily period table (read from the meter) and each register's move over
every period is compared with the energy the reference measured while the meter's clock was in that tariff. A
meter that switches late, or books a period to the wrong tariff, moves the wrong register for part of a period.
One day for the whole rack; per position."""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from dataclasses import dataclass

import pytest

from drivers.dlt645.link import MeterLink
from drivers.dlt645.tariff import Period, decode_day_periods, tariff_at
from drivers.errors import RigError
from rig.bench import Bench, Position
from rig.procedures import LoadPoint, RackCache
from testplans.comms import spec as comms_spec
from testplans.comms.helpers import clock_offset_s, power_meters
from testplans.registers import spec
from testplans.specs import accuracy as accuracy_spec

pytestmark = pytest.mark.plan

PERIOD_TABLE = comms_spec.di("daily period table 1 of the first set")
TARIFF_DIS = tuple(comms_spec.di(f"forward active energy, tariff {t}") for t in range(1, spec.TARIFFS + 1))


@dataclass(frozen=True)
class Reading:
    """One position's tariff registers (kWh, None unreadable) and the bench time they were read at."""

    at_s: float
    span_s: float  # how long the reads took
    registers: tuple[float | None, ...]


@dataclass(frozen=True)
class TariffDay:
    """What the rack showed over the day."""

    periods: dict[int, tuple[Period, ...] | None]
    offsets_s: dict[int, float]  # each meter's clock minus the bench's calendar
    calendar: tuple[dt.datetime, float]  # the bench's calendar time at a bench time
    readings: dict[int, list[Reading]]
    energy: list[tuple[float, float]]  # (bench time, reference energy Wh since the start)
    power_w: float  # at Imax (the load around the switches; at Ib when none was dosed)


DOSE_SETTLE_S = 2.0  # power_meters' settling after a change of load on a powered rack
def _schedule(link: MeterLink | None) -> tuple[Period, ...] | None:
    if link is None:
        return None
    try:
        raw = link.read(PERIOD_TABLE)
        return decode_day_periods(raw) if isinstance(raw, bytes) else None
    except RigError:
        return None


def _read(bench: Bench, position: Position) -> Reading:
    start = bench.clock.now()
    values: list[float | None] = []
    for di in TARIFF_DIS:
        try:
            values.append(position.link.read_number(di) if position.link is not None else None)
        except RigError:
            values.append(None)
    end = bench.clock.now()
    return Reading((start + end) / 2, end - start, tuple(values))


def _switches(periods: tuple[Period, ...], offset_s: float, calendar: tuple[dt.datetime, float], start_s: float,
              end_s: float) -> list[float]:
    """Bench times in (start_s, end_s) at which this meter's clock reaches a period start."""
    moment, at_s = calendar
    first = moment + dt.timedelta(seconds=start_s - at_s + offset_s)
    out = []
    for day in range(3):
        date = first.date() + dt.timedelta(days=day)
        for begin, _ in periods:
            meter_moment = dt.datetime.combine(date, begin)
            bench_s = at_s + (meter_moment - moment).total_seconds() - offset_s
            if start_s < bench_s < end_s:
                out.append(bench_s)
    return sorted(out)


def _tariff_day(bench: Bench, rack: RackCache) -> TariffDay:
    meter = bench.meter
    power_meters(bench, rack, LoadPoint(voltage_v=meter.un_v, current_a=0.0))
    periods = {p.index: _schedule(p.link) for p in bench.positions}
    offsets = {p.index: clock_offset_s(bench, p.link) for p in bench.positions if p.link is not None}
    calendar = (bench.clock.datetime_now(), bench.clock.now())
    read_from = bench.clock.now()
    readings = {p.index: [_read(bench, p)] for p in bench.positions}
    # The registers are read before every position's switch (the clocks differ by their offsets), and the load
    # stays at Imax past every position's switch for the lateness allowed.
    spread_s = max(offsets.values()) - min(offsets.values()) if offsets else 0.0
    lead_s = bench.clock.now() - read_from + spread_s + spec.CLOCK_READ_S
    dose_s = spread_s + spec.TARIFF_LATE_STEPS * spec.step_at_imax_s(meter) + spec.SWITCH_MARGIN_S
    base = LoadPoint(voltage_v=meter.un_v, current_a=meter.ib_a)
    dose = LoadPoint(voltage_v=meter.un_v, current_a=meter.imax_a)
    bench.reference.start_energy()
    start_s = bench.clock.now()
    energy = [(start_s, 0.0)]
    power_meters(bench, rack, base)
    power_w = bench.reference.measure().power_w
    first = next((p for p in bench.positions if periods[p.index] and p.index in offsets), None)
    end_s = start_s + spec.TARIFF_DAY_S
    switches = [] if first is None else _switches(periods[first.index] or (), offsets[first.index], calendar,
                                                  bench.clock.now(), end_s)

    def load(point: LoadPoint) -> None:
        # The reference's energy just before the load changes: it is steady between the points kept.
        energy.append((bench.clock.now(), bench.reference.energy_wh()))
        power_meters(bench, rack, point)

    for switch_s in switches:
        read_s = switch_s - lead_s
        if read_s - DOSE_SETTLE_S < bench.clock.now() or switch_s + dose_s > end_s:
            continue  # too near the day's start or end to dose (it stays in the day at Ib)
        bench.clock.sleep(max(0.0, read_s - DOSE_SETTLE_S - bench.clock.now()))
        load(dose)
        power_w = bench.reference.measure().power_w
        bench.clock.sleep(max(0.0, read_s - bench.clock.now()))
        for p in bench.positions:
            readings[p.index].append(_read(bench, p))
        bench.clock.sleep(max(0.0, switch_s + dose_s - bench.clock.now()))
        load(base)
    bench.clock.sleep(max(0.0, end_s - bench.clock.now()))
    load(LoadPoint(voltage_v=meter.un_v, current_a=0.0))
    energy.append((bench.clock.now(), bench.reference.energy_wh()))
    for p in bench.positions:
        readings[p.index].append(_read(bench, p))
    bench.reference.stop_energy()
    return TariffDay(periods, offsets, calendar, readings, energy, power_w)


def _energy_wh(day: TariffDay, at_s: float) -> float:
    """The reference's energy at bench time `at_s` (linear between its readings: the load is steady)."""
    times = [t for t, _ in day.energy]
    i = min(max(bisect.bisect_right(times, at_s), 1), len(times) - 1)
    (t0, e0), (t1, e1) = day.energy[i - 1], day.energy[i]
    return e0 + (e1 - e0) * (at_s - t0) / (t1 - t0) if t1 > t0 else e1


def _expected_kwh(day: TariffDay, index: int, start_s: float, end_s: float) -> tuple[list[float], int]:
    """The energy per tariff (kWh, T1 first) the reference measured over [start_s, end_s] while this meter's
    clock was in each tariff, and how many switches fell inside."""
    periods = day.periods[index] or ()
    offset = day.offsets_s[index]
    cuts = [start_s, *_switches(periods, offset, day.calendar, start_s, end_s), end_s]
    moment, at_s = day.calendar
    out = [0.0] * spec.TARIFFS
    for a, b in itertools.pairwise(cuts):
        clock = moment + dt.timedelta(seconds=(a + b) / 2 - at_s + offset)
        out[tariff_at(periods, clock.time()) - 1] += (_energy_wh(day, b) - _energy_wh(day, a)) / 1000.0
    return out, len(cuts) - 2


def test_tariff_registers_follow_the_schedule(bench: Bench, rack: RackCache, link: MeterLink, position: Position,
                                              record) -> None:
    """Over each period of the day, each tariff register moves by the reference's energy of the time the meter's
    clock spent in that tariff (the worst period of each tariff recorded)."""
    meter = bench.meter
    day = rack.cached("registers tariff day", lambda: _tariff_day(bench, rack))
    periods = day.periods[position.index]
    record("daily period table read", int(bool(periods)), "", low=1, high=1, position=position,
           periods=[f"{start:%H:%M} T{tariff}" for start, tariff in periods or ()])
    if not periods or position.index not in day.offsets_s:
        return
    limit = accuracy_spec.error_limit_pct(meter, meter.ib_a, accuracy_spec.power_factor("1"))
    late_s = spec.TARIFF_LATE_STEPS * spec.REGISTER_RESOLUTION_KWH * 3.6e6 / abs(day.power_w)
    worst: dict[int, tuple[float, float, str]] = {}  # tariff -> (|deviation| / allowed, deviation, where)
    allowed_by: dict[int, float] = {}
    readings = day.readings[position.index]
    for before, after in itertools.pairwise(readings):
        expected, switches = _expected_kwh(day, position.index, before.at_s, after.at_s)
        # Each switch is placed to the clock's whole second, each reading's registers to its span; a switch late
        # by up to the allowed time (one just before the period too) books that much to the tariff before it.
        late = len(_switches(periods, day.offsets_s[position.index], day.calendar,
                             before.at_s - late_s - spec.CLOCK_READ_S, after.at_s))
        placing_s = switches * spec.CLOCK_READ_S + (before.span_s + after.span_s) / 2.0 + late * late_s
        placing_kwh = placing_s * abs(day.power_w) / 3.6e6
        for t in range(spec.TARIFFS):
            old, new = before.registers[t], after.registers[t]
            deviation = float("nan") if old is None or new is None else (new - old) - expected[t]
            allowed = limit.value_pct / 100.0 * expected[t] + spec.REGISTER_RESOLUTION_KWH + placing_kwh
            ratio = abs(deviation) / allowed if deviation == deviation else float("inf")
            if t not in worst or ratio > worst[t][0]:
                worst[t] = (ratio, deviation, f"{before.at_s:.0f}..{after.at_s:.0f} s")
                allowed_by[t] = allowed
    for t, (_, deviation, where) in sorted(worst.items()):
        allowed = allowed_by[t]
        record(f"tariff T{t + 1} register move against the reference, worst period", deviation, "kWh", low=-allowed,
               high=allowed, position=position, period=where, limit_source=limit.source,
               source=spec.TARIFF_REGISTERS.text, check=spec.TARIFF_REGISTERS.check)
