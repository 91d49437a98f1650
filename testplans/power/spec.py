"""What the power plans require of a meter (outages, power-down events, RTC on the battery, the clock
battery, dips and short interruptions, start-up), as data with its source.

Test-plan layer; no I/O. `check=True` marks a value the project reference itself says needs confirming
against the paid standards (IEC 62052-11, IEC 62053-21/-22, Q/GDW 1364) or the meter's specification.
Where no standard gives a number the value is the lab's requirement and says so: correct it here, with
its source, when one is at hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Protocol

from drivers.dlt645 import STATUS1_CLOCK_BATTERY_LOW
from drivers.transients import TransientStep, WaveformProgram, dip, interruption, repeated
from testplans.comms.spec import Limit, di

REFERENCE: Final = "project reference power.md"
LAB: Final = "lab requirement (power plans); no standard value at hand"


class MeterTypeLike(Protocol):
    """What these limits need of the meter type (rig.config.MeterType)."""

    un_v: float
    imax_a: float
    constant_imp_per_kwh: float
    start_up_time_s: float
    min_logged_outage_s: float | None

    @property
    def phase_factor(self) -> float:
        """m in the standards' formulas."""
        ...


# ---------------------------------------------------------------- data identifiers (the codec's table)

FORWARD_ENERGY: Final = di("forward active energy, total")
REVERSE_ENERGY: Final = di("reverse active energy, total")
COMBINED_ENERGY: Final = di("combined active energy, total")
REGISTERS: Final = {"forward active energy": FORWARD_ENERGY, "reverse active energy": REVERSE_ENERGY,
                    "combined active energy": COMBINED_ENERGY}
TIME: Final = di("time")
BATTERY_VOLTAGE: Final = di("clock battery voltage")
BATTERY_TIME: Final = di("battery operating time")
POWER_DOWN_COUNT: Final = di("power-down count")
STATUS_WORD_1: Final = di("running status word 1")
STATUS1_BATTERY_LOW: Final = STATUS1_CLOCK_BATTERY_LOW


def power_down_record(n: int) -> int:
    """DI of the power-down record `n` (1: the last one)."""
    return di(f"power-down record, last {n}")


REGISTER_RESOLUTION_KWH: Final = 0.01  # XXXXXX.XX kWh

# ---------------------------------------------------------------- outages

# Power-down is detected below 60 % Un (reference 'Power loss'); the meter must not move its registers.
REGISTERS_UNCHANGED = Limit(0.0, 0.0, "kWh", REFERENCE + ": energy registers must not change during or after "
                            "the interruption")
# Energy put into the registers before the outage (so that a register that loses energy can show it).
FILL_ENERGY_S: Final = 120.0  # at Imax, PF 1: about 0.44 kWh at 220 V 60 A
REGISTER_OUTAGE_S: Final = 600.0
# The event plan's outage: well above the shortest outage a meter logs (its type's value).
EVENT_OUTAGE_S: Final = 180.0
EVENT_SOURCE: Final = (REFERENCE + ": count (03 11 00 00) and the last 10 records (03 11 00 01..0A), each "
                       "start and end; on power-up the record is closed with the power-up time")
# A record's times against the rig's clock (the meter's offset measured before): whole seconds (1 s), the
# offset measurement (±0.5 s) and the rig's own timing, plus the RTC tolerance over the time in between.
EVENT_TIME_BASE_S: Final = 2.0
# A short interruption: half the meter type's shortest logged outage, as a source program (0 %).
SHORT_FRACTION: Final = 0.5
SHORT_SOURCE: Final = REFERENCE + ": minimum outage that must be logged is a meter parameter (default 60 s)"

# ---------------------------------------------------------------- the clock

RTC_RATE_S_PER_DAY: Final = 0.5
RTC_RATE = Limit(-RTC_RATE_S_PER_DAY, RTC_RATE_S_PER_DAY, "s/day",
                 REFERENCE + " 'Clock': <= ±0.5 s/day at 23 °C, keeps running on the battery", check=True)
LONG_OUTAGE_S: Final = 72 * 3600.0
# The meter's seconds are timed from their tick: reads until the shown second changes.
CLOCK_TICK_READS: Final = 16
# Over the 72 h outage each end's tick is located to this (reads placed whole seconds apart, each halving the
# interval): at most 0.02 s over 3 days, under a tenth of the margin a rate 10 % beyond the limit leaves.
RTC_TICK_RESOLUTION_S: Final = 0.02


def event_time_limit(elapsed_s: float) -> Limit:
    """How far a power-down record's time may be from the rig's clock `elapsed_s` after the offset was
    measured, s."""
    tolerance = EVENT_TIME_BASE_S + RTC_RATE_S_PER_DAY * elapsed_s / 86400.0
    return Limit(-tolerance, tolerance, "s", LAB + ": whole seconds, offset measurement, rig timing; plus "
                 + RTC_RATE.source, check=True)


# The battery-operating-time item counts minutes (reference marks the unit 'check').
BATTERY_TIME_TOLERANCE_MIN: Final = 2.0
BATTERY_TIME_SOURCE: Final = "DL/T 645-2007 02 80 00 0A battery operating time, minutes (reference: check)"

# ---------------------------------------------------------------- start-up

STARTUP_OUTAGE_S: Final = 10.0
# While waiting for the start-up the rig asks every 0.6 s: the longest reply latency (0.5 s) and a margin.
PROBE_REPLY_TIMEOUT_S: Final = 0.6
STARTUP_SOURCE: Final = "the meter type's start-up time (nameplate / bench file meter.start_up_time_s)"

