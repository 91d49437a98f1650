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

# The management MCU refreshes energy, power, Vrms and Irms at least once a second; 5 % for its timer.
MAX_POLL_INTERVAL = Requirement(1.05, "s", LAB + ": instantaneous values refreshed every second")
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
READINGS: Final = 3  # instantaneous readings averaged, one per second

# The energy dose: enough pulses that one count is 0.1 % of the result.
ENERGY_DOSE_PULSES: Final = 1000

# A calibration register the write-protection plans try to change (it is restored afterwards).
PROBE_REGISTER: Final = "PStart"

# What the meter's DL/T 645 server reports of the same quantities (data identifiers, table A.1).
UART_VOLTAGE_DI: Final = 0x02010100  # phase A voltage, V
UART_CURRENT_DI: Final = 0x02020100  # phase A current, A
UART_POWER_DI: Final = 0x02030000  # total active power, kW
UART_ENERGY_DI: Final = 0x00010000  # forward active energy, total, kWh
