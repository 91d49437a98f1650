"""The twin meter's power side: the supply with its hold-up, power-down detection below 60 % Un, the
power-down snapshot and register freeze, power-down event records, the RTC on the clock battery with its
drift, and the replaceable battery itself (capacity, drain, voltage curve, low alarm with hysteresis).

Twin layer, written from the meter's side: it reads the World's terminals and its own knobs, never the
rig's limits. Stepped by the management module; a step without mains is integrated in closed form, so a
72 h outage is one step and costs microseconds.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from drivers.dlt645 import STATUS1_CLOCK_BATTERY_LOW, Value
from rig.config import MeterType, PowerKnobs
from rig.twin.meter import MIN_OPERATING_VOLTAGE_FRACTION, MeteringModule
from rig.twin.world import Terminals, World

# ---------------------------------------------------------------- the meter's design values (data)

# (depth of discharge, open-circuit voltage V) of a Li-SOCl2 bobbin cell (ER14250 class, 1.2 Ah): flat at
# about 3.6 V for most of its life, then a knee (vendor discharge curves at µA loads).
VOLTAGE_CURVE: Final = ((0.0, 3.67), (0.05, 3.64), (0.50, 3.60), (0.85, 3.54), (0.92, 3.40), (0.96, 3.10),
                        (0.98, 2.70), (0.99, 2.30), (0.995, 2.00), (1.0, 0.0))
NOMINAL_CAPACITY_MAH: Final = 1200.0
SELF_DISCHARGE_PER_YEAR: Final = 0.01  # of the capacity (lithium thionyl chloride at room temperature)
MAINS_LEAKAGE_UA: Final = 0.3  # the backup switch's leakage while mains supplies the RTC
HOLD_UP_S: Final = 0.2  # the supply's capacitors keep the MCU running this long after mains goes
BOOT_FRACTION: Final = (0.45, 0.65)  # the MCU is up after this fraction of the nameplate's start-up time
BATTERY_SAMPLE_S: Final = 60.0  # the MCU measures the battery once a minute while on mains
# Gain error of its battery measurement, ± (uniform, per meter): what remains after the factory calibrates the
# battery input with its other analogue channels (the reading itself resolves 0.01 V).
BATTERY_ADC_SPREAD_PCT: Final = 0.05
ALARM_HYSTERESIS_V: Final = 0.20  # battery-low clears this far above its threshold (vendor value)
RTC_MIN_BATTERY_V: Final = 1.8  # below this the RTC's backup input stops the clock
DEFAULT_MIN_LOGGED_OUTAGE_S: Final = 60.0
EVENT_RECORDS: Final = 10
MAX_COUNT: Final = 999_999  # 3 BCD bytes
DISPLAY_BATTERY_LOW: Final = "Err-04"
# Each meter's crystal around the knob's rate on battery, ±: the factory trims the crystal on mains
# (rig.twin.climate.RTC_TRIM), so on the battery only the supply's pull on the oscillator differs from meter to meter.
RTC_SPREAD_PPM: Final = 0.1
# The twin lab's test cells, open-circuit volts (a battery simulator set to within ±2 mV on the DMM): fitted by the
# operator step. Low sits at the plan's bracket below the vendor's 2.10 V threshold (an alarm that late shows),
# between just above the threshold inside the hysteresis band (an early alarm shows), recovery above the band.
TEST_CELLS_V: Final = {"low": 2.05, "between": 2.15, "recovery": 2.45}
TEST_CELL_SPREAD_V: Final = 0.002
NEW_CELL = "new"


def _voltage(dod: float) -> float:
    """Open-circuit voltage at depth of discharge `dod` (0..1), V."""
    dod = min(max(dod, 0.0), 1.0)
    xs = [d for d, _ in VOLTAGE_CURVE]
    i = max(1, bisect.bisect_left(xs, dod))
    (d0, v0), (d1, v1) = VOLTAGE_CURVE[i - 1], VOLTAGE_CURVE[i]
    return v0 + (v1 - v0) * (dod - d0) / (d1 - d0)


def _dod_at(voltage_v: float) -> float:
    """Depth of discharge where the open-circuit voltage falls to `voltage_v` (the curve inverted)."""
    for (d0, v0), (d1, v1) in itertools.pairwise(VOLTAGE_CURVE):
        if v1 <= voltage_v <= v0:
            return d0 + (d1 - d0) * (v0 - voltage_v) / (v0 - v1)
    return 0.0 if voltage_v > VOLTAGE_CURVE[0][1] else 1.0


@dataclass
class Battery:
    """The clock battery: what it holds, what was taken out of it, and its voltage."""

    label: str
    capacity_mah: float
    used_mah: float = 0.0

    @classmethod
    def new(cls, rng: random.Random) -> Battery:
        """A fresh cell from stock (a little shelf discharge)."""
        capacity = NOMINAL_CAPACITY_MAH * rng.uniform(1.0, 1.08)
        return cls(NEW_CELL, capacity, capacity * rng.uniform(0.005, 0.02))

    @classmethod
    def test_cell(cls, label: str, rng: random.Random) -> Battery:
        """A partly discharged cell of the lab's stock (`TEST_CELLS_V`)."""
        volts = TEST_CELLS_V[label] + rng.uniform(-TEST_CELL_SPREAD_V, TEST_CELL_SPREAD_V)
        capacity = NOMINAL_CAPACITY_MAH
        return cls(label, capacity, capacity * _dod_at(volts))

    @property
    def depth(self) -> float:
        """Depth of discharge, 0..1."""
        return min(1.0, self.used_mah / self.capacity_mah)

    def voltage_v(self) -> float:
        """Open-circuit voltage now, V."""
        return _voltage(self.depth)

    def drain(self, current_ua: float, seconds: float) -> None:
        """Take `current_ua` for `seconds`."""
        self.used_mah = min(self.capacity_mah, self.used_mah + current_ua * seconds / 3.6e6)

    def seconds_until(self, voltage_v: float, current_ua: float) -> float:
        """Seconds at `current_ua` until the voltage falls below `voltage_v` (inf without drain)."""
        left_mah = (_dod_at(voltage_v) - self.depth) * self.capacity_mah
        if left_mah <= 0:
            return 0.0
        return math.inf if current_ua <= 0 else left_mah * 3.6e6 / current_ua


