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

from drivers.dlt698 import DarRefused, Dlt698Link, oad, scaled
from drivers.dlt698.apdu import as_datetime, date_time_s
from drivers.errors import RigError
from rig.bench import Bench, Position
from rig.procedures import LoadPoint, RackCache
from testplans.comms.helpers import power_meters
from testplans.dlt698 import spec
from testplans.dlt698.helpers import read_scaled
from testplans.specs import accuracy as accuracy_spec

pytestmark = pytest.mark.plan

PRECISE = oad(spec.FORWARD_ENERGY, spec.PRECISE_ENERGY_ATTRIBUTE)  # 00100400: high-precision forward energy
COLUMNS = (oad(spec.FREEZE_SEQUENCE), oad(spec.FREEZE_TIME), oad(spec.FORWARD_ENERGY), PRECISE)


@dataclass(frozen=True)
class Frozen:
    """One freeze record: its sequence number, freeze time and forward active energy total (kWh), attribute 2
    and the high-precision attribute 4 (None where the record has no such column)."""

    sequence: int
    at: dt.datetime
    energy_kwh: float
    precise_kwh: float | None


def _records(link: Dlt698Link, oi: int, latest: int) -> list[Frozen]:
    rows = link.get_record(oad(oi), Selector10(latest=latest, meters=AllMeters()), COLUMNS)
    out = []
    for sequence, at, energy, precise in rows:
        seq = sequence.value
        fine = None if precise.value is None else scaled(PRECISE, precise).value
        out.append(Frozen(seq if isinstance(seq, int) else -1, as_datetime(at),
                          scaled(oad(spec.FORWARD_ENERGY), energy).value, fine))
    return out


def _sent(link: Dlt698Link) -> float:
    """The bench time the last request left: the meter samples its clock and registers a fixed wire time later
    (the same for every one-attribute GET), so differences of these times are the meter's."""
    exchange = link.last
    assert exchange is not None and exchange.attempts
    return exchange.attempts[-1].sent_at_s


def _clock_read(link: Dlt698Link) -> tuple[dt.datetime, float]:
    return as_datetime(link.get(oad(spec.DATE_TIME))), _sent(link)


@dataclass(frozen=True)
class Tick:
    """A tick of the meter's seconds: what the clock showed from it, the bench time it came (request-sent
    coordinates) and the width of the interval it was located in."""

    shown: dt.datetime
    at_s: float
    width_s: float

    def bench_s(self, moment: dt.datetime) -> float:
        return self.at_s + (moment - self.shown).total_seconds()


def _tick(link: Dlt698Link, bench: Bench, position: Position) -> Tick:
    """A tick of the meter's clock, found between two reads and then halved down by reads whole seconds apart
    (the meter's clock shows whole seconds; a freeze moment is placed to a fraction of one)."""
    clock = bench.clock
    before = _clock_read(link)
    for _ in range(spec.TICK_READS):
        after = _clock_read(link)
        if after[0] != before[0]:
            break
        before = after
    else:
        pytest.fail(f"{position.name}: the meter's clock (4000) did not tick over {spec.TICK_READS} reads")
    low, high, shown = before[1], after[1], after[0]
    lead = 0.0  # the link's time before a request leaves (line quiet, wake-up): the read is aimed that much early
    for _ in range(spec.TICK_READS):
        if high - low <= spec.TICK_RESOLUTION_S:
            break
        middle = (low + high) / 2.0
        whole = math.ceil(clock.now() + lead - middle + 0.05)
        clock.sleep(max(0.0, middle + whole - lead - clock.now()))
        called = clock.now()
        seen, sent = _clock_read(link)
        lead = sent - called
        k = round(sent - middle)
        if seen == shown + dt.timedelta(seconds=k):
            high = min(high, sent - k)
        elif seen == shown + dt.timedelta(seconds=k - 1):
            low = max(low, sent - k)
        else:
            pytest.fail(f"{position.name}: the meter's clock jumped while its tick was timed (showed {seen:%H:%M:%S})")
    return Tick(shown, (low + high) / 2.0, high - low)


def _boundaries(after: dt.datetime, period_min: int, count: int) -> list[dt.datetime]:
    midnight = dt.datetime.combine(after.date(), dt.time())
    first = (math.floor((after - midnight).total_seconds() / 60.0 / period_min) + 1) * period_min
    return [midnight + dt.timedelta(minutes=first + k * period_min) for k in range(count)]


