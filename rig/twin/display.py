"""The twin meter's display (LCD), from the meter's side: its auto-cycle screens (forward energy total and per
tariff, reverse energy total, date, time), each shown for SCREEN_S seconds, and what the forward energy screen
shows at a moment (what an operator reads off the meter). Its screen list and timing are served over DL/T 645:
04 00 03 01 number of auto-cycle screens, 04 00 03 02 seconds per screen, 04 04 01 NN the item of screen NN
(its DI and the screen number within the item; the layout is marked check in the codec).

The display refreshes from the register as the firmware copies it: at once on a healthy meter. Knobs: a display
that lags the register (stale), or one that rounds the last digit where the register truncates.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from drivers.dlt645 import Value
from rig.config.registers import RegisterKnobs
from rig.twin.meter import MeteringModule

SCREEN_S: Final = 5  # seconds each screen stays
FORWARD_TOTAL: Final = 0x00010000
SCREENS: Final = (FORWARD_TOTAL, 0x00010100, 0x00010200, 0x00010300, 0x00010400, 0x00020000, 0x04000101,
                  0x04000102)
DI_SCREEN_COUNT: Final = 0x04000301
DI_SCREEN_TIME: Final = 0x04000302
DI_SCREEN_ITEM: Final = 0x04040100  # + screen number 1..
HISTORY_S: Final = 3600.0  # how far back a stale display can lag (the knob is clipped to it)


@dataclass
class Display:
    """The LCD of one twin meter."""

    metering: MeteringModule
    knobs: RegisterKnobs
    _history: deque[tuple[float, float]] = field(default_factory=deque)  # (bench time, forward kWh)

    def step(self, t0: float, dt_s: float) -> None:
        """Keep the register's recent values (a stale display shows an old one)."""
        if not self.knobs.display_stale_s:
            return
        end = t0 + dt_s
        history = self._history
        if history and history[-1][0] >= end:
            return
        history.append((end, self.metering.forward_kwh))
        while len(history) > 1 and history[1][0] <= end - HISTORY_S:
            history.popleft()

    def forward_kwh(self, now_s: float) -> float:
        """The forward energy total as the display shows it at bench time `now_s`, kWh."""
        value = self.metering.forward_kwh
        stale = min(self.knobs.display_stale_s, HISTORY_S)
        if stale and self._history:
            times = [t for t, _ in self._history]
            i = bisect.bisect_right(times, now_s - stale)
            value = self._history[i - 1][1] if i > 0 else self._history[0][1]
        if self.knobs.display_rounds:
            return round(value, 2)
        return math.floor(value * 100.0 + 1e-9) / 100.0

    def screen(self, now_s: float) -> int:
        """The DI of the screen the auto-cycle shows at bench time `now_s`."""
        return SCREENS[int(now_s // SCREEN_S) % len(SCREENS)]

    def items(self) -> dict[int, Callable[[float], Value]]:
        """The DL/T 645 items of the display (DI -> value at bench time `now`)."""
        items: dict[int, Callable[[float], Value]] = {
            DI_SCREEN_COUNT: lambda now: len(SCREENS),
            DI_SCREEN_TIME: lambda now: SCREEN_S,
        }
        for n, di in enumerate(SCREENS, 1):
            items[DI_SCREEN_ITEM + n] = _screen_item(di)
        return items

    def truth(self, now_s: float) -> dict[str, float | int]:
        """What the display shows now: the forward energy screen's value and the screen on at the moment."""
        return {"forward_kwh": self.forward_kwh(now_s), "screen": self.screen(now_s)}


def _screen_item(di: int) -> Callable[[float], Value]:
    # The screen's data item and its screen number within the item (1: the item fits one screen).
    return lambda now: di | 1 << 32
