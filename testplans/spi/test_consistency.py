"""The metering chip's values agree with the bench: Vrms, Irms, active power and frequency with the
reference standard, the energy register with the reference's energy over a dose, and the values the
management MCU reads off the bus with what the source delivers."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from drivers.dlt645 import data_item
from drivers.dlt645.link import MeterLink
from drivers.errors import RigError
from drivers.reference import ReferenceReading
from drivers.spi.link import ChipLink, ChipReadings
from drivers.spi.master import SpiMaster
from drivers.spi.sniffer import SpiSniffer
from rig.bench import Bench, Position
from rig.procedures import LoadPoint, RackCache, energise
from testplans.specs import accuracy as accuracy_spec
from testplans.spi import spec
from testplans.spi.helpers import deviation_pct, power_up_capture, powered, rack_readings

pytestmark = pytest.mark.plan


def test_chip_readings_agree_with_reference(bench: Bench, rack: RackCache, position: Position, chip: ChipLink,
                                            master: SpiMaster, record) -> None:
    """At Un, Ib, PF 1 the chip's Vrms, Irms, power and frequency agree with the reference standard on average
    over spec.READINGS readings a second apart, and its single Vrms and Irms readings scatter about the
    reference's (their standard deviation, enough readings to tell 1.1x the noise limit from 0.8x) within the
    noise limits."""
    readings = rack_readings(bench, rack)
    chip_values, reference_values = readings.of(position), readings.reference
    n = len(chip_values)
    mean = statistics.fmean

    def deviations(of_chip: Callable[[ChipReadings], float],
                   of_reference: Callable[[ReferenceReading], float]) -> list[float]:
        return [deviation_pct(of_chip(c), of_reference(r)) for c, r in zip(chip_values, reference_values, strict=True)]

    voltage = deviations(lambda c: c.voltage_v, lambda r: r.voltage_v)
    current = deviations(lambda c: c.current_a, lambda r: r.current_a)
    power = deviation_pct(mean([c.power_w for c in chip_values]), mean([r.power_w for r in reference_values]))
    frequency = mean([c.frequency_hz for c in chip_values]) - mean([r.frequency_hz for r in reference_values])
    power_limit = accuracy_spec.error_limit_pct(bench.meter, bench.meter.ib_a, accuracy_spec.power_factor("1"))
    for quantity, value, unit, requirement in (
        ("chip Vrms vs reference", mean(voltage), "%", spec.VOLTAGE_TOLERANCE),
        ("chip Irms vs reference", mean(current), "%", spec.CURRENT_TOLERANCE),
        ("chip frequency vs reference", frequency, "Hz", spec.FREQUENCY_TOLERANCE),
    ):
        record(quantity, value, unit, low=-requirement.value, high=requirement.value, position=position,
               source=requirement.source, readings=n)
    record("chip active power vs reference", power, "%", low=-power_limit.value_pct, high=power_limit.value_pct,
           position=position, source=power_limit.source, readings=n)
    for quantity, values, requirement in (("chip Vrms noise (standard deviation of single readings vs reference)",
                                           voltage, spec.VOLTAGE_NOISE),
                                          ("chip Irms noise (standard deviation of single readings vs reference)",
                                           current, spec.CURRENT_NOISE)):
        record(quantity, statistics.stdev(values), "%", low=0.0, high=requirement.value, position=position,
               source=requirement.source, readings=n)


@dataclass
class EnergyDose:
    """Every position's energy-register increase over one dose, and the reference's energy."""

    reference_wh: float = math.nan
    counts: dict[int, int] = field(default_factory=dict)
    uart_kwh: dict[int, float] = field(default_factory=dict)  # DL/T 645 forward energy increase
    errors: dict[int, RigError] = field(default_factory=dict)
    uart_errors: dict[int, RigError] = field(default_factory=dict)


def _read_uart_energy(dose: EnergyDose, index: int, link: MeterLink) -> float | None:
    try:
        return link.read_number(spec.UART_ENERGY_DI)
    except RigError as exc:  # one meter not answering must not cost the others their dose
        dose.uart_errors[index] = exc
        return None


def _energy_dose(bench: Bench, rack: RackCache) -> EnergyDose:
    """At Imax, PF 1: EnergyP of every position before and after enough energy for the dose's pulses."""

    def measure() -> EnergyDose:
        meter = bench.meter
        point = LoadPoint(voltage_v=meter.un_v, current_a=meter.imax_a)
        energise(bench, point)
        masters = {p.index: p.spi.master for p in bench.positions if p.spi is not None and p.spi.master}
        links = {p.index: link for p in bench.positions if (link := getattr(p, "link", None)) is not None}
        dose = EnergyDose()
        # The DL/T 645 reads take bench time: they frame the chip reads, in the same order at both ends.
        uart_start = {i: _read_uart_energy(dose, i, link) for i, link in links.items()}
        start: dict[int, int] = {}
        for index, master in masters.items():
            try:
                start[index] = master.read("EnergyP")
            except RigError as exc:
                dose.errors[index] = exc
        duration_s = spec.ENERGY_DOSE_PULSES / meter.constant_imp_per_kwh * 3.6e6 / point.active_power_w
        bench.reference.start_energy()
        bench.clock.sleep(duration_s)
        bench.reference.stop_energy()
        dose.reference_wh = bench.reference.energy_wh()
        for index in start:
            master = masters[index]
            wrap = master.profile.register("EnergyP").max_value + 1
            try:
                dose.counts[index] = (master.read("EnergyP") - start[index]) % wrap
            except RigError as exc:
                dose.errors[index] = exc
        for index, link in links.items():
            before = uart_start[index]
            after = _read_uart_energy(dose, index, link) if before is not None else None
            if before is not None and after is not None:
                dose.uart_kwh[index] = after - before
        return dose

    return rack.cached("spi: energy dose", measure)


