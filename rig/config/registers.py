"""`twin:` knobs of the twin meter's register functions (`twin.meter.registers.*`): identity and software,
energy direction, tariffs, display, event log, load relay. Pure data, healthy defaults; imports nothing of
the twin."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rig.config.base import StrictModel


def _knob(default: Any, description: str, breaks: str, **constraints: Any) -> Any:
    # rig.config.twin's `knob`, repeated: that module imports this one, and siblings import in one direction.
    return Field(default, description=description, json_schema_extra={"breaks": breaks}, **constraints)


class RegisterKnobs(StrictModel):
    """Defects of the meter's register functions as its firmware implements them."""

    software_version_wrong: bool = _knob(
        False, "the meter reports a software version other than the one it was type-tested with",
        "software identification against the type's declared version",
    )
    software_checksum_wrong: bool = _knob(
        False, "the meter runs (and reports the checksum of) a software build other than the type-tested one",
        "software checksum against the type's declared checksum",
    )
    reverse_counted_forward: bool = _knob(
        False, "energy flowing back (current reversed) is added to the forward register, the reverse one stays",
        "reverse energy register and forward register unchanged when reversed",
    )
    direction_bit_stuck: bool = _knob(
        False, "status word 1 never shows reverse active power (bit 4 stays 0)", "direction status bit",
    )
    event_log_stops_when_full: bool = _knob(
        False, "the clock-setting log stops recording (records and count) once its records are used",
        "event-log rollover",
    )
    event_log_overwrites_newest: bool = _knob(
        False, "once the clock-setting log is full each new event overwrites the newest record, not the oldest",
        "event-log rollover",
    )
    tariff_switch_late_min: float = _knob(
        0.0, "minutes after a programmed period start that the meter switches tariff", "registers per tariff",
        ge=0, le=600,
    )
    tariff_wrong: bool = _knob(
        False, "the meter registers the off-peak periods in the peak tariff's register", "registers per tariff",
    )
    display_stale_s: float = _knob(
        0.0, "age of the energy value the display shows (refreshed this long after the register), s",
        "register against display", ge=0,
    )
    display_rounds: bool = _knob(
        False, "the display rounds the energy to its last digit instead of truncating as the register does",
        "register against display",
    )
    relay_welded: bool = _knob(
        False, "the load relay's contacts are welded: a trip reports open while current still flows",
        "relay reported state against the contact",
    )
