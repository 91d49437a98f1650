"""The twin meter's DL/T 698.45 power-down event (3011) reporting: when a record closes, it follows the next
responses (follow report) and/or goes out as a REPORT-Notification (active report), as the switches say.

Meter side of the twin: uses only the twin's own codec (rig.twin.dlt698.codec), never the rig's host side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rig.twin.dlt698.codec import CONTROL_REPORT, Csd, Dlt698Frame, address_to_wire, encode_rcsd
from rig.twin.dlt698.freeze import row
from rig.twin.dlt698.objects import (
    EVENT_COLUMNS,
    OI_POWER_DOWN,
    REPORT_NOTIFICATION,
    power_down_count,
    power_down_records,
)

if TYPE_CHECKING:
    from rig.twin.dlt698.server import Dlt698Server


def check_events(server: Dlt698Server) -> None:
    """A power-down record closed since the last look: report it when reporting is on."""
    count = power_down_count(server.management)
    if count <= server.reported_count:
        server.reported_count = count
        return
    server.reported_count = count
    records = power_down_records(server.management)
    if not server.event_report_flag or server.knobs.reports == "never" or not records:
        return
    columns = [Csd(oad) for oad in EVENT_COLUMNS]
    result = ((OI_POWER_DOWN << 16 | 0x0200).to_bytes(4, "big") + encode_rcsd(columns) + b"\x01\x01"
              + row(records[-1], columns))
    if server.follow_report:
        server.follow_pending.extend([result] * (2 if server.knobs.reports == "twice" else 1))
    if not server.active_report:
        return
    server.report_piid = (server.report_piid + 1) & 0x3F
    apdu = bytes((REPORT_NOTIFICATION, 2, server.report_piid, 1)) + result + b"\x00\x00"
    raw = server.encode(Dlt698Frame(CONTROL_REPORT, address_to_wire(server.management.address), 0, apdu))
    for _ in range(2 if server.knobs.reports == "twice" else 1):
        for sink in server.report_sinks:
            sink(raw)
        server.reports_sent += 1
