"""The twin meter's clock-setting event log, from the meter's side: every clock set by a write (date or time,
DL/T 645 04 00 01 01 / 02) is counted and recorded with the time before and after; the log keeps the last
RECORDS records in a ring (the oldest overwritten), the count goes on to its 3 BCD digits' limit.

Served over DL/T 645-2007: 03 30 04 00 the count, 03 30 04 01..0A the records, last first (the record layout,
operator code + time before + time after, is marked check in the codec). Knobs: a log that stops when full,
or one that overwrites its newest record instead of the oldest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from drivers.dlt645 import Value
from rig.config.registers import RegisterKnobs

RECORDS: Final = 10  # DL/T 645-2007 keeps the last 10 records of each event
MAX_COUNT: Final = 999_999  # 3 BCD bytes
DI_COUNT: Final = 0x03300400

Record = tuple[dt.datetime, dt.datetime]  # time before, time after


@dataclass
class ClockSetLog:
    """The count and the records (newest first) of clock-setting events."""

    knobs: RegisterKnobs
    count: int = 0
    records: list[Record] = field(default_factory=list)  # newest first, at most RECORDS

    def log(self, before: dt.datetime, after: dt.datetime) -> None:
        """A clock set: count it and record it as the firmware does."""
        full = len(self.records) >= RECORDS
        if full and self.knobs.event_log_stops_when_full:
            return  # neither counted nor recorded once the records are used
        self.count = min(self.count + 1, MAX_COUNT)
        record = (before.replace(microsecond=0), after.replace(microsecond=0))
        if full and self.knobs.event_log_overwrites_newest:
            self.records[0] = record
            return
        self.records.insert(0, record)
        del self.records[RECORDS:]  # the oldest goes

    def items(self) -> dict[int, Callable[[float], Value]]:
        """The DL/T 645 items of the log (DI -> value at bench time `now`)."""
        items: dict[int, Callable[[float], Value]] = {DI_COUNT: lambda now: self.count}
        for n in range(1, RECORDS + 1):
            items[DI_COUNT + n] = self._record_getter(n - 1)
        return items

    def _record_getter(self, index: int) -> Callable[[float], Value]:
        def get(now: float) -> Value:
            return self.records[index] if index < len(self.records) else (None, None)

        return get
