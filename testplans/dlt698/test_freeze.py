"""DL/T 698.45 freezes: the minute freeze (5002) and the daily freeze (5004) as the bench file gives them
(period, depth), their records over at least an hour of bench time against the reference's energy at each
freeze moment, and the records at midnight (one minute record and one daily record, no more, no less)."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import math
from dataclasses import dataclass

import pytest
from dlt698._native import AllMeters, Selector10

from drivers.dlt698 import Dlt698Link, oad, scaled
from drivers.dlt698.apdu import as_datetime, date_time_s
from drivers.errors import RigError
from rig.bench import Bench, Position
from rig.procedures import LoadPoint, RackCache
from testplans.comms.helpers import power_meters
from testplans.dlt698 import spec
from testplans.dlt698.helpers import read_scaled
from testplans.specs import accuracy as accuracy_spec

pytestmark = pytest.mark.plan

COLUMNS = (oad(spec.FREEZE_SEQUENCE), oad(spec.FREEZE_TIME), oad(spec.FORWARD_ENERGY))


@dataclass(frozen=True)
class Frozen:
    """One freeze record: its sequence number, freeze time and forward active energy total (kWh)."""

    sequence: int
    at: dt.datetime
    energy_kwh: float


def _records(link: Dlt698Link, oi: int, latest: int) -> list[Frozen]:
    rows = link.get_record(oad(oi), Selector10(latest=latest, meters=AllMeters()), COLUMNS)
    out = []
    for sequence, at, energy in rows:
        seq = sequence.value
        out.append(Frozen(seq if isinstance(seq, int) else -1, as_datetime(at),
                          scaled(oad(spec.FORWARD_ENERGY), energy).value))
    return out


def _meter_now(link: Dlt698Link, bench: Bench) -> tuple[dt.datetime, float]:
    """The meter's clock and the bench time it showed it (middle of the read)."""
    start = bench.clock.now()
    shown = as_datetime(link.get(oad(spec.DATE_TIME)))
    return shown, (start + bench.clock.now()) / 2.0


def _boundaries(after: dt.datetime, period_min: int, count: int) -> list[dt.datetime]:
    midnight = dt.datetime.combine(after.date(), dt.time())
    first = (math.floor((after - midnight).total_seconds() / 60.0 / period_min) + 1) * period_min
    return [midnight + dt.timedelta(minutes=first + k * period_min) for k in range(count)]


@dataclass(frozen=True)
class Watch:
    """What the rig saw over the freeze moments: the register at the start (kWh), and at each moment the
    reference's energy since the start (Wh) and the meter's own register read then (kWh, and how long after the
    moment the read's middle was, s); the power flowing (W)."""

    start_kwh: float
    reference_wh: dict[dt.datetime, float]
    register: dict[dt.datetime, tuple[float, float, float]]  # kWh, read's middle after the moment, read span (s)
    power_w: float

    def late_limit_s(self) -> float:
        """The lateness the plan allows: FREEZE_LATE_STEPS register steps' time at the power flowing."""
        return spec.FREEZE_LATE_STEPS * spec.REGISTER_RESOLUTION_KWH * 3.6e6 / abs(self.power_w)


def _watch(bench: Bench, link: Dlt698Link, moments: list[dt.datetime]) -> Watch:
    """At Un, Imax, PF 1: the register at the start, and the reference's energy and the register at each of
    `moments` on the meter's clock; then the records' time to be taken (the lateness the plan allows)."""
    shown, at_s = _meter_now(link, bench)
    start_kwh = read_scaled(link, spec.FORWARD_ENERGY)
    power_w = bench.reference.measure().power_w
    bench.reference.start_energy()
    reference: dict[dt.datetime, float] = {}
    register: dict[dt.datetime, tuple[float, float, float]] = {}
    for moment in moments:
        due_s = at_s + (moment - shown).total_seconds()
        bench.clock.sleep(max(0.0, due_s - bench.clock.now()))
        reference[moment] = bench.reference.energy_wh()
        read_start = bench.clock.now()
        kwh = read_scaled(link, spec.FORWARD_ENERGY)
        read_end = bench.clock.now()
        # The clock shows whole seconds: the moment came up to one second before due_s, half of it on average.
        register[moment] = (kwh, (read_start + read_end) / 2.0 - (due_s - spec.CLOCK_READ_S / 2.0),
                            read_end - read_start)
    watch = Watch(start_kwh, reference, register, power_w)
    bench.clock.sleep(watch.late_limit_s() + spec.CLOCK_TOLERANCE_S)  # a record within the allowed lateness is taken
    bench.reference.stop_energy()
    return watch


