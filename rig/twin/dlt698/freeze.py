"""The twin meter's DL/T 698.45 freezes (5002 minute, 5004 daily): taking records on the meter's clock as it steps,
and selecting/encoding record rows for GET-Record (freezes and the 3011 event alike).

Meter side of the twin: uses only the twin's own codec (rig.twin.dlt698.codec), never the rig's host side.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rig.twin.dlt698.codec import Csd, Data, Rsd, Tag, array, structure
from rig.twin.dlt698.objects import (
    OAD_FREEZE_SEQUENCE,
    OAD_FREEZE_TIME,
    OI_DAILY_FREEZE,
    OI_MINUTE_FREEZE,
    FreezeRecord,
    energy,
    precise_energy,
    value,
)

if TYPE_CHECKING:
    from rig.twin.dlt698.server import Dlt698Server


@dataclass
class Freeze:
    """A freeze object (class 9): its period, associated OADs, depth and the records taken."""

    oi: int
    period: int  # minutes for the minute freeze, days for the daily one
    associated: tuple[int, ...]
    depth: int
    records: deque[FreezeRecord]
    next_due: dt.datetime | None = None
    sequence: int = 0

    def relation_table(self) -> Data:
        """Attribute 3: array of {period, OAD, depth}."""
        return array([structure([Data(Tag.LONG_UNSIGNED, self.period), Data(Tag.OAD, oad),
                                 Data(Tag.LONG_UNSIGNED, self.depth)]) for oad in self.associated])


def boundary_after(freeze: Freeze, moment: dt.datetime) -> dt.datetime:
    if freeze.oi == OI_DAILY_FREEZE:
        return dt.datetime.combine(moment.date() + dt.timedelta(days=1), dt.time())
    minutes = moment.hour * 60 + moment.minute
    due = (minutes // freeze.period + 1) * freeze.period
    return dt.datetime.combine(moment.date(), dt.time()) + dt.timedelta(minutes=due)


def take_due(server: Dlt698Server, freeze: Freeze, now: dt.datetime, t0: float, end: float,
             forward: tuple[float, float], reverse: tuple[float, float]) -> None:
    """Take the records of `freeze` that fell due in the step [t0, end] (meter clock `now` at its end)."""
    late = dt.timedelta(seconds=server.knobs.freeze_late_s)
    upcoming = boundary_after(freeze, now)
    if freeze.next_due is None or freeze.next_due > upcoming:
        # First look, or the meter's clock was set back (a time write, a broadcast sync): the meter freezes
        # again from its clock's next boundary, as it would after any time setting.
        freeze.next_due = upcoming
        return
    rtc = server.management.rtc
    # The clock shows whole seconds, but it ticks at an instant: the values are taken `late` after the moment's
    # tick, placed within the step on the clock's own (unrounded) count.
    def counted(time_s: float) -> float:
        return time_s * (1.0 + rtc.drift_ppm * 1e-6) + rtc.offset_s

    clock_start, clock_end = counted(t0), counted(end)
    span = max(clock_end - clock_start, 1e-9)
    while (taken_at := (freeze.next_due + late - rtc.epoch).total_seconds()) <= clock_end:
        moment = freeze.next_due
        # The step's terminals were constant: the registers at the freeze moment lie on a straight line.
        fraction = min(1.0, max(0.0, (taken_at - clock_start) / span))
        if end - t0 <= 0:
            fraction = 1.0
        copies = 1
        if freeze.oi == OI_MINUTE_FREEZE and moment.time() == dt.time():
            copies = {"ok": 1, "missing": 0, "duplicated": 2}[server.knobs.freeze_boundary]
        for _ in range(copies):
            freeze.sequence += 1
            freeze.records.append(take_record(server, freeze, moment, fraction, forward, reverse))
        freeze.next_due = boundary_after(freeze, moment)


def take_record(server: Dlt698Server, freeze: Freeze, moment: dt.datetime, fraction: float,
                forward: tuple[float, float], reverse: tuple[float, float]) -> FreezeRecord:
    """The record of `freeze` at `moment`: registers interpolated `fraction` of the way through the step."""
    f = forward[0] + (forward[1] - forward[0]) * fraction
    r = reverse[0] + (reverse[1] - reverse[0]) * fraction
    tariff_f = list(server.forward_tariffs)
    tariff_r = list(server.reverse_tariffs)
    current = server.step_tariff  # the step's energy after the moment went to this tariff: take it back
    tariff_f[current] -= forward[1] - f
    tariff_r[current] -= reverse[1] - r
    now_s = server.management.world.time_s
    columns: dict[int, Data] = {
        OAD_FREEZE_SEQUENCE: Data(Tag.DOUBLE_LONG_UNSIGNED, freeze.sequence),
        OAD_FREEZE_TIME: Data(Tag.DATE_TIME_S, moment),
    }
    for oad in freeze.associated:
        if oad == 0x00100200:
            columns[oad] = energy(server.knobs, tariff_f, f)
        elif oad == 0x00200200:
            columns[oad] = energy(server.knobs, tariff_r, r)
        elif oad == 0x00100400:
            columns[oad] = precise_energy(tariff_f, f)
        elif oad == 0x00200400:
            columns[oad] = precise_energy(tariff_r, r)
        else:
            read = value(server, oad, now_s)
            columns[oad] = read if isinstance(read, Data) else Data(Tag.NULL)
    return FreezeRecord(columns)


def row(record: FreezeRecord, columns: list[Csd]) -> bytes:
    """One record's A-XDR row: each asked column's value, or NULL where the record has none."""
    out = b""
    for column in columns:
        value = record.columns.get(column.oad)
        out += value.encode() if value is not None else b"\x00"
    return out


def select(records: list[FreezeRecord], rsd: Rsd) -> list[FreezeRecord]:
    """The records a selector picks, oldest first."""
    if rsd.method == 9:
        return [records[-rsd.count]] if 1 <= rsd.count <= len(records) else []
    if rsd.method == 10:
        return records[-rsd.count:] if rsd.count else []
    if rsd.method in (1, 2):
        key = rsd.oad

        def at(record: FreezeRecord) -> object:
            data = record.columns.get(key)
            return data.value if data is not None else None

        if rsd.method == 1:
            return [r for r in records if at(r) == rsd.values[0].value]
        start, stop = rsd.values[0].value, rsd.values[1].value
        if not isinstance(start, dt.datetime) or not isinstance(stop, dt.datetime):
            return []
        return [r for r in records if isinstance(t := at(r), dt.datetime) and start <= t < stop]
    return records
