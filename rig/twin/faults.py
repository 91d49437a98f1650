"""Bench faults of the twin, scheduled on its virtual clock (`twin.faults.schedule`).

Twin side, below the transports: the SCPI servers, the serial ports and the reference model ask this
schedule what is wrong right now; the rig's drivers only ever see what a real bench would show them (a
reset connection, a late or garbled reply, errors in the queue, a port that is gone, bytes lost or
flipped, a reference standard that restarted). `events` keeps what was injected, as ground truth.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from drivers.transport import active_traffic_log
from rig.config import FaultsConfig, FaultSpec
from rig.twin.world import Terminals, World


@dataclass(frozen=True)
class FaultEvent:
    """Something the twin did to the bench: when (bench s), which fault, to what, and how."""

    at_s: float
    kind: str
    target: str
    action: str


class FaultSchedule:
    """The faults of one twin. A fault with `duration_s` > 0 is active over [at_s, at_s + duration_s);
    one with duration 0 happens once, at the first chance at or after `at_s` (one message, one blip)."""

    def __init__(self, world: World, config: FaultsConfig, rng: random.Random) -> None:
        self.world = world
        self.config = config
        self.rng = rng
        self.events: list[FaultEvent] = []
        self.on_reference_reset: list[Callable[[], None]] = []
        self._fired: set[int] = set()
        self._lock = threading.Lock()
        # Each fault's first firing is noted in the run's traffic log (ground truth on disk: a scheduled fault
        # whose time never came, or whose target was never used, did not fire).
        self._log = active_traffic_log()
        self._noted: set[int] = set()

    @property
    def delay_s(self) -> float:
        """Bench time a delayed SCPI reply is late by, s."""
        return self.config.delay_s

    def active(self, kind: str, target: str, *, note: str = "") -> FaultSpec | None:
        """The fault of `kind` on `target` in force now (a one-shot fault is used up by this call)."""
        now = self.world.time_s
        with self._lock:
            for index, spec in enumerate(self.config.schedule):
                if spec.kind != kind or spec.target != target or now < spec.at_s:
                    continue
                if spec.duration_s > 0:
                    if now < spec.at_s + spec.duration_s:
                        if note:
                            self._event(now, spec, note)
                        self._note_fired(index, now, spec)
                        return spec
                elif index not in self._fired:
                    self._fired.add(index)
                    self._event(now, spec, note or "once")
                    self._note_fired(index, now, spec)
                    return spec
        return None

    def _note_fired(self, index: int, now: float, spec: FaultSpec) -> None:
        if index not in self._noted:
            self._noted.add(index)
            if self._log is not None:
                self._log.write("twin", "#", f"fault {index} fired: {spec.kind} on {spec.target} at {now:.3f} s")

    def _event(self, now: float, spec: FaultSpec, action: str) -> None:
        if len(self.events) < 10_000:  # a persistent fault must not grow without bound
            self.events.append(FaultEvent(now, spec.kind, spec.target, action))

    def count(self, kind: str | None = None) -> int:
        """How many fault events were injected (of `kind`)."""
        return sum(1 for e in self.events if kind is None or e.kind == kind)

    # ---- serial line

    def corrupt(self, target: str, data: bytes) -> bytes:
        """Bytes on position `target`'s line after the line faults now in force: dropped, or a bit flipped."""
        if not data or not self.config.schedule:
            return data
        drop = self.active("serial_drop", target)
        flip = self.active("serial_flip", target)
        if drop is None and flip is None:
            return data
        out = bytearray()
        for byte in data:
            if drop is not None and self.rng.random() < drop.rate:
                continue
            if flip is not None and self.rng.random() < flip.rate:
                byte ^= 1 << self.rng.randrange(8)
            out.append(byte)
        if bytes(out) != data:
            kinds = "/".join(k for k, s in (("serial_drop", drop), ("serial_flip", flip)) if s is not None)
            with self._lock:
                self.events.append(FaultEvent(self.world.time_s, kinds, target, f"{len(data)} byte(s) hit"))
        return bytes(out)

    def vanished(self, target: str) -> bool:
        """True while position `target`'s serial port is gone (a one-shot vanish drops the host once)."""
        return self.active("serial_vanish", target, note="port gone") is not None

    def ble_link_dropped(self, target: str) -> bool:
        """True while position `target`'s BLE link is down: the hook the twin's BLE peripheral asks."""
        return self.active("ble_drop", target, note="BLE link dropped") is not None

    # ---- the reference standard restarting (a stepped model: fires as bench time crosses at_s)

    def step(self, t0: float, dt: float, terminals: Terminals) -> None:
        """Restart the reference standard when a `reference_reset` falls in [t0, t0 + dt] (and at every
        step while a lasting one is in force)."""
        end = t0 + dt
        for index, spec in enumerate(self.config.schedule):
            if spec.kind != "reference_reset" or spec.at_s > end:
                continue
            if spec.duration_s > 0:
                if t0 >= spec.at_s + spec.duration_s:
                    continue
            elif index in self._fired:
                continue
            self._fired.add(index)
            self._event(max(t0, spec.at_s), spec, "reference standard restarted")
            self._note_fired(index, max(t0, spec.at_s), spec)
            for hook in self.on_reference_reset:
                hook()
