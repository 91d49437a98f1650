"""Temperature: the mean temperature coefficient of the error over the specified operating range (each 20 K
range, at PF 1 and 0.5L, Ib), and the meter's own temperature reading (DL/T 645 02 80 00 07) against the
climate chamber's air after the soak. One sweep of the chamber serves both and every position."""

from __future__ import annotations

import pytest

from drivers.chamber import ClimateChamber
from rig.bench import Bench, Position
from rig.procedures import RackCache
from testplans.temperature import spec
from testplans.temperature.helpers import coefficient, sweep

pytestmark = pytest.mark.plan

SWEEP = ("temperature", "sweep")


@pytest.mark.parametrize("pf", list(spec.POWER_FACTORS))
def test_mean_temperature_coefficient(bench: Bench, chamber: ClimateChamber, rack: RackCache, position: Position,
                                      pf: str, record) -> None:
    """In each 20 K range of the operating range the error moves by no more than the class's mean temperature
    coefficient per kelvin (Ib, PF `pf`)."""
    result = rack.cached(SWEEP, lambda: sweep(bench, chamber, rack))[position.index]
    errors = result.get("errors")
    limit = spec.coefficient_limit(bench.meter, pf)
    for bottom, top in spec.ranges():
        for at in (bottom, top):
            record(f"error at {at:g} °C, Ib, PF {pf}", round(errors.get((at, pf), float("nan")), 4), "%",
                   position=position)
        record(f"mean temperature coefficient {bottom:g}..{top:g} °C, PF {pf}",
               round(coefficient(errors, bottom, top, pf), 5), limit.unit, low=limit.low, high=limit.high,
               position=position, source=f"{limit.source}; {spec.RANGE_SOURCE}", check=limit.check,
               soak_s=spec.SOAK.soak_s)


def test_temperature_reading_against_chamber(bench: Bench, chamber: ClimateChamber, rack: RackCache,
                                             position: Position, record) -> None:
    """At each temperature of the sweep the meter's own temperature reading is within the limit of the
    chamber's air after the soak."""
    result = rack.cached(SWEEP, lambda: sweep(bench, chamber, rack))[position.index]
    limit = spec.TEMPERATURE_READING
    readings = result.get("readings")
    if not readings:
        pytest.skip(f"{position.name}: no DL/T 645 link to read the meter's temperature")
    for at, (meter_c, air_c) in sorted(readings.items()):
        if isinstance(meter_c, str):  # the meter did not answer
            record(meter_c, None, limit.unit, low=limit.low, high=limit.high, position=position)
            continue
        record(f"meter temperature minus chamber air at {at:g} °C", round(meter_c - air_c, 2), limit.unit,
               low=limit.low, high=limit.high, position=position, source=limit.source, check=limit.check,
               meter_c=meter_c, chamber_c=round(air_c, 2))
