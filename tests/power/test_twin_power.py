"""The twin meter's power side on its own (no servers): hold-up, power-down detection, the start-up,
power-down events, the RTC on the battery over long outages in closed form, the battery (drain, voltage,
replacement, low alarm with hysteresis), and the defect knobs acting where they should."""

from __future__ import annotations

import datetime as dt
import random
import time
from typing import Any

import pytest

from drivers.dlt645 import STATUS1_CLOCK_BATTERY_LOW, encode_value
from rig.config import MeteringKnobs, PowerKnobs, UartKnobs, load_bench
from rig.operator import Question
from rig.twin.management import ManagementModule
from rig.twin.meter import MeteringModule
from rig.twin.power import ALARM_HYSTERESIS_V, BATTERY_SAMPLE_S, DISPLAY_BATTERY_LOW, MeterPower
from rig.twin.provider import TwinOperator
from rig.twin.runtime import Twin
from rig.twin.world import World

METER = load_bench().meter
ADDRESS = "000000000001"
COUNT, RECORD_1, RECORD_2 = 0x03110000, 0x03110001, 0x03110002
BATTERY_V, BATTERY_MIN, STATUS_1 = 0x02800008, 0x0280000A, 0x04000501


class Meter:
    """One twin meter's metering and management modules with its power side, on a World of its own."""

    def __init__(self, **knobs: Any) -> None:
        self.world = World(seed=1)
        self.metering = MeteringModule(METER, MeteringKnobs(noise_pct=0.0), random.Random(1))
        self.management = ManagementModule(METER, UartKnobs(), ADDRESS, self.metering, self.world, random.Random(2))
        self.power = MeterPower(METER, PowerKnobs(**knobs), self.metering, self.management.rtc, self.world,
                                random.Random(3))
        self.management.attach_power(self.power)
        self.metering.dip_power_w = self.power.knobs.counts_during_dip
        self.world.models += [self.management, self.metering]
        self.world.set_point.voltage_v = METER.un_v
        self.world.set_point.frequency_hz = 50.0
        self.mains(True)
        self.advance(METER.start_up_time_s + 1.0)

    def mains(self, on: bool) -> None:
        self.world.output_on = on

    def advance(self, seconds: float) -> None:
        self.world.advance(seconds)

    def read(self, di: int) -> Any:
        value = self.management.items[di](self.world.time_s)
        encode_value(di, value)  # every value fits its data format
        return value

    @property
    def answering(self) -> bool:
        return self.management.answering(self.world.time_s)

    def meter_time(self, at_s: float | None = None) -> dt.datetime:
        return self.management.rtc.read(self.world.time_s if at_s is None else at_s)

    def outage(self, seconds: float) -> tuple[float, float]:
        off = self.world.time_s
        self.mains(False)
        self.advance(seconds)
        on = self.world.time_s
        self.mains(True)
        return off, on


def test_first_power_up_logs_the_storage_outage_and_the_meter_answers_within_its_start_up_time() -> None:
    meter = Meter()
    count, (start, end) = meter.read(COUNT), meter.read(RECORD_1)
    assert count >= 2 and start < meter.world.epoch - dt.timedelta(days=2) < end
    assert meter.power.boot_s < METER.start_up_time_s, "healthy: within the nameplate's start-up time"
    assert Meter().read(COUNT) == count, "same seeds, same meter"


def test_one_cycle_interruption_rides_through_on_the_hold_up() -> None:
    meter = Meter()
    count = meter.read(COUNT)
    meter.outage(0.02)
    meter.advance(0.001)
    assert meter.answering and meter.power.state == "running"
    assert meter.read(COUNT) == count


def test_one_second_outage_resets_the_mcu_and_it_answers_after_its_boot() -> None:
    meter = Meter()
    count = meter.read(COUNT)
    meter.mains(False)
    meter.advance(0.1)
    assert not meter.answering, "power-down is detected at once: the MCU stops talking"
    meter.advance(0.9)
    meter.mains(True)
    meter.advance(0.5)
    assert not meter.answering and meter.power.state == "booting"
    meter.advance(meter.power.boot_s)
    assert meter.answering
    assert meter.read(COUNT) == count, "1 s is below the shortest logged outage"


