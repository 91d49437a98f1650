"""What the SPI plans require of a metering chip and of the MCU polling it, as data with its source.

Test-plan layer; no I/O. Where no standard gives a number the value is the lab's requirement and
says so: correct it here, with its source, when the meter's specification gives one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Requirement:
    """A limit and where it comes from."""

    value: float
    unit: str
    source: str


LAB: Final = "lab requirement (SPI plans); no standard value at hand"

# The capture that the bus plans share: the meter's supply off, then on, listened to from power-up.
POWER_OFF_S: Final = 1.0
CAPTURE_S: Final = 12.0

# The statistical verdicts (the MCU's polling jitter, the chip's RMS noise) judge a standard deviation s of n
# independent draws, and (n - 1) s^2 / sigma^2 ~ chi-squared(n - 1). A handful of draws (the longest of ten
# polling intervals, a mean of three readings) leaves a meter at 1.1x the limit passing and one at 0.8x failing
# often. The plan's choice, as the accuracy plan's repeatability test: the fewest draws with which a meter at
# 1.1x the limit fails AND one at 0.8x passes with probability 0.995 each, chi-squared(n - 1) beyond
# (n - 1) / 1.1^2 and within (n - 1) / 0.8^2 at 99.5 %: n = 398 (the 1.1x side decides; at 0.99 it would be 326,
# at 0.999 568). Each draw is one second of bench time (a polling interval, a reading of the noise the chip
# redraws every second): some 7 min of bench time per verdict.
SPREAD_SAMPLES: Final = 398

# The management MCU refreshes energy, power, Vrms and Irms at least once a second; 5 % for its timer. Judged on
# the steady polling capture as the timer's period, the mean interval between reads.
MAX_POLL_INTERVAL = Requirement(1.05, "s", LAB + ": instantaneous values refreshed every second")
# The jitter of the MCU's polling timer, the standard deviation of the intervals between its reads: a third of the
# 5 % allowance, so that a timer on its 1 s period overruns 1.05 s about once in 700 polls.
MAX_POLL_JITTER = Requirement(0.0167, "s", LAB + ": a third of the polling period's 5 % allowance (1 sigma)")
# The steady polling capture, with the meters running at Un, Ib: SPREAD_SAMPLES intervals even at the longest
# period allowed, and two periods to spare.
POLLING_CAPTURE_S: Final = (SPREAD_SAMPLES + 3) * MAX_POLL_INTERVAL.value
# From power-up to the MCU's first poll of the chip.
MAX_FIRST_POLL = Requirement(2.0, "s", LAB + ": the MCU sets the chip up and polls within 2 s of power-up")
# The quantities the MCU must poll (register names of the chip profile).
POLLED_REGISTERS: Final = ("EnergyP", "PowerPA", "URMS", "IARMS")

# The chip's instantaneous values against the reference standard at Un, Ib, PF 1 (power uses the
# class's error limit at that load point instead).
VOLTAGE_TOLERANCE = Requirement(0.5, "%", LAB + ": typical of smart-meter specifications for Vrms")
CURRENT_TOLERANCE = Requirement(1.0, "%", LAB + ": typical of smart-meter specifications for Irms")
# UFreq counts 1/(CLKIN/8) s of period: at 50 Hz one count is about 0.006 Hz.
FREQUENCY_TOLERANCE = Requirement(0.02, "Hz", LAB + ": three UFreq counts at 50 Hz")
# The scatter of single Vrms and Irms readings against the reference's (their standard deviation): a third of the
# tolerance, so that a chip without systematic error keeps 997 single readings in 1000 within it (the MCU shows and
# reports single readings). The scatter measured includes the reference's own (0.01 % on the twin).
VOLTAGE_NOISE = Requirement(VOLTAGE_TOLERANCE.value / 3, "%", LAB + ": a third of the Vrms tolerance (1 sigma)")
CURRENT_NOISE = Requirement(CURRENT_TOLERANCE.value / 3, "%", LAB + ": a third of the Irms tolerance (1 sigma)")
# Instantaneous readings, one per second: their mean is judged against the tolerances, their scatter against the
# noise limits (SPREAD_SAMPLES: enough to tell 1.1x the noise limit from 0.8x).
READINGS: Final = SPREAD_SAMPLES
# Attempts at one set of readings: the MCU's polls share the chip's bus with the rig's master, and one of its reads
# between the rig's read and RData read leaves RData unconfirming (hundreds of readings meet that now and then).
READ_ATTEMPTS: Final = 3

# The energy dose: enough pulses that one count is 0.1 % of the result.
ENERGY_DOSE_PULSES: Final = 1000

# A calibration register the write-protection plans try to change (it is restored afterwards).
PROBE_REGISTER: Final = "PStart"

# What the meter's DL/T 645 server reports of the same quantities (data identifiers, table A.1).
UART_VOLTAGE_DI: Final = 0x02010100  # phase A voltage, V
UART_CURRENT_DI: Final = 0x02020100  # phase A current, A
UART_POWER_DI: Final = 0x02030000  # total active power, kW
UART_ENERGY_DI: Final = 0x00010000  # forward active energy, total, kWh
