"""The twin meter's expansion module on its UART to the management module: every poll period of bench
time it reads the forward energy and the meter's clock (DL/T 645 frames both ways), and a bench may tap
that line with a UART adapter.

Twin side: builds its requests with the codec only (it is a DL/T 645 master of its own, not the rig's
link) and takes the management module's replies exactly as its firmware encodes them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final

from drivers.dlt645 import Dlt645Frame, Function, encode, encode_di
from rig.twin.management import ManagementModule
from rig.twin.relay import Relay
from rig.twin.serial_port import Line
from rig.twin.world import Terminals

EXPANSION_LINE: Final = Line(9600, 8, "E", 1)  # the internal link between the two modules
POLL_PERIOD_S: Final = 15.0
POLLED_ITEMS: Final = (0x00010000, 0x04000102)  # forward active energy, time of day
REQUEST_PREAMBLE: Final = 2


class ExpansionModule:
    """Polls the management module over the internal UART; `tap` (set when a bench taps the line)
    receives every byte on it, in order, both directions."""

    def __init__(self, management: ManagementModule, rng: random.Random) -> None:
        self.management = management
        self.next_poll_s = rng.uniform(0.0, POLL_PERIOD_S)  # modules power up out of step
        self.tap: Callable[[bytes], None] | None = None
        self.relay = Relay()  # the control function's load relay, switched by the MCU
        self.exchanges = 0

    def step(self, t0: float, dt_s: float, terminals: Terminals) -> None:
        """Run every poll that falls in [t0, t0 + dt_s)."""
        end = t0 + dt_s
        while self.next_poll_s < end:
            at = max(self.next_poll_s, t0)
            self.next_poll_s += POLL_PERIOD_S
            if self.management.answering(at):
                for di in POLLED_ITEMS:
                    self._exchange(di, at)

    def _exchange(self, di: int, at_s: float) -> None:
        request = Dlt645Frame.request(self.management.address, Function.READ, encode_di(di))
        self._emit(encode(request, preamble=REQUEST_PREAMBLE))
        result = self.management.respond(request, at_s)
        if result is not None:
            self._emit(self.management.encode_reply(result[0]))
        self.exchanges += 1

    def _emit(self, raw: bytes) -> None:
        if self.tap is not None:
            self.tap(raw)
