"""The clock battery: battery-low (status word 1 bit 2 and the display code) comes below the threshold
and clears only above threshold plus hysteresis; a battery change with mains present loses nothing
(registers, clock, events, no restart); the battery current without mains fits five years on 1.2 Ah.

Steps that need hands at the bench (fit a test cell, change the battery, read a µA meter or the display)
go through the operator; on the twin the twin does them."""

from __future__ import annotations

import pytest

from drivers.dlt645.link import MeterLink
from rig.bench import Bench, Position
from rig.procedures import RackCache
from testplans.power import spec
from testplans.power.helpers import clock_offset_s, mains_on, probe, read_events, read_registers

pytestmark = pytest.mark.plan


def _battery_reading(bench: Bench, link: MeterLink, expected_v: float) -> float:
    """The meter's battery reading once it follows a change to `expected_v` (it measures from time to
    time), or the last reading after `spec.BATTERY_UPDATE_S`."""
    readings: list[float] = []

    def follows() -> bool:
        readings.append(link.read_number(spec.BATTERY_VOLTAGE))
        return abs(readings[-1] - expected_v) <= spec.BATTERY_READING_TOLERANCE_V

    bench.clock.wait_until(follows, timeout_s=spec.BATTERY_UPDATE_S, poll_s=10.0)
    return readings[-1]


def _alarm(link: MeterLink) -> bool:
    return bool(int(link.read_number(spec.STATUS_WORD_1)) & spec.STATUS1_BATTERY_LOW)


def _check_alarm(bench: Bench, link: MeterLink, position: Position, operator, record, what: str, cell_v: float,
                 expected: bool) -> None:
    reading = _battery_reading(bench, link, cell_v)
    limit = spec.BATTERY_READING
    record(f"battery reading with {what} (meter minus DMM)", round(reading - cell_v, 3), limit.unit, low=limit.low,
           high=limit.high, position=position, source=limit.source, reading_v=reading, dmm_v=cell_v)
    record(f"battery-low (status word 1 bit 2) with {what} at {cell_v:.2f} V", float(_alarm(link)), "",
           low=float(expected), high=float(expected), position=position, source=spec.BATTERY_ALARM_SOURCE,
           check=True)
    operator.confirm(f"Does the display of {position.name} show the battery-low code {spec.DISPLAY_BATTERY_LOW}?",
                     topic="meter.display.battery_low", position=position,
                     quantity=f"display shows {spec.DISPLAY_BATTERY_LOW} with {what}", expect=expected)


def test_battery_low_alarm_and_hysteresis(bench: Bench, link: MeterLink, position: Position, operator,
                                          record) -> None:
    """With mains on, a test cell just above 2.10 V raises nothing (an early alarm fails); one just below raises
    battery-low (a late alarm fails); the one just above, inside the 0.20 V hysteresis band, keeps it; one above the
    band clears it; a new battery leaves it clear."""
    threshold, band = spec.BATTERY_ALARM_V, spec.BATTERY_HYSTERESIS_V
    alarm = False
    try:
        for step, cell in enumerate(spec.CELL_SEQUENCE, start=1):
            window = spec.TEST_CELLS[cell]
            volts = operator.number(
                f"Fit the lab's '{cell}' test cell ({window.low:g}..{window.high:g} V) in the battery holder of "
                f"{position.name} with the meter on mains, then enter the cell's voltage measured with the DMM",
                "V", topic=f"meter.battery.fit_cell.{cell}", position=position, quantity=f"test cell '{cell}' (DMM)",
                low=window.low, high=window.high)
            if volts < threshold:
                alarm = True
            elif volts >= threshold + band:
                alarm = False
            _check_alarm(bench, link, position, operator, record, f"the '{cell}' cell (step {step})", volts, alarm)
    finally:
        operator.confirm(f"Fit a new clock battery in {position.name} (mains stays on)", topic="meter.battery.replace",
                         position=position, quantity="new battery fitted")
    new = spec.NEW_BATTERY
    reading = _battery_reading(bench, link, spec.NEW_BATTERY_NOMINAL_V)
    record("battery reading with a new battery", reading, new.unit, low=new.low, high=new.high, position=position,
           source=new.source)
    record("battery-low with a new battery", float(_alarm(link)), "", low=0, high=0, position=position,
           source=spec.BATTERY_ALARM_SOURCE, check=True)


def test_battery_replacement_with_mains_loses_nothing(bench: Bench, link: MeterLink, position: Position, operator,
                                                       record) -> None:
    """Changing the clock battery while the meter is on mains: it keeps answering (no restart), and its
    registers, power-down events and clock are as before."""
    registers = read_registers(link)
    events = read_events(link)
    offset, _ = clock_offset_s(bench, link)
    operator.confirm(f"Replace the clock battery of {position.name} with a new cell while it stays on mains (do not "
                     "switch it off)", topic="meter.battery.replace", position=position, quantity="battery replaced")
    record("meter answers right after the change (no restart)", float(probe(link) is not None), "", low=1, high=1,
           position=position, source=spec.REFERENCE)
    after = read_registers(link)
    unchanged = spec.REGISTERS_UNCHANGED
    for name, value in registers.items():
        record(f"{name}: change across the battery change", round(after[name] - value, 2), unchanged.unit,
               low=unchanged.low, high=unchanged.high, position=position, source=spec.CLOCK_UNMOVED.source)
    count, records = read_events(link)
    record("power-down count: change across the battery change", count - events[0], "", low=0, high=0,
           position=position, source=spec.CLOCK_UNMOVED.source)
    record("power-down record 1 unchanged", float(records[0] == events[1][0]), "", low=1, high=1, position=position)
    moved, _ = clock_offset_s(bench, link)
    limit = spec.CLOCK_UNMOVED
    record("meter clock moved by the battery change", round(moved - offset, 3), limit.unit, low=limit.low,
           high=limit.high, position=position, source=limit.source)


def test_battery_drain_without_mains(bench: Bench, rack: RackCache, link: MeterLink, position: Position, operator,
                                     record) -> None:
    """Without mains the meter draws from its clock battery no more than 1.2 Ah lasts five years
    (a µA meter in series with the battery, read by the operator)."""
    limit = spec.BATTERY_DRAIN
    bench.source.output_off()
    rack.forget_load()
    try:
        bench.clock.sleep(spec.DRAIN_SETTLE_S)
        operator.number(f"Mains is off: read the current of {position.name}'s clock battery on the µA meter in series "
                        "with it (battery holder adapter)", "µA", topic="meter.battery.current_ua", position=position,
                        quantity="battery current without mains", low=limit.low, high=limit.high)
    finally:
        mains_on(bench, rack)