def _judge(record, position: Position, bench: Bench, records: list[Frozen], watch: Watch,
           moments: list[dt.datetime], what: str) -> None:
    """Each moment: exactly one record; its energy (from the start) against the reference's, and against the
    meter's own register at the moment (the freeze took the moment's value, not a later one)."""
    meter = bench.meter
    limit = accuracy_spec.error_limit_pct(meter, meter.imax_a, accuracy_spec.power_factor("1"))
    step_wh = spec.REGISTER_RESOLUTION_KWH * 1000.0
    power_wh_per_s = abs(watch.power_w) / 3600.0
    late_s = watch.late_limit_s()
    for moment in moments:
        reference_wh = watch.reference_wh[moment]
        taken = [r for r in records if r.at == moment]
        record(f"{what} records at {moment:%Y-%m-%d %H:%M}", len(taken), "", low=1, high=1, position=position,
               source=spec.STANDARD + " class 9 (freeze): one record per freeze moment, taken within "
               f"{late_s:.1f} s ({spec.FREEZE_LATE})")
        if len(taken) != 1:
            continue
        frozen_kwh = taken[0].energy_kwh
        register_wh = (frozen_kwh - watch.start_kwh) * 1000.0
        allowed = (limit.value_pct / 100.0 * reference_wh + 2 * step_wh
                   + power_wh_per_s * (late_s + spec.CLOCK_READ_S))
        record(f"{what} energy at {moment:%H:%M} against the reference", register_wh - reference_wh, "Wh",
               low=-allowed, high=allowed, position=position, reference_wh=reference_wh, register_wh=register_wh,
               source=f"{limit.source}, plus two register steps (the start read and the record) and the "
               f"lateness allowed ({spec.FREEZE_LATE})")
        # The register read just after the moment, taken back to the moment at the power flowing.
        read_kwh, after_s, span_s = watch.register[moment]
        at_moment_wh = read_kwh * 1000.0 - power_wh_per_s * after_s
        late_allowed = step_wh + power_wh_per_s * (late_s + (spec.CLOCK_READ_S + span_s) / 2.0)
        record(f"{what} energy at {moment:%H:%M} against the register at the moment",
               frozen_kwh * 1000.0 - at_moment_wh, "Wh", low=-late_allowed, high=late_allowed, position=position,
               register_kwh=read_kwh, read_after_s=after_s,
               source=f"{spec.FREEZE_LATE}, plus one register step and the placing of the moment (whole seconds)")


def test_freeze_objects_as_the_bench_file_says(link698: Dlt698Link, position: Position, record) -> None:
    """5002 attribute 3 (period, associated OAD, depth) carries the bench file's minute freeze period and
    depth for every associated object, 0010 among them; 5004 the daily period 1 and the bench file's depth."""
    cfg = position.config.dlt698
    for oi, period, depth, name in ((spec.MINUTE_FREEZE, cfg.minute_freeze_period_min, cfg.minute_freeze_depth,
                                     "minute"),
                                    (spec.DAILY_FREEZE, 1, cfg.daily_freeze_depth, "daily")):
        table = [[field.value for field in row.value] for row in link698.get(oad(oi, 3)).value]
        periods = sorted({row[0] for row in table})
        depths = sorted({row[2] for row in table})
        has_energy = any(getattr(row[1], "oi", None) == spec.FORWARD_ENERGY for row in table)
        record(f"{name} freeze period ({oi:04X} attribute 3) is {period}" + ("" if periods == [period] else
               f": meter has {periods}"), int(periods == [period]), "", low=1, high=1, position=position)
        record(f"{name} freeze depth is {depth}" + ("" if depths == [depth] else f": meter has {depths}"),
               int(depths == [depth]), "", low=1, high=1, position=position)
        record(f"{name} freeze records forward active energy (0010)", int(has_energy), "", low=1, high=1,
               position=position)


def test_minute_freeze_against_reference(bench: Bench, rack: RackCache, link698: Dlt698Link, position: Position,
                                         record) -> None:
    """Over at least an hour of bench time at Imax: one minute-freeze record at every period boundary of the
    meter's clock, its forward energy what the reference measured up to that moment."""
    meter = bench.meter
    period = position.config.dlt698.minute_freeze_period_min
    count = math.ceil(spec.FREEZE_WATCH_S / 60.0 / period) + 1
    power_meters(bench, rack, LoadPoint(voltage_v=meter.un_v, current_a=meter.imax_a))
    shown, _ = _meter_now(link698, bench)
    moments = _boundaries(shown + dt.timedelta(seconds=5), period, count)
    watch = _watch(bench, link698, moments)
    records = _records(link698, spec.MINUTE_FREEZE, count + 2)
    rack.forget_load()
    _judge(record, position, bench, records, watch, moments, "minute freeze")
    sequences = [r.sequence for r in records if r.at in watch.reference_wh]
    steps_ok = all(b - a == 1 for a, b in itertools.pairwise(sequences))
    record("minute freeze sequence numbers (2023) step by one", int(steps_ok), "", low=1, high=1, position=position,
           sequences=sequences)


def test_daily_freeze_across_midnight(bench: Bench, rack: RackCache, link698: Dlt698Link, position: Position,
                                      record) -> None:
    """The meter's clock set to 23:40; at Imax through midnight: one daily record and one minute record at
    00:00, their energy what the reference measured; the clock is put back to the bench's calendar after."""
    meter = bench.meter
    period = position.config.dlt698.minute_freeze_period_min
    power_meters(bench, rack, LoadPoint(voltage_v=meter.un_v, current_a=meter.imax_a))
    midnight = dt.datetime.combine(bench.clock.datetime_now().date() + dt.timedelta(days=1), dt.time())
    # A midnight the meter has no record of yet (an earlier run, or the other transport, took one).
    taken = [r.at for r in _records(link698, spec.DAILY_FREEZE, 1)]
    while taken and midnight <= max(taken):
        midnight += dt.timedelta(days=1)
    try:
        link698.set(oad(spec.DATE_TIME), date_time_s(midnight - dt.timedelta(minutes=20)))
        shown, _ = _meter_now(link698, bench)
        moments = _boundaries(shown + dt.timedelta(seconds=5), period, math.ceil(40 / period))
        assert midnight in moments
        watch = _watch(bench, link698, moments)
        minute_records = _records(link698, spec.MINUTE_FREEZE, len(moments) + 2)
        daily_records = _records(link698, spec.DAILY_FREEZE, 2)
    finally:
        rack.forget_load()
        with contextlib.suppress(RigError):
            link698.set(oad(spec.DATE_TIME), date_time_s(bench.clock.datetime_now() + dt.timedelta(seconds=0.5)))
    _judge(record, position, bench, minute_records, watch, [midnight], "minute freeze across midnight,")
    _judge(record, position, bench, daily_records, watch, [midnight], "daily freeze")
