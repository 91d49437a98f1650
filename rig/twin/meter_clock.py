"""The twin meter's calendar clock and its broadcast time (08H) refusal rules (twin layer; imports no rig
module above the twin).

The clock is the bench's calendar time plus the meter's own offset and crystal drift; a broadcast time sync is
taken only within the rules of reference dlt645.md, "Broadcast time".
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Final

# Broadcast time (08H) refusal rules (reference dlt645.md, "Broadcast time").
BROADCAST_MAX_SHIFT_S: Final = 300.0
BROADCAST_QUIET_WINDOW_S: Final = 300.0  # around midnight and around each billing moment
BILLING_MOMENTS: Final = ((1, 0),)  # (day of month, hour): the monthly settlement


@dataclass
class MeterRtc:
    """The meter's clock: the bench's calendar time plus its own offset and drift."""

    epoch: dt.datetime
    offset_s: float
    drift_ppm: float

    def read(self, now_s: float) -> dt.datetime:
        """The meter's calendar time at bench time `now_s` (whole seconds, as it counts them)."""
        seconds = now_s * (1.0 + self.drift_ppm * 1e-6) + self.offset_s
        return (self.epoch + dt.timedelta(seconds=math.floor(seconds)))

    def set(self, moment: dt.datetime, now_s: float) -> None:
        """Set the clock to `moment` at bench time `now_s`."""
        self.offset_s = (moment - self.epoch).total_seconds() - now_s * (1.0 + self.drift_ppm * 1e-6)


def broadcast_refusal(meter_time: dt.datetime, new_time: dt.datetime, last_sync: dt.date | None) -> str | None:
    """Why a meter refuses a broadcast time sync, or None when it takes it."""
    if abs((new_time - meter_time).total_seconds()) > BROADCAST_MAX_SHIFT_S:
        return "shift beyond 5 min"
    window = dt.timedelta(seconds=BROADCAST_QUIET_WINDOW_S)
    for moment in (meter_time, new_time):
        midnight = dt.datetime.combine(moment.date(), dt.time())
        if moment - midnight < window or midnight + dt.timedelta(days=1) - moment < window:
            return "near midnight"
        for day, hour in BILLING_MOMENTS:
            if moment.day == day and abs(moment - midnight - dt.timedelta(hours=hour)) < window:
                return "near a billing moment"
    if last_sync is not None and last_sync == meter_time.date():
        return "daily quota used"
    return None
