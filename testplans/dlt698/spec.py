"""What the DL/T 698.45 plans require of a meter, as data with its source (test-plan layer; no I/O).

Object identifiers, attributes and DARs are the standard's (DL/T 698.45-2017, its object catalogue as the
`dlt698` package carries it); limits without a standard number are the lab's and say so.
"""

from __future__ import annotations

from typing import Final

from testplans.comms.spec import Limit
from testplans.security import spec as security_spec

STANDARD: Final = "DL/T 698.45-2017"
LAB: Final = "lab requirement (DL/T 698.45 plans); no standard value at hand"

# Object identifiers (OI) the plans read.
FORWARD_ENERGY: Final = 0x0010
REVERSE_ENERGY: Final = 0x0020
VOLTAGE: Final = 0x2000
CURRENT: Final = 0x2001
ACTIVE_POWER: Final = 0x2004
POWER_FACTOR: Final = 0x200A
FREQUENCY: Final = 0x200F
DATE_TIME: Final = 0x4000
COMM_ADDRESS: Final = 0x4001
MINUTE_FREEZE: Final = 0x5002
DAILY_FREEZE: Final = 0x5004
POWER_DOWN_EVENT: Final = 0x3011

# Record columns of a freeze (class 9): sequence number and freeze time (class 8 objects 2023, 2021).
FREEZE_SEQUENCE: Final = 0x2023
FREEZE_TIME: Final = 0x2021

# The objects every meter answers (attribute 2), read by the frame conformance plan.
MANDATORY: Final = (FORWARD_ENERGY, REVERSE_ENERGY, VOLTAGE, CURRENT, ACTIVE_POWER, POWER_FACTOR, FREQUENCY,
                    DATE_TIME, COMM_ADDRESS)
# Measured objects whose attribute 3 (scaler, unit) must be the standard's.
SCALED: Final = (FORWARD_ENERGY, REVERSE_ENERGY, VOLTAGE, CURRENT, ACTIVE_POWER, POWER_FACTOR, FREQUENCY)

# An OI the standard does not define (2FFFH lies in the reserved part of the variable class 2xxx).
UNDEFINED_OI: Final = 0x2FFF
DAR_NO_OBJECT: Final = 6  # object does not exist (DL/T 698.45 DAR)
DAR_DENIED: Final = 3  # read/write denied: a SET of a measured value

REPLY_LATENCY = Limit(0.0, 0.500, "s", LAB + ": the DL/T 645 plans' 500 ms reply window, same UART task")
PROTOCOL_VERSION: Final = 0x0010

# The energy dose the energy and freeze plans compare with the reference (Imax, PF 1).
ENERGY_DOSE_KWH: Final = 2.0
REGISTER_RESOLUTION_KWH: Final = 0.01  # scaler -2: 0.01 kWh
# Minute freeze: records followed over at least this much bench time.
FREEZE_WATCH_S: Final = 3600.0
# Freeze values against the reference at each boundary: the register's resolution plus the class limit.
CLOCK_TOLERANCE_S: Final = 5.0
# Freeze values are the register's at the freeze moment. The plan times each record by the high-precision forward
# energy (0010 attribute 4, long64-unsigned, scaler -4: 0.0001 kWh, about 0.03 s at 220 V, 60 A), which the
# freezes capture as 00100400 beside attribute 2: the record against the meter's own register read just after the
# moment, the moment placed on the bench clock by a located tick of the meter's clock (4000 shows whole seconds).
PRECISE_ENERGY_ATTRIBUTE: Final = 4
PRECISE_RESOLUTION_KWH: Final = 0.0001  # scaler -4 (attribute 5)
FREEZE_LATE = Limit(None, 5.0, "s", "lab requirement (check): freeze values (5002/5004, 0010) are the register's "
                    "at the freeze moment, taken within this of it (no later; nor earlier)", check=True)
TICK_RESOLUTION_S: Final = 0.02  # a tick of the meter's seconds located to this (reads whole seconds apart)
TICK_READS: Final = 40  # reads of the clock to find and locate a tick before the plan gives up

# Events (class 7): the power-down event's record columns (event sequence 2022, start 201E, end 2020) and the
# device object's active-report switch (4300 attribute 8).
DEVICE: Final = 0x4300
EVENT_SEQUENCE: Final = 0x2022
EVENT_START: Final = 0x201E
EVENT_END: Final = 0x2020
# How long the rig listens for a report after the meter is back (bench time).
REPORT_WAIT_S: Final = 10.0

# Security: DARs of a refused SECURITY-Request and the ConnectResult of a wrong key (DL/T 698.45 DAR table).
DAR_NO_SESSION: Final = 20  # security authentication mismatch: no (or an expired) session
DAR_MAC_WRONG: Final = 22  # ESAM verification failed
DAR_REPLAY: Final = 23  # security authentication failed
CONNECT_SYMMETRIC_ERROR: Final = 2  # ConnectResult: symmetric decryption error
# A session lasts the ESAM's validity: 5 min as delivered, or what the DL/T 645 security plans leave set.
SESSION_VALIDITY_S: Final = max(5, security_spec.WORKING_VALIDITY_MIN) * 60.0 + security_spec.EXPIRY_MARGIN_S