@dataclass(frozen=True)
class Watch:
    """What the rig saw over the freeze moments: the register at the start (kWh), and at each moment the
    reference's energy since the start (Wh) and the meter's own high-precision register read just after it
    (kWh, and how long after the moment the meter took it, s); the power flowing (W); the clock's tick."""

    start_kwh: float
    reference_wh: dict[dt.datetime, float]
    register: dict[dt.datetime, tuple[float, float]]  # high-precision kWh, taken this long after the moment (s)
    power_w: float
    tick: Tick

    def step_s(self) -> float:
        """One high-precision register step's time at the power flowing."""
        return spec.PRECISE_RESOLUTION_KWH * 3.6e6 / abs(self.power_w)


def _read_precise(link: Dlt698Link, position: Position) -> float:
    try:
        return scaled(PRECISE, link.get(PRECISE)).value
    except DarRefused as refused:
        pytest.fail(f"{position.name}: the meter refuses 00100400 (high-precision forward active energy, 0010 "
                    f"attribute 4): DAR {refused.dar}; the freeze plan times the records by it")


def _watch(bench: Bench, link: Dlt698Link, position: Position, moments: list[dt.datetime]) -> Watch:
    """At Un, Imax, PF 1: the register at the start, and the reference's energy and the high-precision register
    at each of `moments` on the meter's clock; then the records' time to be taken (the lateness allowed)."""
    tick = _tick(link, bench, position)
    start_kwh = read_scaled(link, spec.FORWARD_ENERGY)
    _read_precise(link, position)
    power_w = bench.reference.measure().power_w
    bench.reference.start_energy()
    reference: dict[dt.datetime, float] = {}
    register: dict[dt.datetime, tuple[float, float]] = {}
    for moment in moments:
        due_s = tick.bench_s(moment)
        bench.clock.sleep(max(0.0, due_s - bench.clock.now()))
        reference[moment] = bench.reference.energy_wh()
        kwh = _read_precise(link, position)
        register[moment] = (kwh, _sent(link) - due_s)
    bench.clock.sleep(spec.FREEZE_LATE.high + spec.CLOCK_TOLERANCE_S)  # a record within the allowed lateness is taken
    bench.reference.stop_energy()
    return Watch(start_kwh, reference, register, power_w, tick)


def _judge(record, position: Position, bench: Bench, records: list[Frozen], watch: Watch,
           moments: list[dt.datetime], what: str) -> None:
    """Each moment: exactly one record; its energy (from the start) against the reference's, and the time its
    values were taken, from its high-precision energy against the meter's own register read just after the
    moment."""
    meter = bench.meter
    limit = accuracy_spec.error_limit_pct(meter, meter.imax_a, accuracy_spec.power_factor("1"))
    step_wh = spec.REGISTER_RESOLUTION_KWH * 1000.0
    power_wh_per_s = abs(watch.power_w) / 3600.0
    late_s = spec.FREEZE_LATE.high
    assert late_s is not None
    # Placing the moment: half the tick's interval, and a high-precision step in the record and in the read.
    placing_s = watch.tick.width_s / 2.0 + 2 * watch.step_s()
    for moment in moments:
        reference_wh = watch.reference_wh[moment]
        taken = [r for r in records if r.at == moment]
        record(f"{what} records at {moment:%Y-%m-%d %H:%M}", len(taken), "", low=1, high=1, position=position,
               source=spec.STANDARD + f" class 9 (freeze): one record per freeze moment, taken within {late_s:g} s "
               f"({spec.FREEZE_LATE.source})")
        if len(taken) != 1:
            continue
        frozen = taken[0]
        register_wh = (frozen.energy_kwh - watch.start_kwh) * 1000.0
        allowed = limit.value_pct / 100.0 * reference_wh + 2 * step_wh + power_wh_per_s * (late_s + placing_s)
        record(f"{what} energy at {moment:%H:%M} against the reference", register_wh - reference_wh, "Wh",
               low=-allowed, high=allowed, position=position, reference_wh=reference_wh, register_wh=register_wh,
               source=f"{limit.source}, plus two register steps (the start read and the record) and the "
               f"lateness allowed ({spec.FREEZE_LATE.source})")
        record(f"{what} record at {moment:%H:%M} carries the high-precision energy (00100400)",
               int(frozen.precise_kwh is not None), "", low=1, high=1, position=position,
               source=f"{spec.STANDARD} 0010 attribute 4 (the plan's freeze capture list)")
        if frozen.precise_kwh is None:
            continue
        # The read came after_s after the moment; the energy between the record and the read, at the power
        # flowing, is how much earlier than the read the record's values were taken.
        read_kwh, after_s = watch.register[moment]
        taken_s = after_s - (read_kwh - frozen.precise_kwh) * 3.6e6 / abs(watch.power_w)
        record(f"{what} values at {moment:%H:%M} taken after the moment", taken_s, "s",
               low=-(late_s + placing_s), high=late_s + placing_s, position=position,
               frozen_kwh=frozen.precise_kwh, register_kwh=read_kwh, read_after_s=after_s,
               source=f"{spec.FREEZE_LATE.source}, plus the placing of the moment ({placing_s:.3f} s: the "
               "clock's tick located, a 0.0001 kWh step in the record and in the read)")


