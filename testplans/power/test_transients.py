"""Voltage dips and short interruptions (IEC 62052-11 / IEC 61000-4-11 as the project reference gives them):
with no current, each source program changes the energy register by no more than the critical value
x = 1e-6·m·Un·Imax kWh, the test output emits no more than the equivalent pulses, and the meter answers
again afterwards. Rack-wide: one program serves every position."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.dlt645.link import MeterLink
from rig.bench import Bench, Position
from rig.procedures import RackCache
from testplans.power import spec
from testplans.power.helpers import PerPosition, after_power_returns, each, mains_on, not_answering, wait_answering

pytestmark = pytest.mark.plan


def _run(bench: Bench, rack: RackCache, case: str) -> dict[int, PerPosition]:
    results: dict[int, PerPosition] = {}
    positions = bench.positions
    mains_on(bench, rack)  # Un, no current
    not_answering(results, positions, wait_answering(bench, positions), "on mains before the program")
    each(positions, results, "register before the program",
         lambda p, link: {"before": link.read_number(spec.FORWARD_ENERGY)})
    for p in positions:
        p.calculator.start_count()
    start = bench.clock.now()
    bench.source.run_transient(spec.DIPS[case].program, voltage_v=bench.meter.un_v,
                               frequency_hz=bench.meter.frequency_hz, clock=bench.clock)
    took = bench.clock.now() - start
    not_answering(results, positions, after_power_returns(bench, positions), "after the program")
    pulses = {p.index: p.calculator.pulse_count() for p in positions}

    def after(p: Position, link: MeterLink) -> dict[str, Any]:
        return {"after": link.read_number(spec.FORWARD_ENERGY), "pulses": pulses[p.index], "took": took}

    each(positions, results, "register after the program", after)
    return results


@pytest.mark.parametrize("case", list(spec.DIPS))
def test_voltage_dips_and_interruptions(bench: Bench, rack: RackCache, position: Position, case: str,
                                        record) -> None:
    """One dips-and-interruptions program at Un with no current: register change within x, pulses within
    x · meter constant."""
    test = spec.DIPS[case]
    result = rack.cached(("power", "dips", case), lambda: _run(bench, rack, case))[position.index]
    x = spec.critical_kwh(bench.meter)
    record(f"{case}: program run time", result.get("took"), "s", position=position,
           program=test.program.name)
    record(f"{case}: forward register change", round(result.get("after") - result.get("before"), 2), "kWh",
           low=-x, high=x, position=position, source=test.source, check=test.check)
    record(f"{case}: pulses emitted", result.get("pulses"), "pulses", low=0, high=spec.critical_pulses(bench.meter),
           position=position, source=test.source, check=test.check)
