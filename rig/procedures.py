"""Bench procedures shared by test plans: energise a load point, measure every position's error at
once (as a rack does), count pulses over a window. In volts, amperes and seconds; no SCPI here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

from drivers.reference import CalculatorState
from rig.bench import Bench, Position

T = TypeVar("T")

# Time after changing a load point before gating starts (a source's output and a meter's filters settle).
DEFAULT_SETTLE_S = 2.0
# Minimum duration of one error reading (reference/accuracy.md: "at least about 5 s").
MIN_GATE_S = 5.0


@dataclass(frozen=True)
class LoadPoint:
    """What the source delivers: voltage, current, phase angle (positive lagging), frequency."""

    voltage_v: float
    current_a: float
    phase_deg: float = 0.0
    frequency_hz: float | None = None

    @property
    def active_power_w(self) -> float:
        """Nominal active power per phase element, W."""
        return self.voltage_v * self.current_a * math.cos(math.radians(self.phase_deg))


def energise(bench: Bench, point: LoadPoint, *, settle_s: float = DEFAULT_SETTLE_S) -> None:
    """Set the load point, switch the output on, and let it settle."""
    bench.source.apply(voltage_v=point.voltage_v, current_a=point.current_a, phase_deg=point.phase_deg,
                       frequency_hz=point.frequency_hz)
    if not bench.source.output_enabled:
        bench.source.output_on()
    bench.clock.sleep(settle_s)


def pulse_period_s(power_w: float, constant_imp_per_kwh: float) -> float:
    """Time between meter pulses at `power_w`, s."""
    return 3.6e6 / (abs(power_w) * constant_imp_per_kwh)


def pulses_for_gate(power_w: float, constant_imp_per_kwh: float, min_gate_s: float = MIN_GATE_S) -> int:
    """N meter pulses so one reading lasts at least `min_gate_s`."""
    return max(1, math.ceil(min_gate_s / pulse_period_s(power_w, constant_imp_per_kwh)))


def measure_errors(bench: Bench, positions: Sequence[Position], *, power_w: float, readings: int = 2,
                   min_gate_s: float = MIN_GATE_S) -> dict[int, list[float]]:
    """Arm every position's error calculator together, `readings` times; errors (%) by position index.

    A position whose meter gives no reading within three times the expected gate time gets NaN for
    that reading (it fails its own records) while the other positions carry on, as on a real rack.
    """
    constant = bench.meter.constant_imp_per_kwh
    pulses = pulses_for_gate(power_w, constant, min_gate_s)
    expected_s = (pulses + 1) * pulse_period_s(power_w, constant)
    for p in positions:
        p.calculator.configure(constant_imp_per_kwh=constant, pulses=pulses)
    results: dict[int, list[float]] = {p.index: [] for p in positions}
    for _ in range(readings):
        for p in positions:
            p.calculator.start()
        bench.clock.sleep(expected_s)
        pending = _Pending(list(positions))
        bench.clock.wait_until(pending.all_done, timeout_s=2 * expected_s + 1.0, poll_s=min(1.0, expected_s / 10))
        for p in pending.positions:
            p.calculator.abort()
        for p in positions:
            results[p.index].append(math.nan if p in pending.positions else p.calculator.error_pct())
    return results


@dataclass
class _Pending:
    """Positions whose error calculator has not finished yet."""

    positions: list[Position]

    def all_done(self) -> bool:
        self.positions = [p for p in self.positions if p.calculator.state() is not CalculatorState.DONE]
        return not self.positions


def count_pulses(bench: Bench, positions: Sequence[Position], duration_s: float) -> dict[int, int]:
    """Meter pulses counted on every position over `duration_s` of bench time."""
    for p in positions:
        p.calculator.start_count()
    bench.clock.sleep(duration_s)
    return {p.index: p.calculator.pulse_count() for p in positions}


class RackCache:
    """One measurement per load point for the whole rack: the first position's test item measures
    every position at once (one source setting, every calculator armed together); the others read
    their result. Keys are the load point and what was measured."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self._results: dict[tuple[object, ...], dict[int, list[float]]] = {}
        self._counts: dict[tuple[object, ...], dict[int, int]] = {}
        self._other: dict[object, object] = {}
        self._current: LoadPoint | None = None

    def _energise(self, point: LoadPoint, settle_s: float) -> None:
        # Settling is only needed when the load point changes (points are ordered to keep this rare).
        if point != self._current or not self.bench.source.output_enabled:
            energise(self.bench, point, settle_s=settle_s)
            self._current = point

    def errors(self, point: LoadPoint, *, readings: int, key: object = None,
               settle_s: float = DEFAULT_SETTLE_S) -> dict[int, list[float]]:
        """Error readings (%) of every position at `point`, measured once per (point, readings, key)."""
        cache_key = (point, readings, key)
        if cache_key not in self._results:
            self._energise(point, settle_s)
            self._results[cache_key] = measure_errors(self.bench, self.bench.positions,
                                                      power_w=point.active_power_w, readings=readings)
        return self._results[cache_key]

    def has_errors(self, point: LoadPoint, *, readings: int, key: object = None) -> bool:
        """True when `errors(point, readings=..., key=...)` is already measured."""
        return (point, readings, key) in self._results

    def pulse_counts(self, point: LoadPoint, duration_s: float, *, key: object = None,
                     settle_s: float = DEFAULT_SETTLE_S) -> dict[int, int]:
        """Pulses of every position over `duration_s` at `point`, counted once per (point, duration, key)."""
        cache_key = (point, duration_s, key)
        if cache_key not in self._counts:
            self._energise(point, settle_s)
            self._counts[cache_key] = count_pulses(self.bench, self.bench.positions, duration_s)
        return self._counts[cache_key]

    def cached(self, key: object, measure: Callable[[], T]) -> T:
        """Run `measure()` once for the whole rack and remember its result under `key`."""
        if key not in self._other:
            self._current = None  # the procedure sets its own load point
            self._other[key] = measure()
        return cast(T, self._other[key])

    def forget_load(self) -> None:
        """The source was changed or made safe by someone else: energise again next time."""
        self._current = None


def dose_energy(bench: Bench, positions: Sequence[Position], point: LoadPoint,
                energy_wh: float) -> tuple[dict[int, int], float]:
    """Deliver about `energy_wh` at `point`; each position's pulse count and the reference's energy, Wh."""
    energise(bench, point)
    duration_s = energy_wh * 3600.0 / abs(point.active_power_w)
    bench.reference.start_energy()
    counts = count_pulses(bench, positions, duration_s)
    bench.reference.stop_energy()
    return counts, bench.reference.energy_wh()