def test_logged_outage_has_the_power_down_and_power_up_times() -> None:
    meter = Meter()
    count, newest = meter.read(COUNT), meter.read(RECORD_1)
    off, on = meter.outage(90.0)
    meter.advance(METER.start_up_time_s)
    assert meter.read(COUNT) == count + 1
    assert meter.read(RECORD_1) == (meter.meter_time(off), meter.meter_time(on))
    assert meter.read(RECORD_2) == newest


@pytest.mark.parametrize(("knobs", "expect"), [({"no_power_down_event": True}, "nothing"),
                                               ({"event_end_time_wrong": True}, "end at start")])
def test_event_knobs(knobs: dict[str, Any], expect: str) -> None:
    meter = Meter(**knobs)
    count = meter.read(COUNT)
    off, _ = meter.outage(90.0)
    meter.advance(METER.start_up_time_s)
    if expect == "nothing":
        assert meter.read(COUNT) == count
    else:
        assert meter.read(RECORD_1) == (meter.meter_time(off), meter.meter_time(off))


def test_mains_blip_during_the_boot_keeps_one_outage_open() -> None:
    meter = Meter()
    count = meter.read(COUNT)
    off, _ = meter.outage(120.0)
    meter.advance(0.05)  # back for 50 ms: the MCU has not finished booting
    _, on = meter.outage(120.0)
    meter.advance(METER.start_up_time_s)
    assert meter.read(COUNT) == count + 1
    assert meter.read(RECORD_1) == (meter.meter_time(off), meter.meter_time(on))


def test_72h_outage_is_one_step_and_the_rtc_runs_at_its_battery_rate() -> None:
    meter = Meter(rtc_drift_ppm_on_battery=10.0)
    calls = []
    step = meter.power.step
    meter.power.step = lambda *a: (calls.append(a), step(*a))[1]  # type: ignore[method-assign]
    rtc = meter.management.rtc
    offset = rtc.offset_s
    wall = time.perf_counter()
    meter.outage(72 * 3600.0)
    assert time.perf_counter() - wall < 0.5 and len(calls) < 20
    on_battery = 72 * 3600.0 - meter.power.hold_up_s
    assert rtc.offset_s - offset == pytest.approx((meter.power.rtc_battery_ppm - rtc.drift_ppm) * 1e-6 * on_battery)
    assert 9.5 <= meter.power.rtc_battery_ppm <= 10.5
    minutes = meter.read(BATTERY_MIN)
    meter.advance(METER.start_up_time_s)
    assert meter.read(BATTERY_MIN) == minutes, "the battery runs the clock only without mains"
    assert meter.answering


def test_battery_drains_and_a_dead_battery_loses_the_clock_not_the_data() -> None:
    meter = Meter()
    meter.metering.forward_kwh = 123.456
    battery = meter.power.battery
    full = battery.voltage_v()
    meter.outage(3 * 365 * 86400.0)
    assert battery.voltage_v() < full, "three years of sleep current"
    meter.advance(METER.start_up_time_s)
    assert meter.read(0x00010000) == 123.45, "registers are in non-volatile memory"
    battery.used_mah = battery.capacity_mah * 0.994  # nearly flat: it cannot keep the clock for long
    _, on = meter.outage(30 * 86400.0)
    meter.advance(METER.start_up_time_s)
    start, end = meter.read(RECORD_1)
    assert start == end, "the clock restarted from the power-down time"
    assert meter.meter_time() - meter.world.epoch < dt.timedelta(seconds=on - 20 * 86400)
    assert meter.read(0x00010000) == 123.45


def test_battery_change_without_mains_loses_the_clock_with_mains_keeps_it() -> None:
    meter = Meter()
    before = meter.meter_time()
    meter.power.replace_battery("new")
    meter.advance(10.0)
    assert meter.meter_time() - before == dt.timedelta(seconds=10) and meter.answering
    at_power_down = meter.meter_time()
    meter.mains(False)
    meter.advance(300.0)
    assert meter.power.replace_battery("new") > 3.5  # without mains: the holder is empty for a moment
    meter.advance(300.0)
    meter.mains(True)
    meter.advance(METER.start_up_time_s)
    assert abs((meter.meter_time() - at_power_down).total_seconds() - METER.start_up_time_s) <= 1.0, \
        "the 10 min outage is lost: the clock restarted from the power-down time"
    with pytest.raises(ValueError, match="no battery 'AA' in the twin's stock"):
        meter.power.replace_battery("AA")