@dataclass(frozen=True)
class PowerDownRecord:
    """One power-down event as the meter logs it: its RTC at power-down and at power-up."""

    start: dt.datetime
    end: dt.datetime


@dataclass
class Outage:
    """A power-down in progress (or a boot not finished yet): what the MCU saved when it began."""

    start_s: float  # bench time
    start_time: dt.datetime  # the meter's clock then
    forward_kwh: float  # the snapshot
    reverse_kwh: float
    end_s: float | None = None  # bench time mains came back (the last time, when it came and went)
    end_time: dt.datetime | None = None
    rtc_lost: bool = False  # the RTC had no supply at some point: it restarts from the snapshot's time


class Rtc(Protocol):
    """What the power side needs of the management module's clock (rig.twin.meter_clock.MeterRtc)."""

    drift_ppm: float
    offset_s: float

    def read(self, now_s: float) -> dt.datetime:
        """The meter's calendar time at bench time `now_s`."""
        ...

    def set(self, moment: dt.datetime, now_s: float) -> None:
        """Set the clock to `moment` at bench time `now_s`."""
        ...


@dataclass
class MeterPower:
    """The power side of one twin meter (see the module docstring)."""

    meter_type: MeterType
    knobs: PowerKnobs
    metering: MeteringModule
    rtc: Rtc  # the management module's clock
    world: World
    rng: random.Random
    state: str = "off"  # off (no supply), booting, running (on mains or riding through on the hold-up)
    mains_lost_at: float | None = None
    ready_at: float | None = None
    outage: Outage | None = None
    count: int = 0
    records: deque[PowerDownRecord] = field(default_factory=lambda: deque(maxlen=EVENT_RECORDS))
    battery: Battery = field(init=False)
    battery_s: float = 0.0  # cumulative time the battery ran the clock, s
    measured_v: float = 0.0  # the MCU's last battery measurement, V
    alarm: bool = False
    next_sample_s: float = math.inf

    def __post_init__(self) -> None:
        rng = self.rng
        self.hold_up_s = HOLD_UP_S * rng.uniform(0.9, 1.1)
        self.boot_s = self.meter_type.start_up_time_s * rng.uniform(*BOOT_FRACTION)
        self.rtc_battery_ppm = self.knobs.rtc_drift_ppm_on_battery + rng.uniform(-RTC_SPREAD_PPM, RTC_SPREAD_PPM)
        self.adc_gain = 1.0 + rng.uniform(-BATTERY_ADC_SPREAD_PCT, BATTERY_ADC_SPREAD_PCT) / 100.0
        self.sleep_ua = self.knobs.battery_drain_ua * rng.uniform(0.97, 1.03)
        self.battery = Battery.new(rng)
        self._factory_history(rng)
        self._sample()

    def _factory_history(self, rng: random.Random) -> None:
        """As delivered: a few power-downs from the factory tests, then switched off and stored; the
        storage is an outage in progress (logged at the first power-up), run on the battery."""
        storage_s = rng.uniform(3.0, 30.0) * 86400.0
        off_s = -storage_s
        tests = rng.randint(1, 4)
        moment = self.rtc.read(off_s) - dt.timedelta(hours=rng.uniform(2.0, 20.0))
        history = []
        for _ in range(tests):
            length = dt.timedelta(seconds=round(rng.uniform(70.0, 900.0)))
            history.append(PowerDownRecord(moment - length, moment))
            moment -= length + dt.timedelta(minutes=rng.uniform(5.0, 60.0))
        self.records.extend(history)  # newest first
        self.count = tests
        self.outage = Outage(off_s, self.rtc.read(off_s), self.metering.forward_kwh, self.metering.reverse_kwh)
        self.mains_lost_at = off_s
        self.battery.drain(self.sleep_ua, storage_s)
        self.battery_s = storage_s

    # ---- stepping

    def mains(self, terminals: Terminals) -> bool:
        """True when the voltage is high enough for the supply (power-down is detected below 60 % Un)."""
        return terminals.voltage_v >= MIN_OPERATING_VOLTAGE_FRACTION * self.meter_type.un_v

    def step(self, t0: float, dt_s: float, terminals: Terminals) -> None:
        """Integrate over [t0, t0 + dt_s] with the terminals constant."""
        if self.mains(terminals):
            if self.mains_lost_at is not None:
                self._mains_back(t0)
            self._on_mains(t0, dt_s)
        else:
            if self.mains_lost_at is None:
                self._mains_gone(t0)
            self._without_mains(t0, dt_s)

    def _mains_gone(self, t: float) -> None:
        """Power-down detected: snapshot the registers and the time (unless a boot was still under way:
        then the earlier power-down is still the open one)."""
        self.mains_lost_at = t
        if self.outage is None:
            m = self.metering
            self.outage = Outage(t, self.rtc.read(t), m.forward_kwh, m.reverse_kwh)

    def _without_mains(self, t0: float, dt_s: float) -> None:
        end = t0 + dt_s
        assert self.mains_lost_at is not None
        dies_at = self.mains_lost_at + self.hold_up_s
        if self.state != "off" and dies_at <= end:
            self.state = "off"  # the hold-up is spent: the MCU stops, the RTC runs on the battery
            self.ready_at = None
        if self.state == "off":
            self._on_battery(end - max(t0, dies_at))

    def _on_battery(self, span_s: float) -> None:
        """The battery runs the clock (and the MCU asleep) for `span_s`: closed form, any length."""
        if span_s <= 0:
            return
        outage = self.outage
        kept = span_s
        if outage is not None and not outage.rtc_lost:
            kept = min(span_s, self.battery.seconds_until(RTC_MIN_BATTERY_V, self.sleep_ua))
            if kept < span_s:
                outage.rtc_lost = True  # the battery could not keep the clock to the end
        # On the battery the RTC runs at its battery rate instead of its mains rate.
        self.rtc.offset_s += (self.rtc_battery_ppm - self.rtc.drift_ppm) * 1e-6 * kept
        self.battery.drain(self.sleep_ua, span_s)
        self.battery_s += span_s

    def _mains_back(self, t: float) -> None:
        self.mains_lost_at = None
        outage = self.outage
        if self.state == "running":
            self.outage = None  # rode through on the hold-up: no reset, nothing to log
            return
        if self.state == "booting" or outage is None:
            return  # the supply dipped during the boot but never failed
        if outage.rtc_lost:
            self.rtc.set(outage.start_time, t)  # the RTC lost its supply: restart from the power-down time
            outage.rtc_lost = False
        outage.end_s = t
        outage.end_time = self.rtc.read(t)
        self.state = "booting"
        # A slow restart replaces the meter's own boot when it is longer.
        self.ready_at = t + max(self.boot_s, self.knobs.slow_restart_s)

    def _on_mains(self, t0: float, dt_s: float) -> None:
        end = t0 + dt_s
        if self.state == "booting" and self.ready_at is not None and self.ready_at <= end:
            self._booted(self.ready_at)
        if self.state == "running":
            while self.next_sample_s < end:
                self._sample()
                self.next_sample_s += BATTERY_SAMPLE_S
        self.battery.drain(self._trickle_ua(), dt_s)

    def _booted(self, at_s: float) -> None:
        """The MCU is up: it closes the power-down record and restores its registers."""
        self.state = "running"
        outage, self.outage = self.outage, None
        if outage is not None and outage.end_s is not None and outage.end_time is not None:
            loss = self.knobs.energy_lost_on_power_down
            if loss:
                self.metering.forward_kwh = max(0.0, self.metering.forward_kwh - loss)
            minimum = self.meter_type.min_logged_outage_s
            minimum = DEFAULT_MIN_LOGGED_OUTAGE_S if minimum is None else minimum
            if outage.end_s - outage.start_s >= minimum and not self.knobs.no_power_down_event:
                end = outage.start_time if self.knobs.event_end_time_wrong else outage.end_time
                self.records.appendleft(PowerDownRecord(outage.start_time, end))
                self.count = min(MAX_COUNT, self.count + 1)
        self._sample()
        self.next_sample_s = at_s + BATTERY_SAMPLE_S

    def _trickle_ua(self) -> float:
        return MAINS_LEAKAGE_UA + SELF_DISCHARGE_PER_YEAR * self.battery.capacity_mah * 1000.0 / 8760.0

    def _sample(self) -> None:
        """The MCU measures the battery and updates battery-low (with hysteresis)."""
        self.measured_v = round(self.battery.voltage_v() * self.adc_gain, 2)
        threshold = self.knobs.battery_alarm_threshold_v
        if not self.alarm and self.measured_v < threshold:
            self.alarm = True
        elif self.alarm and self.measured_v >= threshold + ALARM_HYSTERESIS_V:
            self.alarm = False

    # ---- what the rest of the meter asks

    def answering(self, now_s: float) -> bool:
        """True when the MCU runs on mains and has finished its start-up."""
        if not self.mains(self.world.terminals()) or self.state != "running":
            return False
        return self.ready_at is not None and now_s >= self.ready_at

    def battery_current_ua(self) -> float:
        """What the battery delivers now, µA (a µA meter in series reads this)."""
        if self.state == "off":
            return self.sleep_ua
        return MAINS_LEAKAGE_UA

    @property
    def display_codes(self) -> list[str]:
        """Error codes the LCD shows."""
        return [DISPLAY_BATTERY_LOW] if self.alarm else []

    def status_word_1(self) -> int:
        """Running status word 1 (bit 2: clock battery low)."""
        return STATUS1_CLOCK_BATTERY_LOW if self.alarm else 0

    def replace_battery(self, cell: str) -> float:
        """Someone changes the clock battery now (`cell`: 'new' or a test cell of `TEST_CELLS_V`); its
        open-circuit voltage, V. Without mains the RTC has no supply while the holder is empty."""
        if cell != NEW_CELL and cell not in TEST_CELLS_V:
            known = ", ".join([NEW_CELL, *TEST_CELLS_V])
            raise ValueError(f"no battery {cell!r} in the twin's stock; cells: {known}")
        self.battery = Battery.new(self.rng) if cell == NEW_CELL else Battery.test_cell(cell, self.rng)
        if self.state == "off" and self.outage is not None:
            self.outage.rtc_lost = True
        return round(self.battery.voltage_v(), 3)

    def items(self) -> dict[int, Callable[[float], Value]]:
        """The DL/T 645 items this side serves (DI -> value at bench time `now`)."""
        items: dict[int, Callable[[float], Value]] = {
            0x02800008: lambda now: self.measured_v,
            0x0280000A: lambda now: int(self.battery_s // 60),
            0x03110000: lambda now: self.count,
            0x04000501: lambda now: self.status_word_1(),
        }
        for n in range(1, EVENT_RECORDS + 1):
            items[0x03110000 + n] = _record_getter(self, n - 1)
        return items

    def truth(self) -> dict[str, Any]:
        """Ground truth for the control channel (and so for the twin's operator answers)."""
        return {
            "state": self.state,
            "battery": self.battery.label,
            "battery_v": round(self.battery.voltage_v(), 3),
            "battery_current_ua": round(self.battery_current_ua(), 2),
            "battery_measured_v": self.measured_v,
            "battery_alarm": self.alarm,
            "display": self.display_codes,
            "battery_low_shown": DISPLAY_BATTERY_LOW in self.display_codes,
            "power_down_count": self.count,
        }


def _record_getter(power: MeterPower, index: int) -> Callable[[float], Value]:
    """The getter of power-down record `index` (0: the newest)."""
    def get(now: float) -> Value:
        if index >= len(power.records):
            return (None, None)
        record = power.records[index]
        return (record.start, record.end)

    return get
