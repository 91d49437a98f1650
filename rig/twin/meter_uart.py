"""The twin meter's RS-485 port as the line sees it (twin layer): reception takes the wire time of the host's
bytes, the management module's reply waits its delay, and the line stays busy while the reply is sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from drivers.dlt645 import BadFrame
from rig.twin.dlt698.codec import Bad698Frame
from rig.twin.dlt698.demux import DualFrameReader
from rig.twin.management import ManagementModule, Reply
from rig.twin.serial_port import Line

# A gap this long on the line ends a reception burst (the firmware's inter-frame timeout).
INTER_FRAME_GAP_S: Final = 0.02


class MeterUart:
    """The management module's RS-485 port as the line sees it: reception takes the wire time of the
    host's bytes, the reply waits the meter's delay, and the line stays busy while the reply is sent.

    The twin's clock does not move past a request this port has not answered (`World.settle`), so the bench
    time a host reads when the reply arrives is the time the meter sent it.
    """

    def __init__(self, management: ManagementModule) -> None:
        self.management = management
        self.world = management.world
        self.reader = DualFrameReader()  # DL/T 645 and DL/T 698.45 frames on one line
        self.busy_until = 0.0  # bench time the line is free again
        self._last_rx_end = -1.0
        self._skipping = False

    @property
    def line(self) -> Line:
        """The meter's line settings now."""
        return self.management.line

    def receive(self, data: bytes, host: Line, send: Callable[[bytes], None]) -> None:
        """Bytes from the host (garbled already when the host's settings differ from the meter's). Their wire
        time and the meter's reply delay are bench time the twin lets pass (`World.pass_time`: at once on the
        virtual clock, in step with the wall clock when the twin is paced)."""
        management, world = self.management, self.world
        with world.lock:
            now = world.time_s
            start = max(now, self.busy_until)
            end = start + len(data) * host.char_time_s
            self.busy_until = end
        world.pass_time(end - now)
        replies: list[tuple[Reply, float]] = []
        with world.lock:
            new_burst = start - self._last_rx_end > INTER_FRAME_GAP_S
            self._last_rx_end = end
            if not management.answering(world.time_s):
                self.reader = DualFrameReader()
                return
            if new_burst:
                self.reader.flush()  # the firmware's inter-frame timeout discards a half frame
                self._skipping = management.knobs.ignores_preamble and data[:1] == b"\xfe"
            if self._skipping:
                return  # this firmware expects 68 first after an idle line and drops the burst
            for item in self.reader.feed(data):
                if isinstance(item, (BadFrame, Bad698Frame)):
                    continue  # a garbled frame gets no reply (the host's link sees a timeout)
                result = management.respond(item, world.time_s)
                if result is not None:
                    replies.append((result, management.reply_delay_s()))
        for (reply, after), delay_s in replies:
            world.pass_time(delay_s)
            with world.lock:
                raw = management.encode_reply(reply)
                send(raw)
                self.busy_until = world.time_s + len(raw) * self.line.char_time_s
                if after is not None:
                    after()
