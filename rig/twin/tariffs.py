"""The twin meter's tariff registers over DL/T 645, from the meter's side: the energy of every step goes to the
tariff the meter's daily period table puts the meter's own clock in; forward and reverse registers per tariff
(00 01 0T 00 / 00 02 0T 00), the table itself (04 01 00 01) and the number of tariffs (04 00 02 04).

The schedule is the firmware's factory day (the same one its DL/T 698.45 server books by: rig.twin.dlt698
TARIFF_BY_HOUR), written as periods. Knobs: a meter that switches late, or books the valley periods to the
peak register.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from drivers.dlt645 import Value
from drivers.dlt645.tariff import Period, encode_day_periods, tariff_at
from rig.config.registers import RegisterKnobs
from rig.twin.dlt698.objects import TARIFF_BY_HOUR, TARIFFS
from rig.twin.meter import MeteringModule
from rig.twin.meter_clock import MeterRtc

PEAK: Final = 2  # T2 (peak); T4 is the valley
VALLEY: Final = 4


def shown_kwh(kwh: float) -> float:
    """A register as the meter shows it: whole hundredths of a kWh, truncated."""
    return math.floor(kwh * 100.0 + 1e-9) / 100.0


def factory_periods() -> tuple[Period, ...]:
    """The factory day as periods: a new period wherever the hour's tariff changes."""
    periods: list[Period] = []
    for hour, tariff in enumerate(TARIFF_BY_HOUR):
        if not periods or periods[-1][1] != tariff:
            periods.append((dt.time(hour, 0), tariff))
    return tuple(periods)


@dataclass
class TariffRegisters:
    """Forward and reverse energy per tariff (index 0: T1), booked on the meter's clock."""

    metering: MeteringModule
    rtc: MeterRtc
    knobs: RegisterKnobs
    periods: tuple[Period, ...] = field(default_factory=factory_periods)
    forward: list[float] = field(init=False)
    reverse: list[float] = field(init=False)
    _seen: tuple[float, float] = field(init=False)

    def __post_init__(self) -> None:
        # What the meter had when built is in T1, as its DL/T 698.45 registers have it.
        self.forward = [self.metering.forward_kwh] + [0.0] * (TARIFFS - 1)
        self.reverse = [self.metering.reverse_kwh] + [0.0] * (TARIFFS - 1)
        self._seen = (self.metering.forward_kwh, self.metering.reverse_kwh)

    def tariff(self, now_s: float) -> int:
        """The tariff (1..TARIFFS) this meter books to at bench time `now_s`."""
        clock = self.rtc.read(now_s) - dt.timedelta(minutes=self.knobs.tariff_switch_late_min)
        tariff = tariff_at(self.periods, clock.time())
        return PEAK if self.knobs.tariff_wrong and tariff == VALLEY else tariff

    def step(self, t0: float, dt_s: float) -> None:
        """Book the energy the registers gained over the step to the tariff in force at its start."""
        m = self.metering
        forward, reverse = m.forward_kwh - self._seen[0], m.reverse_kwh - self._seen[1]
        self._seen = (m.forward_kwh, m.reverse_kwh)
        index = self.tariff(t0) - 1
        self.forward[index] += max(0.0, forward)
        self.reverse[index] += max(0.0, reverse)

    def items(self) -> dict[int, Callable[[float], Value]]:
        """The DL/T 645 items (DI -> value at bench time `now`)."""
        items: dict[int, Callable[[float], Value]] = {
            0x04000204: lambda now: TARIFFS,
            0x04010001: lambda now: encode_day_periods(self.periods),
        }
        for t in range(1, TARIFFS + 1):
            items[0x00010000 + t * 0x100] = self._getter(self.forward, t - 1)
            items[0x00020000 + t * 0x100] = self._getter(self.reverse, t - 1)
        return items

    @staticmethod
    def _getter(registers: list[float], index: int) -> Callable[[float], Value]:
        return lambda now: shown_kwh(registers[index])
