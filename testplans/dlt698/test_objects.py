"""The mandatory DL/T 698.45 objects against the standard and the reference: scaler and unit of each measured
object as the standard's catalogue defines them, U/I/P/PF/f against the reference standard, the forward
active energy over a dose against the reference, the communication address and the clock."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from dlt698 import standard

from drivers.dlt698 import Dlt698Link, oad
from drivers.errors import RigError
from rig.bench import Bench, Position
from rig.procedures import LoadPoint, RackCache
from testplans.comms import spec as comms_spec
from testplans.comms.helpers import power_meters
from testplans.dlt698 import spec
from testplans.dlt698.helpers import link698_of, read_scaled
from testplans.specs import accuracy as accuracy_spec
from testplans.transports import TRANSPORT_NAMES, TRANSPORTS

pytestmark = pytest.mark.plan


def test_scalers_and_units_are_the_standards(link698: Dlt698Link, position: Position, record) -> None:
    """Attribute 3 (scaler, unit) of every measured object is what the standard's object catalogue says."""
    for oi in spec.SCALED:
        expected = standard.find_attribute(oad(oi)).scaling
        got = link698.get(oad(oi, 3)).value
        wanted = (expected.scaler, expected.unit)
        actual = (got.scaler, got.unit) if hasattr(got, "scaler") else got
        record(f"{oi:04X} attribute 3 is scaler {expected.scaler}, unit {standard.unit_symbol(expected.unit)}"
               + ("" if actual == wanted else f": meter says {actual}"), int(actual == wanted), "", low=1, high=1,
               position=position, source=spec.STANDARD + " object catalogue (interface classes 1, 3, 4, 6)")


@pytest.mark.parametrize("pf_label", comms_spec.READING_PFS)
def test_readings_agree_with_reference(bench: Bench, rack: RackCache, link698: Dlt698Link, position: Position,
                                       pf_label: str, record) -> None:
    """At Un, Ib and the power factor: voltage, current, active power, power factor and frequency, in the
    standard's units after its scalers, agree with the reference standard."""
    meter = bench.meter
    pf = accuracy_spec.power_factor(pf_label)
    power_meters(bench, rack, LoadPoint(voltage_v=meter.un_v, current_a=meter.ib_a, phase_deg=pf.angle_deg))
    reference = bench.reference.measure()
    voltage, current, power_w, power_factor, frequency = (
        read_scaled(link698, oi, meter.wiring)
        for oi in (spec.VOLTAGE, spec.CURRENT, spec.ACTIVE_POWER, spec.POWER_FACTOR, spec.FREQUENCY))
    v, i, f = comms_spec.VOLTAGE_READING, comms_spec.CURRENT_READING, comms_spec.FREQUENCY_READING
    limit = accuracy_spec.error_limit_pct(meter, meter.ib_a, pf)
    for quantity, value, ref, low, high, source in (
        ("voltage", voltage, reference.voltage_v, v.low, v.high, v.source),
        ("current", current, reference.current_a, i.low, i.high, i.source),
        ("active power", power_w, reference.power_w, -limit.value_pct, limit.value_pct, limit.source),
    ):
        deviation = (value - ref) / ref * 100.0 if ref else None
        record(f"{quantity} (DL/T 698.45) against the reference, PF {pf_label}", deviation, "%", low=low, high=high,
               position=position, meter_value=value, reference=ref, source=source)
    record(f"power factor (DL/T 698.45) against the reference, PF {pf_label}", power_factor - reference.power_factor,
           "", low=-0.01, high=0.01, position=position, meter_value=power_factor,
           source=spec.LAB + ": one count of 0.001 and the class's phase error")
    record(f"frequency (DL/T 698.45) against the reference, PF {pf_label}", frequency - reference.frequency_hz,
           "Hz", low=f.low, high=f.high, position=position, meter_value=frequency, source=f.source)