# ---------------------------------------------------------------- the clock battery

BATTERY_ALARM_V: Final = 2.10
BATTERY_HYSTERESIS_V: Final = 0.20
BATTERY_ALARM_SOURCE: Final = (REFERENCE + ": one vendor alarms below 2.10 V with 0.20 V hysteresis (the normative "
                               "threshold: check); status word 1 bit 2 and display code Err-04")
DISPLAY_BATTERY_LOW: Final = "Err-04"
# The meter measures its battery from time to time: a change must show within this (bench time).
BATTERY_UPDATE_S: Final = 150.0
BATTERY_READING_TOLERANCE_V: Final = 0.05
BATTERY_READING = Limit(-BATTERY_READING_TOLERANCE_V, BATTERY_READING_TOLERANCE_V, "V",
                        LAB + ": the meter's battery reading against the DMM")
# The lab's test cells (a battery simulator set to the voltage, or partly discharged ER14250 cells): one at the
# bracket below the threshold and one just above it (inside the hysteresis band), which brackets the threshold on
# both sides (an alarm BATTERY_BRACKET_V late or early fails), and one above the band. The low cell sits at the
# bracket itself, within ±_LOW_CELL_V on the DMM: the meter reads its battery to 0.01 V (calibrated, gain within
# about ±0.05 %), so a threshold the bracket late (at 2.05 V: the meter reads 2.05 V, not below it) raises nothing,
# while one 0.04 V late (2.06 V) still alarms; a wider window would blur that line by the window's width.
BATTERY_BRACKET_V: Final = 0.05
_CLEAR_V: Final = 0.02
_LOW_CELL_V: Final = 0.003
TEST_CELLS: Final = {
    "low": Limit(BATTERY_ALARM_V - BATTERY_BRACKET_V - _LOW_CELL_V, BATTERY_ALARM_V - BATTERY_BRACKET_V + _LOW_CELL_V,
                 "V", LAB + ": a cell at the bracket below the alarm threshold, set to ±3 mV on the DMM"),
    "between": Limit(BATTERY_ALARM_V + _CLEAR_V + 0.005, BATTERY_ALARM_V + BATTERY_BRACKET_V + 0.025, "V",
                     LAB + ": a cell just above the threshold, inside the hysteresis band"),
    "recovery": Limit(BATTERY_ALARM_V + BATTERY_HYSTERESIS_V + 0.05, 2.8, "V",
                      LAB + ": a cell just above the band"),
}
# The order the cells are fitted in: just above first (no alarm yet: an early alarm shows), just below (raises
# it: a late alarm does not), just above again (kept: hysteresis), above the band (clears it).
CELL_SEQUENCE: Final = ("between", "low", "between", "recovery")
NEW_BATTERY_NOMINAL_V: Final = 3.6
NEW_BATTERY = Limit(3.3, 3.8, "V", REFERENCE + ": lithium, nominal about 3.6 V")
# Battery life: >= 1.2 Ah keeps the clock for >= 5 years of cumulative outage.
BATTERY_CAPACITY_AH: Final = 1.2
BATTERY_LIFE_YEARS: Final = 5.0
MAX_DRAIN_UA: Final = BATTERY_CAPACITY_AH * 1e6 / (BATTERY_LIFE_YEARS * 8760.0)
BATTERY_DRAIN = Limit(0.0, round(MAX_DRAIN_UA, 1), "µA",
                      REFERENCE + ": >= 1.2 Ah keeps the clock >= 5 years of cumulative outage", check=True)
DRAIN_SETTLE_S: Final = 10.0  # the MCU is asleep well within this after mains goes
# A battery change with mains present: the clock must not move (two tick-timed offsets, ±0.4 s each).
CLOCK_UNMOVED = Limit(-1.0, 1.0, "s", REFERENCE + ": replacing it with mains present must not lose the clock")

# ---------------------------------------------------------------- dips and short interruptions


def critical_kwh(meter: MeterTypeLike) -> float:
    """x = 1e-6 · m · Un · Imax kWh: what the register may change by in the dips test."""
    return 1e-6 * meter.phase_factor * meter.un_v * meter.imax_a


def critical_pulses(meter: MeterTypeLike) -> int:
    """The pulses equivalent to x (the test output may emit no more)."""
    return math.floor(critical_kwh(meter) * meter.constant_imp_per_kwh + 1e-9)


DIPS_SOURCE: Final = (REFERENCE + " 'Voltage dips and short interruptions' (IEC 62052-11 / IEC 61000-4-11): no "
                      "current; the register changes by no more than x = 1e-6·m·Un·Imax kWh and the test output "
                      "emits no more than the equivalent pulses")


@dataclass(frozen=True)
class DipTest:
    """One dips-and-interruptions case: the waveform program and where it comes from."""

    program: WaveformProgram
    source: str
    check: bool = True


DIPS: Final = {
    "100 % for 1 s x3": DipTest(repeated(TransientStep(0.0, duration_s=1.0), 3, recovery_s=0.05,
                                         name="interruption 1 s, three times, 50 ms between"), DIPS_SOURCE),
    "100 % for one cycle": DipTest(interruption(cycles=1, start_phase_deg=0.0, name="interruption of one cycle"),
                                   DIPS_SOURCE),
    "50 % for 1 min": DipTest(dip(50.0, duration_s=60.0, name="dip to 50 % for 1 min"), DIPS_SOURCE),
}
