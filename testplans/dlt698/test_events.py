"""DL/T 698.45 events: a power-down (the power plans' outage, mains off and on with the source) adds one
power-down event record (3011) whose start and end are when the rig switched the mains, and, with active
reporting switched on (4300 attribute 8), the meter sends exactly one REPORT-Notification of it, which the
rig confirms with REPORT-Response."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from dlt698 import codec
from dlt698._native import AllMeters, ReportNotification, Selector10

from drivers.dlt698 import Data, Dlt698Link, oad, oad_text
from drivers.dlt698.apdu import as_datetime
from drivers.errors import RigError
from rig.bench import Bench, Position
from rig.procedures import RackCache
from testplans.comms.helpers import power_meters
from testplans.dlt698 import spec
from testplans.power import spec as power_spec
from testplans.power.helpers import mains_on, outage

pytestmark = pytest.mark.plan

ACTIVE_REPORT = oad(spec.DEVICE, 8)
EVENT_COLUMNS = (oad(spec.EVENT_SEQUENCE), oad(spec.EVENT_START), oad(spec.EVENT_END))


def _latest_event(link: Dlt698Link) -> tuple[int, dt.datetime | None, dt.datetime | None] | None:
    rows = link.get_record(oad(spec.POWER_DOWN_EVENT), Selector10(latest=1, meters=AllMeters()), EVENT_COLUMNS)
    if not rows:
        return None
    sequence, start, end = rows[-1]
    times = []
    for value in (start, end):
        try:
            times.append(as_datetime(value))
        except RigError:
            times.append(None)
    number = sequence.value
    return (number if isinstance(number, int) else -1), times[0], times[1]


def test_power_down_event_recorded_and_reported(bench: Bench, rack: RackCache, position: Position, record) -> None:
    """One outage of the power plans' event length: one new 3011 record timed by the rig's switching, and
    exactly one REPORT-Notification of it (active reporting on), confirmed by the rig. Over the UART only: the
    meter reports on its RS-485 port, the master station's channel."""
    if not position.config.speaks_698 or position.link698 is None:
        pytest.skip(f"{position.name}: the bench file gives this position no DL/T 698.45 UART link")
    link698 = position.link698
    power_meters(bench, rack)
    link698.connect()
    link698.set(ACTIVE_REPORT, Data.boolean(True))
    try:
        before = _latest_event(link698)
        offset = (as_datetime(link698.get(oad(spec.DATE_TIME))) - bench.clock.datetime_now()).total_seconds()
        link698.reports.clear()
        link698.bad_reports.clear()
        timed = outage(bench, rack, power_spec.EVENT_OUTAGE_S)
        bench.clock.sleep(bench.meter.start_up_time_s)
        link698.listen(spec.REPORT_WAIT_S)
        link698.connected = None  # a meter that lost its supply lost its association too
        link698.connect()
        after = _latest_event(link698)
    finally:
        mains_on(bench, rack)
        with contextlib.suppress(RigError):
            link698.connect()
            link698.set(ACTIVE_REPORT, Data.boolean(False))
    new = after is not None and (before is None or after[0] != before[0])
    record("new power-down event record (3011) after one outage", int(new), "", low=1, high=1, position=position,
           source=spec.STANDARD + " class 7 (event): one record per event")
    if after is not None and new:
        for what, logged, rig_at in (("start", after[1], timed.off_at), ("end", after[2], timed.on_at)):
            error = (logged - (rig_at + dt.timedelta(seconds=offset))).total_seconds() if logged else None
            limit = power_spec.event_time_limit(0.0)
            record(f"power-down record {what} (3011) against the rig's clock", error, limit.unit, low=limit.low,
                   high=limit.high, position=position, logged=str(logged), rig=str(rig_at), source=limit.source)
    broken = [reason for _, reason in link698.bad_reports]
    record("REPORT-Notifications that do not decode" + (f": {broken[-1]}" if broken else ""), len(broken), "",
           low=0, high=0, position=position, reasons=broken, source=spec.STANDARD + " REPORT-Notification APDU")
    reported = [f for f in link698.reports if _reports_power_down(f.payload)]
    record("REPORT-Notifications of the power-down event", len(reported), "", low=1, high=1, position=position,
           source=spec.STANDARD + " REPORT-Notification-RecordList: one report per event")


def _reports_power_down(apdu: bytes) -> bool:
    try:
        message = codec.decode_apdu(apdu)
    except Exception:  # noqa: BLE001 - not a report the package can read: not this event's
        return False
    if not isinstance(message, ReportNotification) or not isinstance(message.payload, list):
        return False
    return any(oad_text(r.attribute).startswith(f"{spec.POWER_DOWN_EVENT:04X}") for r in message.payload)
