"""RTC on mains: the meter's daily error against the bench clock over a day of bench time with the chamber
holding the reference temperature, and over a gate at the cold end of the operating range (what the RTC's
temperature compensation leaves). Each tick of the meter's seconds is timed to a few milliseconds, so the
whole-second time reads of DL/T 645 do not limit the result. Rack-wide: one gate serves every position."""

from __future__ import annotations

import pytest

from drivers.chamber import ClimateChamber
from rig.bench import Bench, Position
from rig.procedures import RackCache
from testplans.meter_clock import daily_error_s, time_tick
from testplans.power.helpers import PerPosition, each, mains_on, not_answering, wait_answering
from testplans.rtc import spec
from testplans.temperature import spec as temperature_spec
from testplans.temperature.helpers import reach_and_soak

pytestmark = pytest.mark.plan


def _gate(bench: Bench, rack: RackCache, gate_s: float) -> dict[int, PerPosition]:
    """Every meter on mains (no current) and answering; a tick timed on each, the gate, a tick again."""
    results: dict[int, PerPosition] = {}
    positions = bench.positions
    mains_on(bench, rack)
    not_answering(results, positions, wait_answering(bench, positions), "on mains before the gate")
    each(positions, results, "timing the clock before the gate", lambda p, link: {"first": time_tick(bench, link)})
    bench.clock.sleep(gate_s)
    each(positions, results, "timing the clock after the gate", lambda p, link: {"second": time_tick(bench, link)})
    return results


def _at_reference(bench: Bench, chamber: ClimateChamber, rack: RackCache) -> dict[int, PerPosition]:
    reach_and_soak(bench, chamber, rack, spec.REFERENCE_C)
    return _gate(bench, rack, spec.REFERENCE_GATE_S)


def _at_cold_end(bench: Bench, chamber: ClimateChamber, rack: RackCache) -> dict[int, PerPosition]:
    reach_and_soak(bench, chamber, rack, spec.COMPENSATION_C)
    try:
        return _gate(bench, rack, spec.COMPENSATION_GATE_S)
    finally:
        reach_and_soak(bench, chamber, rack, temperature_spec.REFERENCE_C)
        mains_on(bench, rack)


def _record_rate(record, position: Position, result: PerPosition, what: str, limit, **detail: object) -> None:
    first, second = result.get("first"), result.get("second")
    record(what, round(daily_error_s(first, second), 4), limit.unit, low=limit.low, high=limit.high,
           position=position, source=limit.source, check=limit.check, gate_s=round(second.at_s - first.at_s, 1),
           offset_before_s=round(first.offset_s, 4), offset_after_s=round(second.offset_s, 4),
           tick_widths_s=(round(first.width_s, 4), round(second.width_s, 4)), **detail)


def test_daily_error_at_reference_temperature(bench: Bench, chamber: ClimateChamber, rack: RackCache,
                                              position: Position, record) -> None:
    """On mains at 23 °C the meter's clock gains or loses no more than the limit over a day of bench time."""
    result = rack.cached(("rtc", "reference"), lambda: _at_reference(bench, chamber, rack))[position.index]
    _record_rate(record, position, result, f"RTC daily error on mains at {spec.REFERENCE_C:g} °C (meter minus bench)",
                 spec.DAILY_AT_REFERENCE)


def test_daily_error_at_cold_end(bench: Bench, chamber: ClimateChamber, rack: RackCache, position: Position,
                                 record) -> None:
    """On mains at the cold end of the operating range (after the soak) the clock's daily error stays within
    the limit over temperature: the RTC's temperature compensation works."""
    result = rack.cached(("rtc", "cold"), lambda: _at_cold_end(bench, chamber, rack))[position.index]
    _record_rate(record, position, result,
                 f"RTC daily error on mains at {spec.COMPENSATION_C:g} °C (meter minus bench)",
                 spec.DAILY_OVER_TEMPERATURE, method=spec.COMPENSATION_SOURCE)
