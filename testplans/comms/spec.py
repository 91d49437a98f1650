"""What the communication (DL/T 645-2007 over UART) plans require of a meter, as data with its source.

Test-plan layer; no I/O. `check=True` marks a value not yet confirmed against the standard's text (the
project reference says so for the timing). Where no standard gives a number the value is the lab's
requirement and says so: correct it here, with its source, when the meter's specification gives one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.dlt645 import DATA_ITEMS, STATUS1_CLOCK_BATTERY_LOW, ErrorCode


@dataclass(frozen=True)
class Limit:
    """Limits of a recorded value, its unit, and where they come from."""

    low: float | None
    high: float | None
    unit: str
    source: str
    check: bool = False


REFERENCE: Final = "DL/T 645-2007 as the project reference gives it (reference/dlt645.md"
LAB: Final = "lab requirement (DL/T 645 plans); no standard value at hand"


def di(name: str) -> int:
    """The data identifier of a row of the codec's table, by its name in the standard's words."""
    for item in DATA_ITEMS.values():
        if item.name == name:
            return item.di
    raise KeyError(f"no data item named {name!r} in drivers.dlt645.DATA_ITEMS")


FORWARD_ENERGY: Final = di("forward active energy, total")
REVERSE_ENERGY: Final = di("reverse active energy, total")
COMBINED_ENERGY: Final = di("combined active energy, total")
VOLTAGE_A: Final = di("phase A voltage")
CURRENT_A: Final = di("phase A current")
TOTAL_POWER: Final = di("total active power")
FREQUENCY: Final = di("frequency")
TEMPERATURE: Final = di("internal temperature")
BATTERY_VOLTAGE: Final = di("clock battery voltage")
DATE: Final = di("date and weekday")
TIME: Final = di("time")
STATUS_WORD_1: Final = di("running status word 1")
STATUS1_BATTERY_LOW: Final = STATUS1_CLOCK_BATTERY_LOW

# Items every meter must answer normally (frame conformance reads each of them).
MANDATORY_ITEMS: Final = (COMBINED_ENERGY, FORWARD_ENERGY, REVERSE_ENERGY, VOLTAGE_A, CURRENT_A, TOTAL_POWER,
                          FREQUENCY, TEMPERATURE, BATTERY_VOLTAGE, DATE, TIME, STATUS_WORD_1)
# A data identifier no meter has (DI3 = 0F is not a class of the standard): the meter must say "no data".
UNDEFINED_DI: Final = 0x0F000000

REPLY_LATENCY = Limit(0.020, 0.500, "s", REFERENCE + " 'Serial line': reply within 20..500 ms)", check=True)
INTER_BYTE_GAP = Limit(0.0, 0.500, "s", REFERENCE + " 'Serial line': gap between bytes <= 500 ms)", check=True)
LATENCY_READS: Final = 10  # reads whose latency the latency plan takes
PREAMBLES: Final = (0, 1, 2, 3, 4)  # FE wake-up bytes before a frame: 0 to 4 (reference 'Frame')

NO_DATA: Final = ErrorCode.NO_DATA
UNAUTHORISED: Final = ErrorCode.UNAUTHORISED
BAUD_UNCHANGEABLE: Final = ErrorCode.BAUD_UNCHANGEABLE
# The rate the baud-change plan switches to and back from (a rate every DL/T 645 meter offers).
OTHER_BAUD: Final = 9600
FALLBACK_BAUDS: Final = (2400, 1200, 4800, 9600, 19200, 600)  # tried when a plan must find the meter again

# Broadcast time (08H) rules (reference 'Abnormal replies' / 'Broadcast time').
BROADCAST_MAX_SHIFT_S: Final = 300.0
BROADCAST_QUIET_MIN: Final = 5  # no sync within 5 min of midnight (23:55..00:05)
BROADCAST_SOURCE: Final = REFERENCE + " 'Broadcast time': refused beyond 5 min, near midnight, quota used)"
# A refused sync leaves the clock where it was: within the reading's own resolution (whole seconds
# read twice plus the time the reads take).
CLOCK_UNMOVED = Limit(-2.0, 2.0, "s", LAB + ": whole-second clock read before and after, plus read time")
# How long the clock is watched to see that it runs at all (bench time).
CLOCK_RUN_S: Final = 5.0
# The meter's clock against the bench's calendar time: beyond the broadcast window it cannot be synced.
CLOCK_OFFSET = Limit(-BROADCAST_MAX_SHIFT_S, BROADCAST_MAX_SHIFT_S, "s",
                     LAB + ": within the 5 min a broadcast sync can correct", check=True)

# Instantaneous values against the reference standard at Un, Ib (power: the class's error limit there).
VOLTAGE_READING = Limit(-0.5, 0.5, "%", LAB + ": typical of smart-meter specifications for voltage")
CURRENT_READING = Limit(-1.0, 1.0, "%", LAB + ": typical of smart-meter specifications for current")
FREQUENCY_READING = Limit(-0.02, 0.02, "Hz", LAB + ": two counts of the 0.01 Hz resolution")
READING_PFS: Final = ("1", "0.5L")

# Energy read over UART against pulses and the reference over one dose at Imax, PF 1.
ENERGY_DOSE_KWH: Final = 5.0  # 500 register steps: the register's 0.01 kWh is 0.2 % of it
REGISTER_RESOLUTION_KWH: Final = 0.01  # XXXXXX.XX kWh (reference 'Data identifiers')

# Housekeeping values: plausible, not yet measured against a model (the battery issue brings one).
TEMPERATURE_RANGE = Limit(-40.0, 70.0, "°C", "IEC 62052-11 extended operating range -40..70 °C", check=True)
BATTERY_RANGE = Limit(3.0, 3.9, "V", LAB + ": a 3.6 V lithium clock battery, low below about 3.0 V")

# The expansion-module link: listened to for this long (bench time) at Imax.
TAP_WINDOW_S: Final = 180.0
TAP_MIN_EXCHANGES: Final = 2
TAP_INTERVAL_SPREAD = Limit(0.0, 2.0, "s", LAB + ": the expansion module polls on a steady timer")

# ---------------------------------------------------------------- Bluetooth LE

BLE_CORE: Final = "Bluetooth Core Specification v5.3 Vol 3 Part F (ATT)"
PROGRAMMING_COUNT: Final = di("programming count")
# ATT_MTU on LE is at least 23 (3.2.8); 517 is what a 512-byte value needs, the most a host asks for.
ATT_MTU = Limit(23, 517, "bytes", BLE_CORE + " 3.2.8-3.2.9: LE ATT_MTU at least 23; 517 carries the longest value")
ATT_HEADER_BYTES: Final = 3  # a notification or write carries at most ATT_MTU - 3 bytes of value (3.4.7.1, 3.4.5.1)
# A write sent once (across link drops and reconnects) is one programming event on the meter.
ONCE = Limit(1, 1, "events", LAB.replace("DL/T 645 plans", "Bluetooth LE plans") + ": a command sent once acts once")
