"""Rack-wide procedures of the power plans: the meters on mains and answering, an outage timed on the
rig's clock, the meter's clock timed from its tick, registers and power-down records read.

A rack measures once for every position (one source feeds them all): `rack.cached` runs an outage or a
program in the first position's item and hands each position its own result. A position whose meter
stops answering gets its problem in its own result; the others carry on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from drivers.dlt645 import Dlt645Frame, Function, encode_di
from drivers.dlt645.link import MeterLink
from drivers.errors import RigError
from rig.bench import Bench, Position
from rig.procedures import LoadPoint, RackCache, energise
from testplans.power import spec


def mains_on(bench: Bench, rack: RackCache, *, current_a: float = 0.0) -> None:
    """The meters on mains at Un (no current unless asked: the registers stand still)."""
    source, un = bench.source, bench.meter.un_v
    if source.output_enabled and source.voltage_v == un and source.current_a == current_a:
        return
    energise(bench, LoadPoint(voltage_v=un, current_a=current_a), settle_s=0.5)
    rack.forget_load()  # the accuracy plans' cache must set its own load point again


def probe(link: MeterLink) -> float | None:
    """Ask the meter once (a read of its time, no retry, short timeout): the bench time the answered
    request was sent, or None when it stays silent."""
    frame = Dlt645Frame.request(link.address, Function.READ, encode_di(spec.TIME))
    saved = link.reply_timeout_s
    link.reply_timeout_s = spec.PROBE_REPLY_TIMEOUT_S
    try:
        exchange = link.exchange(frame, retries=0)
    finally:
        link.reply_timeout_s = saved
    return exchange.attempts[-1].sent_at_s if exchange.reply is not None else None


def wait_answering(bench: Bench, positions: Sequence[Position], *, timeout_s: float | None = None) -> dict[int, float]:
    """Ask every position's meter until each has answered or `timeout_s` (default: three start-up times
    and a margin) has passed; bench time each first answered request was sent, by position index."""
    limit = timeout_s if timeout_s is not None else 3 * bench.meter.start_up_time_s + 10.0
    end = bench.clock.now() + limit
    answered: dict[int, float] = {}
    pending = [p for p in positions if p.link is not None]
    while pending and bench.clock.now() < end:
        for p in list(pending):
            assert p.link is not None
            at = probe(p.link)
            if at is not None:
                answered[p.index] = at
                pending.remove(p)
    return answered


def after_power_returns(bench: Bench, positions: Sequence[Position]) -> dict[int, float]:
    """Let the start-up time pass, then wait for every meter (the start-up plan times it precisely)."""
    bench.clock.sleep(bench.meter.start_up_time_s)
    return wait_answering(bench, positions)


@dataclass(frozen=True)
class Outage:
    """Mains switched off and on again, timed on the rig's clock (bench seconds and calendar time)."""

    off_s: float
    on_s: float
    off_at: dt.datetime
    on_at: dt.datetime


def outage(bench: Bench, rack: RackCache, duration_s: float) -> Outage:
    """Switch the source's output off for `duration_s` of bench time, then on again (same set-points)."""
    clock, source = bench.clock, bench.source
    source.output_off()
    off_s, off_at = clock.now(), clock.datetime_now()
    rack.forget_load()
    clock.sleep(duration_s)
    source.output_on()
    return Outage(off_s, clock.now(), off_at, clock.datetime_now())


def _seconds(moment: dt.time) -> float:
    return moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6


def clock_offset_s(bench: Bench, link: MeterLink) -> tuple[float, float]:
    """The meter's clock minus the rig's calendar time, timed from a tick of the meter's seconds (reads
    until the shown second changes: the tick lies between the two reads), and the bench time of the tick.

    Each read is placed at the middle of its request and reply; the tick between two reads that show
    different seconds. The uncertainty is half a read interval plus half the reply latency."""
    previous: tuple[dt.time, float] | None = None
    for _ in range(spec.CLOCK_TICK_READS):
        value = link.read(spec.TIME)
        exchange = link.last
        assert exchange is not None and isinstance(value, dt.time)
        attempt = exchange.attempts[-1]
        at = (attempt.sent_at_s + (attempt.reply_at_s if attempt.reply_at_s is not None else attempt.sent_at_s)) / 2
        if previous is not None and value != previous[0]:
            tick = (previous[1] + at) / 2
            rig = bench.clock.datetime_now() - dt.timedelta(seconds=bench.clock.now() - tick)
            offset = (_seconds(value) - _seconds(rig.time()) + 43200.0) % 86400.0 - 43200.0
            return offset, tick
        previous = (value, at)
    raise RigError(f"meter {link.address}: its clock did not tick over {spec.CLOCK_TICK_READS} reads of the time")


def read_registers(link: MeterLink) -> dict[str, float]:
    """The energy registers, kWh, by name."""
    return {name: link.read_number(di) for name, di in spec.REGISTERS.items()}


def read_events(link: MeterLink) -> tuple[int, list[tuple[dt.datetime | None, dt.datetime | None]]]:
    """The power-down count and the last two records (newest first)."""
    count = int(link.read_number(spec.POWER_DOWN_COUNT))
    records = []
    for n in (1, 2):
        value = link.read(spec.power_down_record(n))
        assert isinstance(value, tuple)
        records.append(value)
    return count, records


@dataclass
class PerPosition:
    """What a rack-wide procedure measured on one position, or why it could not."""

    values: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None

    def get(self, key: str) -> Any:
        """A measured value; fails the position's item with the problem when it could not be measured."""
        if self.problem is not None:
            pytest.fail(self.problem)
        return self.values[key]


def each(positions: Sequence[Position], results: dict[int, PerPosition], what: str,
         measure: Callable[[Position, MeterLink], dict[str, Any]]) -> None:
    """Run `measure` on every position with a meter link that has no problem yet; a position whose meter
    fails gets the problem (naming `what`) and drops out of the rest."""
    for p in positions:
        result = results.setdefault(p.index, PerPosition())
        if result.problem is not None:
            continue
        if p.link is None:
            result.problem = f"{p.name}: the bench file gives no serial port for this position"
            continue
        try:
            result.values.update(measure(p, p.link))
        except RigError as exc:
            result.problem = f"{p.name}: {what}: {exc}"


def not_answering(results: dict[int, PerPosition], positions: Sequence[Position], answered: dict[int, float],
                  when: str) -> None:
    """Mark every position whose meter did not answer `when`."""
    for p in positions:
        result = results.setdefault(p.index, PerPosition())
        if p.index not in answered and result.problem is None:
            result.problem = f"{p.name}: the meter did not answer {when}"
