"""The meter's harmonic metering over DL/T 645 against the reference standard: its harmonic content readings
(voltage and current, per order) and its fundamental and harmonic energy registers, at the 5th-harmonic
point of the specs (10 % in the voltage, 40 % in the current), every position measured together."""

from __future__ import annotations

import math

import pytest

from drivers.dlt645.link import MeterLink
from drivers.dlt698 import Dlt698Link, oad
from drivers.errors import RigError
from rig.bench import Bench, Position
from rig.procedures import LoadPoint, RackCache, energise
from testplans.harmonics import spec
from testplans.harmonics.helpers import require_analyser, require_generator
from testplans.power.helpers import mains_on
from testplans.specs import accuracy as accuracy_spec

pytestmark = pytest.mark.plan

Readings = dict[int, dict[str, float | None]]


def _read(link: MeterLink | None, di: int) -> float | None:
    if link is None:
        return None
    try:
        return link.read_number(di)
    except RigError:
        return None


def _content(bench: Bench, rack: RackCache) -> tuple[dict[int, tuple[float, float]], Readings]:
    """The reference's content per order and every position's readings, at the 5th-harmonic point."""
    meter = bench.meter
    test = accuracy_spec.influence_test(meter, spec.FIFTH)
    energise(bench, LoadPoint(voltage_v=meter.un_v, current_a=test.current_a, harmonics=spec.fifth_harmonic()))
    rack.forget_load()
    reference = {}
    for order in spec.CONTENT_ORDERS:
        content = bench.reference.harmonic_content(order)
        reference[order] = (content.voltage_pct, content.current_pct)
    readings: Readings = {}
    for p in bench.positions:
        readings[p.index] = {}
        for order in spec.CONTENT_ORDERS:
            readings[p.index][f"U{order}"] = _read(p.link, spec.voltage_content(order))
            readings[p.index][f"I{order}"] = _read(p.link, spec.current_content(order))
        link698 = p.link698 if p.config.speaks_698 else None
        for channel, oi in (("U", spec.VOLTAGE_CONTENT_OI), ("I", spec.CURRENT_CONTENT_OI)):
            per_order = _read698(link698, oi)
            for order in spec.CONTENT_ORDERS:
                readings[p.index][f"698 {channel}{order}"] = per_order.get(order)
    return reference, readings


def _read698(link: Dlt698Link | None, oi: int) -> dict[int, float]:
    """Phase A's content per order from a DL/T 698.45 content object (empty: unreadable)."""
    if link is None:
        return {}
    try:
        if link.connected is None:
            link.connect()
        phase_a = link.get(oad(oi)).value[0].value
        return {spec.FIRST_CONTENT_ORDER + i: v.as_uint16() / 100.0 for i, v in enumerate(phase_a)}
    except (RigError, IndexError, TypeError, ValueError):
        return {}


def _record_content(record, position: Position, readings: Readings, reference: dict[int, tuple[float, float]],
                    prefix: str, over: str) -> None:
    tolerance = spec.CONTENT_TOLERANCE_PCT
    for order, (voltage_pct, current_pct) in reference.items():
        for channel, name, ref in (("U", "voltage", voltage_pct), ("I", "current", current_pct)):
            value = readings[position.index][f"{prefix}{channel}{order}"]
            record(f"{name} content, order {order}, over {over}, against the reference",
                   None if value is None else value - ref, "%", low=-tolerance, high=tolerance, position=position,
                   meter_pct=value, reference_pct=ref, source=spec.CONTENT_SOURCE)


def test_harmonic_content(bench: Bench, rack: RackCache, link: MeterLink, position: Position, record) -> None:
    """Voltage and current content the meter reports per order agree with the reference's."""
    require_generator(bench, spec.fifth_harmonic())
    require_analyser(bench)
    reference, readings = rack.cached("harmonic content", lambda: _content(bench, rack))
    _record_content(record, position, readings, reference, "", "DL/T 645")