def test_freeze_objects_as_the_bench_file_says(link698: Dlt698Link, position: Position, record) -> None:
    """5002 attribute 3 (period, associated OAD, depth) carries the bench file's minute freeze period and
    depth for every associated object, 00100200 and the high-precision 00100400 among them; 5004 the daily
    period 1 and the bench file's depth."""
    cfg = position.config.dlt698
    for oi, period, depth, name in ((spec.MINUTE_FREEZE, cfg.minute_freeze_period_min, cfg.minute_freeze_depth,
                                     "minute"),
                                    (spec.DAILY_FREEZE, 1, cfg.daily_freeze_depth, "daily")):
        table = [[field.value for field in row.value] for row in link698.get(oad(oi, 3)).value]
        periods = sorted({row[0] for row in table})
        depths = sorted({row[2] for row in table})
        captured = {(getattr(row[1], "oi", None), getattr(row[1], "attribute", None)) for row in table}
        has_energy = (spec.FORWARD_ENERGY, 2) in captured
        has_precise = (spec.FORWARD_ENERGY, spec.PRECISE_ENERGY_ATTRIBUTE) in captured
        record(f"{name} freeze period ({oi:04X} attribute 3) is {period}" + ("" if periods == [period] else
               f": meter has {periods}"), int(periods == [period]), "", low=1, high=1, position=position)
        record(f"{name} freeze depth is {depth}" + ("" if depths == [depth] else f": meter has {depths}"),
               int(depths == [depth]), "", low=1, high=1, position=position)
        record(f"{name} freeze records forward active energy (00100200)", int(has_energy), "", low=1, high=1,
               position=position)
        record(f"{name} freeze records high-precision forward active energy (00100400)", int(has_precise), "",
               low=1, high=1, position=position,
               source=f"{spec.STANDARD} 0010 attribute 4: the freeze plan times the records by it")


def test_minute_freeze_against_reference(bench: Bench, rack: RackCache, link698: Dlt698Link, position: Position,
                                         record) -> None:
    """Over at least an hour of bench time at Imax: one minute-freeze record at every period boundary of the
    meter's clock, its forward energy what the reference measured up to that moment."""
    meter = bench.meter
    period = position.config.dlt698.minute_freeze_period_min
    count = math.ceil(spec.FREEZE_WATCH_S / 60.0 / period) + 1
    power_meters(bench, rack, LoadPoint(voltage_v=meter.un_v, current_a=meter.imax_a))
    shown, _ = _clock_read(link698)
    moments = _boundaries(shown + dt.timedelta(seconds=5), period, count)
    watch = _watch(bench, link698, position, moments)
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
        shown, _ = _clock_read(link698)
        moments = _boundaries(shown + dt.timedelta(seconds=5), period, math.ceil(40 / period))
        assert midnight in moments
        watch = _watch(bench, link698, position, moments)
        minute_records = _records(link698, spec.MINUTE_FREEZE, len(moments) + 2)
        daily_records = _records(link698, spec.DAILY_FREEZE, 2)
    finally:
        rack.forget_load()
        with contextlib.suppress(RigError):
            link698.set(oad(spec.DATE_TIME), date_time_s(bench.clock.datetime_now() + dt.timedelta(seconds=0.5)))
    _judge(record, position, bench, minute_records, watch, [midnight], "minute freeze across midnight,")
    _judge(record, position, bench, daily_records, watch, [midnight], "daily freeze")
