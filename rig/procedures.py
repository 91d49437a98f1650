"""Bench procedures shared by test plans: energise a load point, measure every position's error at
once (as a rack does), count pulses over a window. In volts, amperes and seconds; no SCPI here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar, cast

from drivers.errors import BenchFault, InstrumentError
from drivers.reference import CalculatorState, ReferenceRestarted
from drivers.retry import RetryPolicy, is_link_problem
from drivers.source import Harmonic, distorted_power_w
from rig.bench import Bench, Position

T = TypeVar("T")

# Time after changing a load point before gating starts (a source's output and a meter's filters settle).
DEFAULT_SETTLE_S = 2.0
# Minimum duration of one error reading (reference/accuracy.md: "at least about 5 s"); the rig's own method
# choice, not a value of a standard, so it is not in the spec tables.
MIN_GATE_S = 5.0


@dataclass(frozen=True)
class LoadPoint:
    """What the source delivers: voltage, current, phase angle (positive lagging), frequency."""

    voltage_v: float
    current_a: float
    phase_deg: float = 0.0
    frequency_hz: float | None = None
    harmonics: tuple[Harmonic, ...] = ()  # content on top of the fundamental (voltage_v, current_a)

    @property
    def active_power_w(self) -> float:
        """Nominal active power per phase element (fundamental and harmonics), W."""
        return distorted_power_w(self.voltage_v, self.current_a, self.phase_deg, self.harmonics)


def energise(bench: Bench, point: LoadPoint, *, settle_s: float = DEFAULT_SETTLE_S) -> None:
    """Set the load point, switch the output on, and let it settle."""
    bench.source.apply(voltage_v=point.voltage_v, current_a=point.current_a, phase_deg=point.phase_deg,
                       frequency_hz=point.frequency_hz, harmonics=point.harmonics)
    if not bench.source.output_enabled:
        bench.source.output_on()
    bench.clock.sleep(settle_s)


def pulse_period_s(power_w: float, constant_imp_per_kwh: float) -> float:
    """Time between meter pulses at `power_w`, s."""
    return 3.6e6 / (abs(power_w) * constant_imp_per_kwh)


def pulses_for_gate(power_w: float, constant_imp_per_kwh: float, min_gate_s: float = MIN_GATE_S) -> int:
    """Meter pulses N to gate on so one reading lasts at least `min_gate_s`: ceil(T_min / T_pulse), >= 1.

    The sign of `power_w` (import or export) does not matter; zero, a non-finite number or a constant or gate
    time that is not positive is a ValueError naming it.
    """
    for name, value in (("power_w", abs(power_w)), ("constant_imp_per_kwh", constant_imp_per_kwh),
                        ("min_gate_s", min_gate_s)):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} = {value!r}: must be a positive number")
    # An exact ratio can land a hair above an integer in binary (3.0000000000000004); that must not
    # cost a whole extra pulse.
    return max(1, math.ceil(min_gate_s / pulse_period_s(power_w, constant_imp_per_kwh) * (1.0 - 1e-12)))


def measure_errors(bench: Bench, positions: Sequence[Position], *, power_w: float, readings: int = 2,
                   min_gate_s: float = MIN_GATE_S) -> dict[int, list[float]]:
    """Arm every position's error calculator together, `readings` times; errors (%) by position index.

    A position whose meter gives no reading within three times the expected gate time gets NaN for
    that reading (it fails its own records) while the other positions carry on, as on a real rack.
    A reading the reference standard lost (it restarted, a calculator went idle, its error queue reported
    device trouble) is a bench fault, never the meter's: it is taken again (configured afresh after a
    restart) within the bench's retry budget (BenchFault after).
    """
    constant = bench.meter.constant_imp_per_kwh
    pulses = pulses_for_gate(power_w, constant, min_gate_s)
    expected_s = (pulses + 1) * pulse_period_s(power_w, constant)
    configured = False

    def one_reading() -> dict[int, float]:
        nonlocal configured
        if not configured:
            for p in positions:
                p.calculator.configure(constant_imp_per_kwh=constant, pulses=pulses)
            configured = True
        for p in positions:
            p.calculator.start()
        bench.clock.sleep(expected_s)
        pending = _Pending(list(positions))
        bench.clock.wait_until(pending.all_done, timeout_s=2 * expected_s + 1.0, poll_s=min(1.0, expected_s / 10))
        for p in pending.positions:
            p.calculator.abort()
        idle = list(pending.idle)
        values: dict[int, float] = {}
        for p in positions:
            if p in pending.positions:
                values[p.index] = math.nan
                continue
            try:
                values[p.index] = p.calculator.error_pct()
            except BenchFault:
                raise
            except InstrumentError:
                if p.calculator.state() is not CalculatorState.IDLE:
                    raise
                idle.append(p)  # the reading vanished between DONE and reading it: the reference restarted
        try:
            _check_reference(bench, f"an error gate at {power_w:g} W", idle)
        except ReferenceRestarted:
            configured = False
            raise
        return values

    results: dict[int, list[float]] = {p.index: [] for p in positions}
    for _ in range(readings):
        values = _retry(bench).run(_who(bench), f"error reading at {power_w:g} W", one_reading,
                                   transient=is_link_problem)
        for p in positions:
            results[p.index].append(values[p.index])
    return results


def _retry(bench: Bench) -> RetryPolicy:
    return bench.retry if bench.retry is not None else RetryPolicy(bench.clock)


def _who(bench: Bench) -> str:
    return f"reference ({bench.reference.resource})"


def _check_reference(bench: Bench, during: str, idle: Sequence[Position] = ()) -> None:
    """ReferenceRestarted when the reference standard restarted or dropped a calculator during `during`."""
    if bench.reference.restarted():
        raise ReferenceRestarted(f"{bench.reference.resource}: the reference standard restarted during {during} "
                                 "(its calculators and settings were lost)")
    if idle:
        channels = ", ".join(str(p.calculator.channel) for p in idle)
        raise ReferenceRestarted(f"{bench.reference.resource}: error calculator(s) {channels} went idle during "
                                 f"{during} although armed")


@dataclass
class _Pending:
    """Positions whose error calculator has not finished yet (and those found idle: the gate was lost)."""

    positions: list[Position]
    idle: list[Position] = field(default_factory=list)

    def all_done(self) -> bool:
        states = {p.index: p.calculator.state() for p in self.positions}
        self.positions = [p for p in self.positions if states[p.index] is not CalculatorState.DONE]
        self.idle = [p for p in self.positions if states[p.index] is CalculatorState.IDLE]
        return not self.positions or bool(self.idle)


def count_pulses(bench: Bench, positions: Sequence[Position], duration_s: float) -> dict[int, int]:
    """Meter pulses counted on every position over `duration_s` of bench time (counted again when the
    reference standard restarted meanwhile: a bench fault, within the bench's retry budget)."""
    def once() -> dict[int, int]:
        counts = _count_once(bench, positions, duration_s)
        _check_reference(bench, f"a {duration_s:g} s pulse count")
        return counts

    return _retry(bench).run(_who(bench), f"pulse count over {duration_s:g} s", once, transient=is_link_problem)


def _count_once(bench: Bench, positions: Sequence[Position], duration_s: float) -> dict[int, int]:
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
    counts = _count_once(bench, positions, duration_s)
    bench.reference.stop_energy()
    energy_wh = bench.reference.energy_wh()
    # A dose cannot be given again without moving the meters' registers: a restart fails the point instead.
    _check_reference(bench, f"an energy dose of {energy_wh:g} Wh")
    return counts, energy_wh