def test_harmonic_content_698(bench: Bench, rack: RackCache, position: Position, record) -> None:
    """The same content read over DL/T 698.45 (objects 200D and 200E) agrees with the reference's."""
    if not position.config.speaks_698 or position.link698 is None:
        pytest.skip(f"{position.name}: the bench file gives no DL/T 698.45 port for this position")
    require_generator(bench, spec.fifth_harmonic())
    require_analyser(bench)
    reference, readings = rack.cached("harmonic content", lambda: _content(bench, rack))
    _record_content(record, position, readings, reference, "698 ", "DL/T 698.45")


def _dose(bench: Bench, rack: RackCache) -> tuple[dict[int, tuple[float | None, float | None]], float, float]:
    """Fundamental and harmonic register advance of every position (kWh, None: unreadable) over a dose at the
    5th-harmonic point at Imax, and the reference's fundamental and harmonic energy, kWh."""
    meter = bench.meter
    mains_on(bench, rack)

    def registers() -> dict[int, tuple[float | None, float | None]]:
        return {p.index: (_read(p.link, spec.FUNDAMENTAL_ENERGY), _read(p.link, spec.HARMONIC_ENERGY))
                for p in bench.positions}

    before = registers()
    point = LoadPoint(voltage_v=meter.un_v, current_a=meter.imax_a, harmonics=spec.fifth_harmonic())
    harmonic_share = 1.0 - math.cos(0.0) / (math.cos(0.0) + sum(h.power_fraction for h in point.harmonics))
    bench.reference.start_energy()
    energise(bench, point, settle_s=1.0)
    fundamental_share = bench.reference.fundamental_power_w() / bench.reference.measure().power_w
    bench.clock.sleep(spec.HARMONIC_DOSE_KWH * 3.6e6 / (point.active_power_w * harmonic_share))
    mains_on(bench, rack)
    bench.clock.sleep(1.0)  # the registers settle with no current
    bench.reference.stop_energy()
    after = registers()
    total_kwh = bench.reference.energy_wh() / 1000.0
    advance = {i: tuple(None if a is None or b is None else a - b for a, b in zip(after[i], before[i]))
               for i in before}
    return advance, total_kwh * fundamental_share, total_kwh * (1.0 - fundamental_share)  # type: ignore[return-value]


def test_fundamental_and_harmonic_energy(bench: Bench, rack: RackCache, link: MeterLink, position: Position,
                                         record) -> None:
    """Over a dose with 4 % of the power in the 5th harmonic, the fundamental energy register agrees with the
    reference's fundamental energy, and the harmonic energy register with its harmonic energy."""
    meter = bench.meter
    require_generator(bench, spec.fifth_harmonic())
    require_analyser(bench)
    advance, fundamental_kwh, harmonic_kwh = rack.cached("harmonic energy dose", lambda: _dose(bench, rack))
    fundamental, harmonic = advance[position.index]
    total_kwh = fundamental_kwh + harmonic_kwh
    step_pct = spec.REGISTER_RESOLUTION_KWH / total_kwh * 100.0
    influence = accuracy_spec.influence_limit_pct(meter, spec.FIFTH, "1").value_pct
    basic = accuracy_spec.error_limit_pct(meter, meter.imax_a, accuracy_spec.power_factor("1")).value_pct
    high = basic + influence + spec.REGISTER_RESOLUTION_KWH / fundamental_kwh * 100.0
    record("fundamental energy register against the reference", None if fundamental is None else
           (fundamental - fundamental_kwh) / fundamental_kwh * 100.0, "%", low=-high, high=high, position=position,
           register_kwh=fundamental, reference_kwh=fundamental_kwh, source=spec.ENERGY_SOURCE, check=True)
    record("harmonic energy register against the reference, share of the total energy", None if harmonic is None
           else (harmonic - harmonic_kwh) / total_kwh * 100.0, "%", low=-(influence + step_pct),
           high=influence + step_pct, position=position, register_kwh=harmonic, reference_kwh=harmonic_kwh,
           source=spec.ENERGY_SOURCE, check=True)
