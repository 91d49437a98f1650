"""What the register plans require of a meter, as data with its source.

Test-plan layer; no I/O. `check=True` marks a value the project reference does not give (the lab confirms
it against the standard or the maker's protocol document).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from testplans.specs.terms import MeterTypeLike, phase_factor


@dataclass(frozen=True)
class Source:
    """Where a requirement comes from, and whether it still needs confirming."""

    text: str
    check: bool = False


DLT645: Final = "DL/T 645-2007"
# Identity: a type test compares the software the meter runs with the software the type was approved with
# (WELMEC 7.2 / OIML D 31 software identification; the bench file's meter type declares it).
SOFTWARE_ID = Source("OIML D 31 / WELMEC 7.2 software identification: the meter shows the version and checksum "
                     "of the type-approved software; declared in the bench file's meter type", check=True)
IDENTITY_ITEMS = Source(f"{DLT645} table A.5: 04 00 04 02 meter number, 04 00 04 0B model, 04 80 00 01..03 "
                        "software/hardware version, manufacturer; software checksum 04 80 00 05 is a maker's "
                        "extension", check=True)

# Reverse energy and direction.
REVERSE_DOSE_KWH: Final = 5.0  # 500 register steps: the register's 0.01 kWh is 0.2 % of it
REGISTER_RESOLUTION_KWH: Final = 0.01  # XXXXXX.XX kWh (reference 'Data identifiers')
REVERSE_PHASE_DEG: Final = 180.0  # the current reversed: energy flows back to the source, PF 1
REVERSE_REGISTER = Source(f"{DLT645} 00 02 00 00: reverse active energy registers what flows back, within the "
                          "class limit of the basic error at Imax, PF 1 (the accuracy tables)")
FORWARD_UNCHANGED = Source(f"{DLT645} 00 01 00 00: forward active energy registers import only; energy flowing "
                           "back leaves it unchanged")
DIRECTION_BIT = Source(f"{DLT645} running status word 1 bit 4: active power direction, 0 forward, 1 reverse",
                       check=True)

# Event-log rollover: the clock-setting log.
EVENT_RECORDS: Final = 10  # DL/T 645-2007 keeps the last 10 records of an event (last 1..10)
EXTRA_EVENTS: Final = 3  # events past a full log: enough to see the ring turn and the count go on
EVENT_LOG = Source(f"{DLT645} 03 30 04 00 clock-setting count, 03 30 04 01..0A the last 10 records (operator code, "
                   "time before, time after): the newest is record 1, an 11th event overwrites the oldest and the "
                   "count keeps counting", check=True)

# Tariff switching: a day of bench time at Ib, PF 1, the registers read at every programmed switch.
TARIFF_DAY_S: Final = 24 * 3600.0
TARIFFS: Final = 4  # T1 sharp, T2 peak, T3 flat, T4 valley (State Grid four-rate meters)
CLOCK_READ_S: Final = 1.0  # the meter's clock counts whole seconds: a switch is placed to within this
# Around each switch the load is Imax (the registers step every few seconds there, Ib elsewhere): the registers
# are read just before it (every position's switch) and the load stays at Imax for the lateness allowed and
# SWITCH_MARGIN_S more. With 0.01 kWh registers a lateness resolves to a tenth only when it is many steps long:
# the plan allows TARIFF_LATE_STEPS register steps' time at Imax (about 41 s for 220 V, 60 A) and says so.
TARIFF_LATE_STEPS: Final = 15
SWITCH_MARGIN_S: Final = 20.0


def step_at_imax_s(meter: MeterTypeLike) -> float:
    """Time of one register step at Un, Imax, PF 1: the load around each tariff switch, and the display plan's
    dose (the lag or lateness they judge then resolves to a fraction of a step)."""
    return REGISTER_RESOLUTION_KWH * 3.6e6 / (phase_factor(meter) * meter.un_v * meter.imax_a)


TARIFF_REGISTERS = Source(f"{DLT645} 00 01 0T 00: forward active energy of tariff T moves by what flows while the "
                          "meter's daily period table (04 01 00 01) puts its clock in tariff T, within the class "
                          "limit, PF 1, the register's resolution, the placing of each switch and a lateness of "
                          f"{TARIFF_LATE_STEPS} register steps' time at Imax (the lab's: what 0.01 kWh registers "
                          "resolve)", check=True)

# Register against display.
DISPLAY_FRACTION: Final = 0.75  # the register's hidden fraction when read: a rounding display shows one step more
DISPLAY_SETTLE_S: Final = 5.0  # after the load stops, time the display may take to show the register (check)
DISPLAY_POLL_S: Final = 0.1  # how often the register is read while waiting for it to step (its step placed to this)
DISPLAY = Source(f"{DLT645} / IEC 62053-21: the display shows the register (forward active energy total, "
                 "XXXXXX.XX kWh) as the meter counts it: the same digits, the last one truncated, not rounded; "
                 "its auto-cycle screens (04 04 01 NN) include the item", check=True)
