"""Harmonic influence (type test): the change of a meter's error when its voltage and current are distorted,
every position measured together.

The 5th harmonic in voltage and current is the specs' own influence row (testplans/specs/common.yaml); the
distorted currents (DC and even harmonics, odd harmonics, sub-harmonics) are testplans.harmonics.spec's
waveforms. Each reports the error at the distorted point minus the error at the sine it comes from; the
reference measures the total active power (fundamental and harmonics), so a meter that drops the harmonics'
energy, or whose front end is upset by the waveform, shows a change.
"""

from __future__ import annotations

import math
import statistics

import pytest

from rig.bench import Bench, Position
from rig.procedures import LoadPoint, RackCache
from testplans.harmonics import spec
from testplans.harmonics.helpers import require_generator
from testplans.specs import accuracy as accuracy_spec

pytestmark = pytest.mark.plan

READINGS = accuracy_spec.MIN_READINGS_PER_POINT


def _mean(readings: list[float]) -> float:
    return statistics.fmean(readings) if readings and all(math.isfinite(r) for r in readings) else math.nan


def _change(rack: RackCache, position: Position, sine: LoadPoint, distorted: LoadPoint) -> tuple[float, float]:
    """Error at `distorted` minus the error at `sine` (every position measured together), and the baseline."""
    baseline = _mean(rack.errors(sine, readings=READINGS, key="harmonics")[position.index])
    shifted = _mean(rack.errors(distorted, readings=READINGS, key="harmonics")[position.index])
    return shifted - baseline, baseline


def test_fifth_harmonic(bench: Bench, rack: RackCache, position: Position, record) -> None:
    """10 % 5th harmonic in the voltage and 40 % in the current, in phase: the change of error within the
    class's harmonic influence limit (the harmonics carry 4 % of the power: a meter that registers the
    fundamental alone is off by about -3.8 %)."""
    meter = bench.meter
    require_generator(bench, spec.fifth_harmonic())
    test = accuracy_spec.influence_test(meter, spec.FIFTH)
    for pf in test.pfs:
        limit = accuracy_spec.influence_limit_pct(meter, spec.FIFTH, pf)
        sine = LoadPoint(voltage_v=meter.un_v, current_a=test.current_a, phase_deg=pf.angle_deg)
        distorted = LoadPoint(voltage_v=meter.un_v, current_a=test.current_a, phase_deg=pf.angle_deg,
                              harmonics=spec.fifth_harmonic())
        change, baseline = _change(rack, position, sine, distorted)
        record(f"change of error, 5th harmonic in U and I, PF {pf.label}", change, "%", low=-limit.value_pct,
               high=limit.value_pct, position=position, baseline_pct=baseline, current_a=test.current_a,
               harmonic_power_w=distorted.active_power_w - sine.active_power_w, source=limit.source,
               check=limit.check)


def test_distorted_current(bench: Bench, rack: RackCache, position: Position, waveform: spec.WaveformTest,
                           record) -> None:
    """A distorted current (half-wave rectified, phase-fired, burst-fired) on a sinusoidal voltage: the change
    of error against the sine it is cut from, within the class's limit for that waveform."""
    meter = bench.meter
    limit = spec.waveform_limit(meter, waveform)
    point = spec.distorted_point(meter, waveform)
    require_generator(bench, point.content)
    sine = LoadPoint(voltage_v=meter.un_v, current_a=point.sine_a)
    distorted = LoadPoint(voltage_v=meter.un_v, current_a=point.fundamental_a, phase_deg=point.phase_deg,
                          harmonics=point.content)
    change, baseline = _change(rack, position, sine, distorted)
    record(f"change of error, {waveform.description}", change, "%", low=-limit.value_pct, high=limit.value_pct,
           position=position, baseline_pct=baseline, sine_a=point.sine_a, fundamental_a=point.fundamental_a,
           components=len(point.content), source=limit.source, check=limit.check)
