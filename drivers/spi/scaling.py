"""RN8209 register counts to SI quantities, host side (drivers layer; imports nothing of the rig).

Formulas from shared/reference/spi.md. Kv and Ki are the meter design's scales (bench file); Kp follows
from HFConst as read from the chip and the meter constant EC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from drivers.errors import ValidationError

CLKIN_HZ = 3.579545e6  # the RN8209's crystal
# Kp = KP_NUMERATOR / (2^32 * HFConst * EC)
KP_NUMERATOR = 3.22155e12
# EMUStatus carries the checksum of the calibration registers in its low 16 bits (as RN8209
# application firmware compares it, e.g. the public RN8209C_demo driver).
EMUSTATUS_CHECKSUM_MASK = 0xFFFF


def calibration_checksum(emustatus: int) -> int:
    """The calibration-register checksum an EMUStatus value carries."""
    return emustatus & EMUSTATUS_CHECKSUM_MASK


@dataclass(frozen=True)
class ChipScaling:
    """How one meter's RN8209 counts map to volts, amperes, watts, hertz and kWh."""

    kv_v_per_count: float
    ki_a_per_count: float
    meter_constant_imp_per_kwh: float  # EC

    def __post_init__(self) -> None:
        for name in ("kv_v_per_count", "ki_a_per_count", "meter_constant_imp_per_kwh"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValidationError(f"chip scaling {name} must be a positive number, got {value!r}")

    def voltage_v(self, urms: int) -> float:
        """U = URMS * Kv, V."""
        return urms * self.kv_v_per_count

    def current_a(self, iarms: int) -> float:
        """I = IARMS * Ki, A."""
        return iarms * self.ki_a_per_count

    def frequency_hz(self, ufreq: int) -> float:
        """f = CLKIN / 8 / UFreq, Hz (UFreq 0 means no voltage to measure: NaN)."""
        return CLKIN_HZ / 8 / ufreq if ufreq > 0 else math.nan

    def kp_w_per_count(self, hfconst: int) -> float:
        """Kp = 3.22155e12 / (2^32 * HFConst * EC), W per PowerPA count."""
        if hfconst <= 0:
            raise ValidationError(f"HFConst {hfconst} cannot scale power: the chip is not calibrated")
        return KP_NUMERATOR / (2**32 * hfconst * self.meter_constant_imp_per_kwh)

    def power_w(self, power_pa: int, hfconst: int) -> float:
        """P = PowerPA * Kp, W (signed)."""
        return power_pa * self.kp_w_per_count(hfconst)

    def energy_kwh(self, count: int) -> float:
        """Energy of `count` energy-register pulses, kWh (count / EC)."""
        return count / self.meter_constant_imp_per_kwh