def _energy(position: Position, transport: str) -> tuple[float | None, str]:
    link = link698_of(position, transport)
    if link is None or not position.config.speaks_698:
        return None, "no DL/T 698.45 link"
    try:
        if link.connected is None:
            link.connect()
        return read_scaled(link, spec.FORWARD_ENERGY), ""
    except RigError as exc:
        return None, str(exc)


def _dose(bench: Bench, rack: RackCache) -> tuple[dict[tuple[int, str], tuple[float | None, float | None, str]],
                                                  float]:
    """Every position at once: 0010 read over every transport, a dose at Imax, PF 1 with the reference
    accumulating, then 0010 again."""
    meter = bench.meter
    power_meters(bench, rack, LoadPoint(voltage_v=meter.un_v, current_a=0.0))
    before = {(p.index, t): _energy(p, t) for p in bench.positions for t in TRANSPORTS}
    bench.reference.start_energy()
    bench.source.apply(voltage_v=meter.un_v, current_a=meter.imax_a, phase_deg=0.0)
    bench.clock.sleep(spec.ENERGY_DOSE_KWH * 3.6e6 / (meter.un_v * meter.imax_a))
    bench.source.apply(voltage_v=meter.un_v, current_a=0.0, phase_deg=0.0)
    bench.clock.sleep(1.0)
    bench.reference.stop_energy()
    after = {(p.index, t): _energy(p, t) for p in bench.positions for t in TRANSPORTS}
    rack.forget_load()
    return {k: (before[k][0], after[k][0], before[k][1] or after[k][1]) for k in before}, bench.reference.energy_wh()


def test_forward_energy_agrees_with_reference(bench: Bench, rack: RackCache, link698: Dlt698Link,
                                              position: Position, transport: str, record) -> None:
    """Over a dose at Imax, PF 1, the forward active energy (0010, total, after its scaler) moves as much as
    the reference measured, within the class's limit plus one register step."""
    meter = bench.meter
    doses, reference_wh = rack.cached("dlt698 energy dose", lambda: _dose(bench, rack))
    before, after, problem = doses[(position.index, transport)]
    register_wh = (after - before) * 1000.0 if after is not None and before is not None else None
    limit = accuracy_spec.error_limit_pct(meter, meter.imax_a, accuracy_spec.power_factor("1"))
    resolution_pct = spec.REGISTER_RESOLUTION_KWH * 1000.0 / reference_wh * 100.0 if reference_wh > 0 else math.inf
    error = (register_wh - reference_wh) / reference_wh * 100.0 if register_wh is not None and reference_wh > 0 \
        else None
    record(f"forward active energy (0010) over {TRANSPORT_NAMES[transport]} against the reference"
           + (f": {problem}" if problem else ""), error, "%", low=-(limit.value_pct + resolution_pct),
           high=limit.value_pct + resolution_pct, position=position, reference_wh=reference_wh,
           register_wh=register_wh, limit_source=limit.source)


def test_address_and_clock(bench: Bench, link698: Dlt698Link, position: Position, record) -> None:
    """4001 is the nameplate address; 4000 is within the DL/T 645 plans' clock window of the bench's calendar."""
    address = link698.get(oad(spec.COMM_ADDRESS)).value
    text = address.hex() if isinstance(address, bytes) else str(address)
    record(f"communication address (4001) is the nameplate's {position.address}"
           + ("" if text == position.address else f": reads {text}"), int(text == position.address), "", low=1,
           high=1, position=position)
    fields = link698.get(oad(spec.DATE_TIME)).value
    shown = dt.datetime(fields[0] << 8 | fields[1], *fields[2:7])
    offset = (shown - bench.clock.datetime_now()).total_seconds()
    limit = comms_spec.CLOCK_OFFSET
    record("meter clock (4000) against the bench's calendar", offset, "s", low=limit.low, high=limit.high,
           position=position, meter_time=shown.isoformat(), source=limit.source)
