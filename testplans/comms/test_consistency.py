"""What the meter says over DL/T 645 agrees with what it does: the energy register with its pulses and
the reference standard over a dosed energy, U/I/P/f with the reference, plausible housekeeping values,
and the frames it exchanges with its expansion module (heard through a UART tap) are well formed and
agree with the RS-485 readings."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import pytest

from drivers.dlt645 import BadFrame, Dlt645Frame, decode_value
from drivers.dlt645.link import MeterLink
from drivers.errors import RigError
from rig.bench import Bench, Position
from rig.procedures import LoadPoint, RackCache
from testplans.comms import spec
from testplans.comms.helpers import power_meters
from testplans.specs import accuracy as accuracy_spec
from testplans.transports import TRANSPORT_NAMES, TRANSPORTS, UART, link_of

pytestmark = pytest.mark.plan


@dataclass(frozen=True)
class Dose:
    """One position's view of the dose: register before and after (kWh, None: unreadable), pulses."""

    before_kwh: float | None
    after_kwh: float | None
    pulses: int
    problem: str = ""


def _read_energy(position: Position, transport: str) -> tuple[float | None, str]:
    link = link_of(position, transport)
    if link is None:
        return None, f"no {TRANSPORT_NAMES[transport]} link"
    try:
        return link.read_number(spec.FORWARD_ENERGY), ""
    except RigError as exc:
        return None, str(exc)


def _dose(bench: Bench, rack: RackCache) -> tuple[dict[tuple[int, str], Dose], float]:
    """Every position at once: registers read (over every transport) with no current flowing, then a dose at
    Imax, PF 1, with the reference and every pulse counter running, then the registers again."""
    meter = bench.meter
    power_meters(bench, rack, LoadPoint(voltage_v=meter.un_v, current_a=0.0))
    before = {(p.index, t): _read_energy(p, t) for p in bench.positions for t in TRANSPORTS}
    bench.reference.start_energy()
    for p in bench.positions:
        p.calculator.start_count()
    bench.source.apply(voltage_v=meter.un_v, current_a=meter.imax_a, phase_deg=0.0)
    bench.clock.sleep(spec.ENERGY_DOSE_KWH * 3.6e6 / (meter.un_v * meter.imax_a))
    bench.source.apply(voltage_v=meter.un_v, current_a=0.0, phase_deg=0.0)
    bench.clock.sleep(1.0)  # the last pulses and the register settle with no current
    bench.reference.stop_energy()
    counts = {p.index: p.calculator.pulse_count() for p in bench.positions}
    after = {(p.index, t): _read_energy(p, t) for p in bench.positions for t in TRANSPORTS}
    rack.forget_load()
    doses = {k: Dose(before[k][0], after[k][0], counts[k[0]], before[k][1] or after[k][1]) for k in before}
    return doses, bench.reference.energy_wh()


def test_energy_register_agrees_with_pulses_and_reference(bench: Bench, rack: RackCache, link: MeterLink,
                                                          position: Position, transport: str, record) -> None:
    """Over a dose of about 5 kWh at Imax, PF 1, the forward-energy register read over the link moves as much
    as the pulses say (within one register step and one pulse) and agrees with the reference within the
    class's limit (plus the register's resolution)."""
    meter = bench.meter
    doses, reference_wh = rack.cached("comms energy dose", lambda: _dose(bench, rack))
    dose = doses[(position.index, transport)]
    register_wh = (dose.after_kwh - dose.before_kwh) * 1000.0 if dose.after_kwh is not None and \
        dose.before_kwh is not None else None
    pulses_wh = dose.pulses * 1000.0 / meter.constant_imp_per_kwh
    step_wh = spec.REGISTER_RESOLUTION_KWH * 1000.0
    pulse_wh = 1000.0 / meter.constant_imp_per_kwh
    record("register energy minus pulse energy over the dose", None if register_wh is None else register_wh - pulses_wh,
           "Wh", low=-(step_wh + pulse_wh), high=step_wh + pulse_wh, position=position, register_wh=register_wh,
           pulses=dose.pulses, problem=dose.problem,
           source="one register step (XXXXXX.XX kWh) and one pulse: both count the same energy")
    limit = accuracy_spec.error_limit_pct(meter, meter.imax_a, accuracy_spec.power_factor("1"))
    resolution_pct = step_wh / reference_wh * 100.0 if reference_wh > 0 else math.inf
    error = (register_wh - reference_wh) / reference_wh * 100.0 if register_wh is not None and reference_wh > 0 \
        else None
    record("register energy against the reference", error, "%", low=-(limit.value_pct + resolution_pct),
           high=limit.value_pct + resolution_pct, position=position, reference_wh=reference_wh,
           register_wh=register_wh, limit_source=limit.source, resolution_pct=resolution_pct)


