"""The harmonic plans' defect catalogue (`twin.meter.harmonics.*`): for every knob, the value that must fail
(outside) and the one that must pass (inside), from the limits in testplans.harmonics.spec and the specs'
5th-harmonic row, and the plan tests that catch it. Registered in pyproject.toml under the
`meter_hil_rig.mutations` entry points; tests/harmonics prove it."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from drivers.source import Harmonic
from testplans.harmonics import spec
from testplans.mutations import Mutation
from testplans.specs import accuracy as accuracy_spec

HARMONICS = "twin.meter.harmonics"
INFLUENCE = "testplans/harmonics/test_influence.py"
FIFTH = f"{INFLUENCE}::test_fifth_harmonic"
DISTORTED = f"{INFLUENCE}::test_distorted_current"
READINGS = "testplans/harmonics/test_readings.py"
CONTENT = f"{READINGS}::test_harmonic_content"
CONTENT_698 = f"{READINGS}::test_harmonic_content_698"
ENERGY = f"{READINGS}::test_fundamental_and_harmonic_energy"
# Outside overshoots the limit by a quarter, inside stays at 0.6 of it (the healthy meter's own small
# errors and the readings' noise fit in what is left).
OUTSIDE, INSIDE = 1.25, 0.6

Meter = accuracy_spec.MeterTypeLike


def _rss(values: Iterable[float]) -> float:
    return math.sqrt(sum(v * v for v in values))


def odd_pct(content: Iterable[Harmonic]) -> float:
    """RMS of the current's odd harmonics (3rd and up), % of the fundamental."""
    return _rss(h.current_pct for h in content if h.order == int(h.order) and h.order >= 3 and h.order % 2)


def dc_even_pct(content: Iterable[Harmonic]) -> float:
    """RMS of the current's DC and even harmonics, % of the fundamental."""
    return _rss(h.current_pct for h in content if h.order == int(h.order) and h.order % 2 == 0)


def fractional_pct(content: Iterable[Harmonic]) -> float:
    """RMS of the current's sub- and interharmonics, % of the fundamental."""
    return _rss(h.current_pct for h in content if h.order != int(h.order))


def _fifth_limit(meter: Meter) -> float:
    return accuracy_spec.influence_limit_pct(meter, spec.FIFTH, "1").value_pct


def _waveform(name: str) -> spec.WaveformTest:
    return next(t for t in spec.WAVEFORM_TESTS if t.name == name)


def _harmonic_error_boundary(meter: Meter) -> float:
    # The harmonics carry f = P_h / (P_1 + P_h) of the reference's energy: an error e (%) of their registered
    # power moves the meter's error by e * f. The boundary is the e that reaches the limit, on the side of a
    # meter that loses harmonic energy.
    fraction = sum(h.power_fraction for h in spec.fifth_harmonic())
    return -_fifth_limit(meter) * (1.0 + fraction) / fraction


def _content_boundary(meter: Meter) -> float:
    # The largest content of the test point is the 5th harmonic's 40 % of the current: an error e (% of the
    # reading) reads it e * 40 / 100 off.
    largest = max(max(h.voltage_pct, h.current_pct) for h in spec.fifth_harmonic())
    return spec.CONTENT_TOLERANCE_PCT / largest * 100.0


def _sensitivity_boundary(*cases: tuple[Callable[[Meter], float], Callable[[Meter], float]]) -> Callable[
        [Meter], float]:
    """The smallest sensitivity (%/% of content) that reaches a limit in any of `cases` (limit, content)."""
    return lambda meter: min(limit(meter) / content(meter) for limit, content in cases)


def _waveform_case(name: str, content: Callable[[Iterable[Harmonic]], float]) -> tuple[
        Callable[[Meter], float], Callable[[Meter], float]]:
    test = _waveform(name)
    return (lambda meter: spec.waveform_limit(meter, test).value_pct,
            lambda meter: content(spec.distorted_point(meter, test).content))


def _fifth_case(content: Callable[[Iterable[Harmonic]], float]) -> tuple[
        Callable[[Meter], float], Callable[[Meter], float]]:
    return _fifth_limit, lambda meter: content(spec.fifth_harmonic())


def _scaled(boundary: Callable[[Meter], float], factor: float) -> Callable[[Meter], float]:
    return lambda meter: factor * boundary(meter)


def _mutation(knob: str, catches: tuple[str, ...], boundary: Callable[[Meter], float], why: str) -> Mutation:
    return Mutation(f"{HARMONICS}.{knob}", catches, _scaled(boundary, OUTSIDE), _scaled(boundary, INSIDE), why,
                    boundary=boundary)


_ODD = _sensitivity_boundary(_fifth_case(odd_pct), _waveform_case("odd", odd_pct))
_DC = _sensitivity_boundary(_waveform_case("dc_even", dc_even_pct))
_SUB = _sensitivity_boundary(_waveform_case("sub", fractional_pct))

MUTATIONS: tuple[Mutation, ...] = (
    _mutation("harmonic_error_pct", (FIFTH, ENERGY), _harmonic_error_boundary,
              "the meter loses part of the harmonics' energy (the 5th harmonic's 4 % of the power)"),
    Mutation(f"{HARMONICS}.bandwidth_order", (FIFTH, CONTENT, CONTENT_698, ENERGY), lambda meter: 4.0,
             lambda meter: 5.0,
             "the front end's bandwidth stops below the 5th harmonic: its energy and content are not measured"),
    _mutation("distortion_sensitivity_pct_per_pct", (FIFTH,), _ODD,
              "the front end's gain moves with the odd harmonics of the current (crest factor; the 5th-harmonic "
              "test, 40 % at a 0.8 % limit, is tighter than the phase-fired one)"),
    _mutation("dc_sensitivity_pct_per_pct", (DISTORTED,), _DC,
              "the current sensor saturates on half-wave rectified current (DC and even harmonics)"),
    _mutation("subharmonic_sensitivity_pct_per_pct", (DISTORTED,), _SUB,
              "the front end is upset by sub-harmonics of a burst-fired current"),
    _mutation("content_error_pct", (CONTENT, CONTENT_698), _content_boundary,
              "the meter reports its harmonic content off by a share of the reading"),
)
