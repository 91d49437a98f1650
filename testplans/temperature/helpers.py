"""Procedures of the temperature plans: the bench's climate chamber as a fixture, a temperature reached and
soaked at (bench time), and the rack-wide sweep over the operating range (every position measured at once).

A rack measures once for every position: the first position's item runs the sweep (`rack.cached`) and each
position reads its own result; a position whose meter stops answering gets its problem in its own result.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from drivers.chamber import ClimateChamber
from drivers.errors import BenchFault, RigError
from rig.bench import Bench
from rig.chamber import open_chamber
from rig.procedures import LoadPoint, RackCache, energise, measure_errors
from testplans.power.helpers import PerPosition
from testplans.temperature import spec

NO_CHAMBER = ("the bench file names no climate chamber (instruments: a 'role: chamber' entry, e.g. driver "
              "watlow-f4 with its Modbus TCP resource; resource twin on the twin)")


def chamber_fixture(bench: Bench) -> Iterator[ClimateChamber]:
    """The bench's climate chamber for a plan session; back at the reference temperature afterwards."""
    chamber = open_chamber(bench)
    if chamber is None:
        pytest.skip(NO_CHAMBER)
    try:
        chamber.start()
        yield chamber
    finally:
        try:
            chamber.set_temperature(spec.REFERENCE_C)  # never leave the meters at an extreme
        finally:
            chamber.close()


def reach_and_soak(bench: Bench, chamber: ClimateChamber, rack: RackCache, temperature_c: float) -> None:
    """Source off (the meters soak de-energised), set the chamber, wait (bench time) until its air is stable
    there, soak, then the meters on mains at Un and Ib, PF 1 for their warm-up. A chamber that never gets
    there is a bench fault, not the meter's."""
    soak = spec.SOAK
    bench.source.output_off()
    rack.forget_load()
    chamber.set_temperature(temperature_c)
    if not chamber.wait_stable(temperature_c, band_k=soak.band_k, hold_s=soak.hold_s,
                               timeout_s=soak.reach_timeout_s):
        raise BenchFault(f"the climate chamber did not hold {temperature_c:g} ± {soak.band_k:g} °C for "
                         f"{soak.hold_s:g} s within {soak.reach_timeout_s:g} s (it reads {chamber.temperature_c():g} "
                         "°C)", instrument="chamber", what=f"reach {temperature_c:g} °C", attempts=1)
    bench.clock.sleep(soak.soak_s)
    energise(bench, LoadPoint(voltage_v=bench.meter.un_v, current_a=bench.meter.ib_a), settle_s=soak.warm_up_s)


def air_c(bench: Bench, chamber: ClimateChamber) -> float:
    """The chamber's air temperature: reads a second apart, averaged (the control loop swings the air)."""
    total = 0.0
    for _ in range(spec.AIR_READS):
        total += chamber.temperature_c()
        bench.clock.sleep(1.0)
    return total / spec.AIR_READS


def sweep(bench: Bench, chamber: ClimateChamber, rack: RackCache) -> dict[int, PerPosition]:
    """At each temperature of the operating range: reach and soak, read each meter's temperature against the
    air, measure every position's error at Ib, PF 1 and 0.5L; then back to the reference temperature."""
    results: dict[int, PerPosition] = {p.index: PerPosition({"errors": {}, "readings": {}}) for p in bench.positions}
    meter = bench.meter
    for temperature in spec.sweep_temperatures():
        reach_and_soak(bench, chamber, rack, temperature)
        air = air_c(bench, chamber)

        for p in bench.positions:  # a meter that does not answer fails its reading, not the sweep
            if p.link is not None:
                try:
                    value: float | str = p.link.read_number(spec.TEMPERATURE)
                except RigError as exc:
                    value = f"{p.name}: reading the meter's temperature at {temperature:g} °C: {exc}"
                results[p.index].values["readings"][temperature] = (value, air)
        for label, phase in spec.POWER_FACTORS.items():
            point = LoadPoint(voltage_v=meter.un_v, current_a=meter.ib_a, phase_deg=phase)
            energise(bench, point)
            errors = measure_errors(bench, bench.positions, power_w=point.active_power_w, readings=spec.READINGS)
            for index, values in errors.items():
                results[index].values["errors"][(temperature, label)] = sum(values) / len(values)
    reach_and_soak(bench, chamber, rack, spec.REFERENCE_C)
    rack.forget_load()
    return results


def coefficient(errors: dict[tuple[float, str], float], bottom: float, top: float, pf: str) -> float:
    """Mean temperature coefficient over [bottom, top] at `pf`, %/K (NaN when a reading is missing)."""
    low, high = errors.get((bottom, pf), math.nan), errors.get((top, pf), math.nan)
    return (high - low) / (top - bottom)
