"""`twin.meter.climate`: how the twin meter behaves with temperature (its error's temperature coefficient, its
own temperature sensor) and how its clock runs on mains (crystal error, temperature compensation).

Pure data (pydantic); the twin's thermal model (rig.twin.climate) reads it."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rig.config.base import StrictModel


def knob(default: Any, description: str, breaks: str, **constraints: Any) -> Any:
    # rig.config.twin's `knob`, repeated: that module imports this one, and siblings import in one direction.
    return Field(default, description=description, json_schema_extra={"breaks": breaks}, **constraints)


class ClimateKnobs(StrictModel):
    """Defects and realism of the meter with temperature, and of its RTC on mains. Healthy defaults are not
    ideal: a small coefficient, a sensor a few hundredths off, a crystal a
    few tenths of a ppm off, compensation not perfect."""

    temperature_coefficient_pct_per_k: float = knob(
        0.004, "change of the registered energy's error per kelvin away from 23 °C, %/K (every power factor)",
        "mean temperature coefficient at PF 1 and 0.5L",
    )
    phase_drift_deg_per_k: float = knob(
        0.0005, "change of the current channel's phase error per kelvin away from 23 °C, degrees/K (shows at "
        "PF != 1)", "mean temperature coefficient at 0.5L",
    )
    sensor_offset_c: float = knob(
        0.0, "error of the meter's own temperature measurement (DI 02800007), °C (each sensor adds ±0.05 °C)",
        "meter's temperature reading against the chamber",
    )
    rtc_mains_ppm: float = knob(
        0.0, "rate error of the RTC on mains, ppm (each meter's trimmed crystal adds ±0.3 ppm; 5.8 ppm is 0.5 s/day)",
        "RTC daily error on mains at 23 °C",
    )
    rtc_uncompensated_fraction: float = knob(
        0.03, "fraction of the crystal's temperature curve (-0.034 ppm/K² about 25 °C) the RTC's compensation "
        "leaves (1: no compensation)", "RTC daily error on mains at a chamber temperature", ge=0, le=1,
    )