@pytest.mark.parametrize("pf_label", spec.READING_PFS)
def test_readings_agree_with_reference(bench: Bench, rack: RackCache, link: MeterLink, position: Position,
                                       pf_label: str, transport: str, record) -> None:
    """At Un, Ib and the power factor, the voltage, current, active power and frequency read over the link
    agree with the reference standard."""
    meter = bench.meter
    over = TRANSPORT_NAMES[transport]
    pf = accuracy_spec.power_factor(pf_label)
    power_meters(bench, rack, LoadPoint(voltage_v=meter.un_v, current_a=meter.ib_a, phase_deg=pf.angle_deg))
    reference = bench.reference.measure()
    voltage = link.read_number(spec.VOLTAGE_A)
    current = link.read_number(spec.CURRENT_A)
    power_w = link.read_number(spec.TOTAL_POWER) * 1000.0
    frequency = link.read_number(spec.FREQUENCY)
    v, i, f = spec.VOLTAGE_READING, spec.CURRENT_READING, spec.FREQUENCY_READING
    limit = accuracy_spec.error_limit_pct(meter, meter.ib_a, pf)
    for quantity, value, ref, lim_low, lim_high, source in (
        ("voltage", voltage, reference.voltage_v, v.low, v.high, v.source),
        ("current", current, reference.current_a, i.low, i.high, i.source),
        ("active power", power_w, reference.power_w, -limit.value_pct, limit.value_pct, limit.source),
    ):
        deviation = (value - ref) / ref * 100.0 if ref else None
        record(f"{quantity} read over {over} against the reference, PF {pf_label}", deviation, "%", low=lim_low,
               high=lim_high, position=position, meter_value=value, reference=ref, source=source)
    record(f"frequency read over {over} against the reference, PF {pf_label}", frequency - reference.frequency_hz,
           "Hz", low=f.low, high=f.high, position=position, meter_value=frequency, source=f.source)


def test_housekeeping_readings_plausible(link: MeterLink, position: Position, record) -> None:
    """Internal temperature and clock-battery voltage are plausible; the battery-low flag is clear."""
    t, b = spec.TEMPERATURE_RANGE, spec.BATTERY_RANGE
    record("internal temperature", link.read_number(spec.TEMPERATURE), t.unit, low=t.low, high=t.high,
           position=position, source=t.source, check=t.check)
    record("clock battery voltage", link.read_number(spec.BATTERY_VOLTAGE), b.unit, low=b.low, high=b.high,
           position=position, source=b.source)
    status = link.read(spec.STATUS_WORD_1)
    low = int(isinstance(status, int) and bool(status & spec.STATUS1_BATTERY_LOW))
    record("clock battery low flag (status word 1)", low, "", low=0, high=0, position=position)


def test_expansion_link_tap(bench: Bench, rack: RackCache, link: MeterLink, position: Position, transport: str,
                            record) -> None:
    """The frames between the management and the expansion module (tapped): all well formed, every
    request answered by the meter with its own data item, the energy polled never decreases and lies
    between the RS-485 readings before and after, and the polls come on a steady timer."""
    tap = position.tap
    if tap is None:
        pytest.skip(f"{position.name}: the bench file gives no expansion_tap for this position")
    if transport != UART and position.link is not None:
        pytest.skip(f"{position.name}: the tap is checked once, against the readings over the UART")
    meter = bench.meter
    power_meters(bench, rack, LoadPoint(voltage_v=meter.un_v, current_a=meter.imax_a))
    tap.read()  # what came before the window
    noise_before = tap.noise_bytes
    energy_before = link.read_number(spec.FORWARD_ENERGY)
    bench.clock.sleep(spec.TAP_WINDOW_S)
    heard = tap.read()
    energy_after = link.read_number(spec.FORWARD_ENERGY)
    frames = [t.frame for t in heard if isinstance(t.frame, Dlt645Frame)]
    bad = [t.frame.reason for t in heard if isinstance(t.frame, BadFrame)]
    record("malformed frames on the expansion link", len(bad), "frames", low=0, high=0, position=position,
           reasons=bad[:10])
    record("noise bytes on the expansion link", tap.noise_bytes - noise_before, "bytes", low=0, high=0,
           position=position)
    pairs, unanswered = _pairs(frames, position.address)
    record("requests on the expansion link without a matching reply", unanswered, "frames", low=0, high=0,
           position=position)
    energies = [v for di, v in pairs if di == spec.FORWARD_ENERGY and isinstance(v, float | int)]
    record("energy polls heard in the window", len(energies), "polls", low=spec.TAP_MIN_EXCHANGES,
           position=position, window_s=spec.TAP_WINDOW_S)
    decreases = sum(1 for a, b in itertools.pairwise(energies) if b < a)
    outside = sum(1 for e in energies if not energy_before <= e <= energy_after)
    record("energy polls that decrease", decreases, "polls", low=0, high=0, position=position, energies=energies)
    record("energy polls outside the RS-485 readings before and after", outside, "polls", low=0, high=0,
           position=position, before_kwh=energy_before, after_kwh=energy_after)
    times = [v for di, v in pairs if di == spec.TIME]
    seconds = [t.hour * 3600 + t.minute * 60 + t.second for t in times if hasattr(t, "hour")]
    intervals = [b - a for a, b in itertools.pairwise(seconds) if b >= a]
    if len(intervals) >= 2:
        spread = max(intervals) - min(intervals)
        lim = spec.TAP_INTERVAL_SPREAD
        record("spread of the intervals between clock polls", spread, lim.unit, low=lim.low, high=lim.high,
               position=position, intervals_s=intervals, source=lim.source)


def _pairs(frames: list[Dlt645Frame], address: str) -> tuple[list[tuple[int, object]], int]:
    """(DI, value) of every read request answered by the meter with that DI; and how many were not."""
    pairs: list[tuple[int, object]] = []
    unanswered = 0
    pending: Dlt645Frame | None = None
    for frame in frames:
        if not frame.is_reply:
            unanswered += pending is not None
            pending = frame
            continue
        if pending is None or frame.address != address or frame.is_abnormal or \
                frame.function_code != pending.function_code or frame.data[:4] != pending.data[:4]:
            unanswered += pending is not None
            pending = None
            continue
        di = int.from_bytes(frame.data[:4], "little")
        try:
            pairs.append((di, decode_value(di, frame.data[4:])))
        except RigError:
            unanswered += 1
        pending = None
    return pairs, unanswered + (pending is not None)