def test_battery_low_alarm_with_hysteresis_in_the_status_word_and_on_the_display() -> None:
    meter = Meter()
    assert meter.read(STATUS_1) == 0 and meter.read(BATTERY_V) > 3.5
    sequence = (("low", True), ("between", True), ("recovery", False), ("new", False))
    for cell, alarm in sequence:
        volts = meter.power.replace_battery(cell)
        meter.advance(BATTERY_SAMPLE_S + 1.0)
        assert meter.read(BATTERY_V) == pytest.approx(volts, abs=0.03)
        assert bool(meter.read(STATUS_1) & STATUS1_CLOCK_BATTERY_LOW) is alarm, cell
        assert (DISPLAY_BATTERY_LOW in meter.power.display_codes) is alarm
    late = Meter(battery_alarm_threshold_v=1.9)
    late.power.replace_battery("low")
    late.advance(BATTERY_SAMPLE_S + 1.0)
    assert late.read(STATUS_1) == 0, "a threshold set too low misses the low cell"
    assert pytest.approx(0.2) == ALARM_HYSTERESIS_V


def test_battery_current_with_and_without_mains() -> None:
    meter = Meter(battery_drain_ua=40.0)
    assert meter.power.battery_current_ua() < 1.0
    meter.mains(False)
    meter.advance(1.0)
    assert meter.power.battery_current_ua() == pytest.approx(40.0, rel=0.05)


def test_energy_lost_on_power_down_knob() -> None:
    healthy, lossy = Meter(), Meter(energy_lost_on_power_down=0.05)
    for meter in (healthy, lossy):
        meter.metering.forward_kwh = 1.0
        meter.outage(0.02)  # rides through: nothing saved, nothing lost
        meter.outage(5.0)
        meter.advance(METER.start_up_time_s)
    assert healthy.metering.forward_kwh == 1.0
    assert lossy.metering.forward_kwh == pytest.approx(0.95)


def test_counts_during_dip_knob_registers_and_pulses_in_a_dip() -> None:
    for knob, expected_kwh in ((0.0, 0.0), (1000.0, 1000.0 * 60 / 3.6e6)):
        meter = Meter(counts_during_dip=knob)
        meter.world.set_point.voltage_v = 0.5 * METER.un_v
        meter.advance(60.0)
        assert meter.metering.forward_kwh == pytest.approx(expected_kwh)
        assert meter.metering.pulses == int(expected_kwh * METER.constant_imp_per_kwh)


def test_slow_restart_knob_is_the_time_to_answer_when_longer_than_the_boot() -> None:
    meter = Meter(slow_restart_s=8.0)
    meter.outage(2.0)
    meter.advance(7.9)
    assert not meter.answering
    meter.advance(0.2)
    assert meter.answering
    quick = Meter(slow_restart_s=0.1)
    quick.outage(2.0)
    quick.advance(quick.power.boot_s - 0.1)
    assert not quick.answering, "shorter than the meter's own boot: the boot counts"
    quick.advance(0.2)
    assert quick.answering


def test_the_twin_operator_changes_the_battery_through_the_control_channel() -> None:
    twin = Twin(load_bench())
    twin.world.output_on = True
    twin.world.set_point.voltage_v = METER.un_v
    twin.world.advance(10.0)
    operator = TwinOperator(twin.control)
    volts = operator.ask(Question("Fit the low cell, enter its voltage", "number", "meter.battery.fit_cell.low",
                                  unit="V", address=ADDRESS))
    assert 2.048 <= float(volts.value) <= 2.052 and volts.by == "twin"
    twin.world.advance(BATTERY_SAMPLE_S + 1.0)
    shown = operator.ask(Question("Err-04 shown?", "confirm", "meter.display.battery_low", address=ADDRESS))
    assert shown.value is True
    assert operator.ask(Question("Replace it", "confirm", "meter.battery.replace", address=ADDRESS)).value is True
    assert twin.control.call("state", {})["meters"][0]["power"]["battery"] == "new"
    assert twin.control.call("replace_battery", {"address": ADDRESS, "cell": "recovery"}) > 2.3
    with pytest.raises(ValueError, match="no meter '999999999999'"):
        twin.control.replace_battery("999999999999")
