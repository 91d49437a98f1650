"""Event-log rollover: more clock-setting events than the meter has records (10 + 3 time writes, each to a
distinct time) leave the count 13 higher, record 1 the last event, and records 1..10 the last ten events in
order, newest first: the oldest were overwritten, not the newest, and logging did not stop when the log was
full. The meter's clock is set back to the bench's afterwards. Per position, over the UART."""

from __future__ import annotations

import datetime as dt

import pytest

from drivers.dlt645.link import MeterLink
from rig.bench import Bench, Position
from testplans.comms import spec as comms_spec
from testplans.comms.helpers import restore_clock
from testplans.registers import spec

pytestmark = pytest.mark.plan

COUNT = comms_spec.di("clock-setting count")
FIRST_SET = dt.time(10, 0, 0)  # the writes set 10:00, 10:01, ... (distinct times, far from midnight)


def _record(link: MeterLink, n: int) -> dt.time | None:
    """The time after the clock set of record `n` (1: the newest), None when empty or unreadable."""
    value = link.read(comms_spec.di(f"clock-setting record, last {n}"))
    if not isinstance(value, tuple) or value[1] is None:
        return None
    return value[1].time()


def test_clock_setting_log_rolls_over(bench: Bench, link: MeterLink, position: Position, record) -> None:
    """13 clock sets into a log of 10 records: count +13, records 1..10 the last ten sets, newest first."""
    source = spec.EVENT_LOG
    events = spec.EVENT_RECORDS + spec.EXTRA_EVENTS
    before = link.read_number(COUNT)
    written = [(dt.datetime.combine(dt.date(2000, 1, 1), FIRST_SET) + dt.timedelta(minutes=k)).time()
               for k in range(events)]
    try:
        for moment in written:
            link.write(comms_spec.TIME, moment)
        after = link.read_number(COUNT)
        records = [_record(link, n) for n in range(1, spec.EVENT_RECORDS + 1)]
    finally:
        restore_clock(bench, link)
    record("clock-setting count increase", after - before, "events", low=events, high=events, position=position,
           source=source.text, check=source.check)
    expected = written[::-1][:spec.EVENT_RECORDS]  # newest first
    matching = sum(1 for got, want in zip(records, expected, strict=True) if got == want)
    record("clock-setting records holding the last events in order", matching, "records", low=spec.EVENT_RECORDS,
           high=spec.EVENT_RECORDS, position=position, records=[str(r) for r in records],
           expected=[str(e) for e in expected], source=source.text, check=source.check)
