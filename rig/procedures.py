"""Bench procedures shared by test plans: energise a load point, measure every position's error at
once (as a rack does), count pulses over a window. In volts, amperes and seconds; no SCPI here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from drivers.errors import InstrumentTimeout
from drivers.reference import CalculatorState
from rig.bench import Bench, Position

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

    A position whose meter gives no pulses within three times the expected gate time raises
    InstrumentTimeout naming it (a meter that does not register fails loudly, not as a number).
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
        if not bench.clock.wait_until(pending.all_done, timeout_s=2 * expected_s + 1.0,
                                      poll_s=min(1.0, expected_s / 10)):
            names = ", ".join(p.name for p in pending.positions)
            for p in pending.positions:
                p.calculator.abort()
            raise InstrumentTimeout(
                f"no error reading from {names} within {3 * expected_s:.0f} s of bench time "
                f"({pulses} pulses expected at {power_w:.1f} W): is the meter registering?"
            )
        for p in positions:
            results[p.index].append(p.calculator.error_pct())
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