def test_chip_energy_agrees_with_reference(bench: Bench, rack: RackCache, position: Position, chip: ChipLink,
                                           master: SpiMaster, record) -> None:
    """Over a dose at Imax, PF 1 the chip's energy register counts the reference's energy within the
    class's error limit (the dose is long enough that one count is 0.1 % of it)."""
    dose = _energy_dose(bench, rack)
    if position.index in dose.errors:
        raise dose.errors[position.index]
    count = dose.counts[position.index]
    chip_wh = chip.scaling.energy_kwh(count) * 1000.0
    limit = accuracy_spec.error_limit_pct(bench.meter, bench.meter.imax_a, accuracy_spec.power_factor("1"))
    record("chip energy register vs reference over a dose", deviation_pct(chip_wh, dose.reference_wh), "%",
           low=-limit.value_pct, high=limit.value_pct, position=position, counts=count,
           reference_wh=dose.reference_wh, source=limit.source)


def test_mcu_readings_agree_with_reference(bench: Bench, rack: RackCache, position: Position, chip: ChipLink,
                                           sniffer: SpiSniffer, record) -> None:
    """The Vrms, Irms and power the MCU last read off the bus (as sniffed) agree with the reference."""
    capture = power_up_capture(bench, rack)
    bus = capture.of(position)
    reference = capture.reference
    scaling = chip.scaling

    def last(name: str) -> float:
        reads = bus.reads(name)
        return float(reads[-1][1]) if reads else math.nan

    hfconst_writes = bus.writes("HFConst")
    if hfconst_writes:
        power = scaling.power_w(int(last("PowerPA")), hfconst_writes[-1][1]) if bus.reads("PowerPA") else math.nan
    else:
        power = math.nan  # without the MCU's HFConst the power register cannot be scaled
    voltage = deviation_pct(scaling.voltage_v(int(last("URMS"))) if bus.reads("URMS") else math.nan,
                            reference.voltage_v)
    current = deviation_pct(scaling.current_a(int(last("IARMS"))) if bus.reads("IARMS") else math.nan,
                            reference.current_a)
    power_limit = accuracy_spec.error_limit_pct(bench.meter, bench.meter.ib_a, accuracy_spec.power_factor("1"))
    record("MCU-read Vrms vs reference", voltage, "%", low=-spec.VOLTAGE_TOLERANCE.value,
           high=spec.VOLTAGE_TOLERANCE.value, position=position, source=spec.VOLTAGE_TOLERANCE.source)
    record("MCU-read Irms vs reference", current, "%", low=-spec.CURRENT_TOLERANCE.value,
           high=spec.CURRENT_TOLERANCE.value, position=position, source=spec.CURRENT_TOLERANCE.source)
    record("MCU-read active power vs reference", deviation_pct(power, reference.power_w), "%",
           low=-power_limit.value_pct, high=power_limit.value_pct, position=position,
           hfconst_from_bus=bool(hfconst_writes), source=power_limit.source)


def test_chip_agrees_with_the_meters_dlt645_values(bench: Bench, rack: RackCache, position: Position,
                                                  chip: ChipLink, master: SpiMaster, uart: MeterLink,
                                                  record) -> None:
    """What the meter reports over DL/T 645 (Vrms, Irms, power, and energy over the dose) is what its chip
    measures, within the same tolerances as against the reference, plus the display's last digits."""
    dose = _energy_dose(bench, rack)
    powered(bench, rack)
    readings = chip.readings()
    voltage = uart.read_number(spec.UART_VOLTAGE_DI)
    current = uart.read_number(spec.UART_CURRENT_DI)
    power_w = uart.read_number(spec.UART_POWER_DI) * 1000.0
    power_limit = accuracy_spec.error_limit_pct(bench.meter, bench.meter.ib_a, accuracy_spec.power_factor("1"))
    record("DL/T 645 Vrms vs chip", deviation_pct(voltage, readings.voltage_v), "%",
           low=-spec.VOLTAGE_TOLERANCE.value, high=spec.VOLTAGE_TOLERANCE.value, position=position)
    record("DL/T 645 Irms vs chip", deviation_pct(current, readings.current_a), "%",
           low=-spec.CURRENT_TOLERANCE.value, high=spec.CURRENT_TOLERANCE.value, position=position)
    record("DL/T 645 active power vs chip", deviation_pct(power_w, readings.power_w), "%",
           low=-power_limit.value_pct, high=power_limit.value_pct, position=position)
    for errors in (dose.errors, dose.uart_errors):
        if position.index in errors:
            raise errors[position.index]
    chip_kwh = chip.scaling.energy_kwh(dose.counts[position.index])
    digit_kwh = 10.0 ** -data_item(spec.UART_ENERGY_DI).format.decimals
    energy_limit = accuracy_spec.error_limit_pct(bench.meter, bench.meter.imax_a, accuracy_spec.power_factor("1"))
    tolerance = energy_limit.value_pct + 2 * digit_kwh / chip_kwh * 100.0
    record("DL/T 645 energy increase vs chip over the dose", deviation_pct(dose.uart_kwh[position.index], chip_kwh),
           "%", low=-tolerance, high=tolerance, position=position, uart_kwh=dose.uart_kwh[position.index],
           chip_kwh=chip_kwh, display_digit_kwh=digit_kwh)
