"""`twin:` knobs of the twin meter's DL/T 698.45 server (`twin.meter.dlt698.*`): pure data, healthy defaults;
imports nothing of the twin."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rig.config.base import StrictModel


def _knob(default: Any, description: str, breaks: str, **constraints: Any) -> Any:
    # rig.config.twin's `knob`, repeated: that module imports this one, and siblings import in one direction.
    return Field(default, description=description, json_schema_extra={"breaks": breaks}, **constraints)


class Dlt698Knobs(StrictModel):
    """Defects of the management module's DL/T 698.45 server (same UART and BLE as DL/T 645)."""

    hcs_error: bool = _knob(False, "replies carry a wrong header check (HCS + 1)", "698 frame conformance (HCS)")
    fcs_error: bool = _knob(False, "replies carry a wrong frame check (FCS + 1)", "698 frame conformance (FCS)")
    energy_scaler: int = _knob(
        -2, "scaler the firmware applies to energy registers while attribute 3 still says -2 (kWh)",
        "698 energy readings (scaler)", ge=-4, le=0,
    )
    dar_wrong: bool = _knob(
        False, "a refused GET/SET answers DAR 255 (other) instead of the DAR that names the reason",
        "698 DAR codes",
    )
    minute_freeze_period_min: int = _knob(15, "minute freeze period, min (5002 attribute 3)", "minute freeze", ge=1,
                                          le=60)
    freeze_boundary: Literal["ok", "missing", "duplicated"] = _knob(
        "ok", "at midnight the minute freeze record is missing or written twice", "freeze records at a boundary",
    )
    freeze_late_s: float = _knob(
        0.0, "freeze values are taken this long after the freeze moment (the record still says the moment), s",
        "freeze values taken at the moment", ge=0,
    )
    reports: Literal["ok", "never", "twice"] = _knob(
        "ok", "event REPORT-Notifications are never sent, or each is sent twice", "event reporting",
    )
    accepts_corrupt_image: bool = _knob(
        False, "the file-transfer check passes an image whose digest or signature is wrong",
        "software upgrade refuses corrupt or unsigned images",
    )
    loses_old_image_on_interruption: bool = _knob(
        False, "the old image is erased before the new one is in place: a power loss then leaves the meter dead",
        "software upgrade survives a power loss",
    )
    version_not_updated: bool = _knob(
        False, "after an upgrade the meter still reports the old software version", "software version after upgrade",
    )
