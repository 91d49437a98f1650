"""`twin:` knobs of how the twin meter registers distorted waveforms (`twin.meter.harmonics.*`): pure data,
healthy defaults; imports nothing of the twin."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rig.config.base import StrictModel


def _knob(default: Any, description: str, breaks: str, **constraints: Any) -> Any:
    # rig.config.twin's `knob`, repeated: that module imports this one, and siblings import in one direction.
    return Field(default, description=description, json_schema_extra={"breaks": breaks}, **constraints)


class HarmonicKnobs(StrictModel):
    """Defects of the metering front end under non-sinusoidal voltage and current. Healthy defaults are small,
    not zero: a real front end's bandwidth and linearity are finite."""

    harmonic_error_pct: float = _knob(
        -0.5, "error of the harmonics' active power as the meter registers it, % (-100: a meter that registers "
        "the fundamental only)", "harmonic influence (5th harmonic in U and I), harmonic energy", ge=-100,
    )
    bandwidth_order: int = _knob(
        40, "highest harmonic order the front end passes; power at higher orders is not registered",
        "harmonic influence, harmonic energy and content readings above its order", ge=1, le=100,
    )
    distortion_sensitivity_pct_per_pct: float = _knob(
        0.0005, "change of the registered power per % of odd-harmonic content of the current (a front end whose "
        "gain depends on the crest factor), %/%",
        "5th-harmonic influence (40 % in the current), odd harmonics in the current circuit",
    )
    dc_sensitivity_pct_per_pct: float = _knob(
        0.002, "change of the registered power per % of DC and even-harmonic content of the current (a current "
        "transformer that saturates on half-wave rectified current), %/%", "DC and even harmonics in the current",
    )
    subharmonic_sensitivity_pct_per_pct: float = _knob(
        0.0005, "change of the registered power per % of sub-harmonic content of the current (a chip whose "
        "filters beat with components below the fundamental), %/%", "sub-harmonics in the current circuit",
    )
    content_error_pct: float = _knob(
        0.0, "error of the harmonic content the meter reports (data items of voltage and current harmonic "
        "content), % of the reading", "harmonic content readings against the reference",
    )
