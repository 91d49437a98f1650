"""The bench's life in a session: opened with its traffic log and dead-man's switch, driven safe (the first
step of every ending), closed. Stop signals wait while the bench opens, is driven safe or closes."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

from drivers.errors import RigError
from drivers.transport import TrafficLog, recording_traffic
from rig.bench import Bench, open_bench
from rig.config import BenchConfig, ConfigError
from rig.endings import STOP
from rig.supervisor import DeadMansSwitch


class BenchLife:
    """The opened bench (None before and when it could not open), its traffic log and its switch."""

    def __init__(self) -> None:
        self.opened: Bench | None = None
        self.start_s = 0.0
        self.traffic: TrafficLog | None = None
        self.switch: DeadMansSwitch | None = None
        self.safe_confirmed = False
        self.closed = False  # closed at the end: driving safe again would talk to closed instruments
        self.safe_problem: str | None = None

    def time_s(self) -> float:
        """Bench seconds since the bench opened (0 before)."""
        if self.opened is None:
            return 0.0
        return self.opened.clock.now() - self.start_s

    def note(self, marker: str, text: str) -> None:
        """A run event in the traffic log (when there is one)."""
        if self.traffic is not None:
            self.traffic.write("rig", marker, text)

    def open_traffic(self, path: Path, config: BenchConfig, heading: str) -> TrafficLog:
        """The session's traffic log; every key of the bench file is masked in it."""
        secrets = []
        for ref in config.keys.values():
            with contextlib.suppress(ConfigError):
                secrets.append(ref.read())
        self.traffic = TrafficLog(path.open("a", encoding="utf-8"), secrets=secrets)
        self.traffic.write("rig", "#", heading)
        return self.traffic

    def open(self, config: BenchConfig, switch_traffic: Path | None) -> dict[str, Any]:
        """Open the bench (its traffic recorded) and arm the dead-man's switch; a signal meanwhile takes
        effect once it is open and watched, never half-way. Returns the switch's state for the session's
        metadata (nothing when the source does not outlive this process)."""
        with STOP.deferred():
            with recording_traffic(self.traffic) if self.traffic is not None else contextlib.nullcontext():
                opened = open_bench(config)
            self.opened = opened
            return self._arm_switch(opened, switch_traffic)

    def started(self) -> None:
        """Bench time starts now (traffic lines are stamped with it)."""
        opened = self.opened
        assert opened is not None, "the bench is open"
        self.start_s = opened.clock.now()
        if self.traffic is not None:
            self.traffic.attach_clock(lambda: opened.clock.now() - self.start_s)

    def _arm_switch(self, bench: Bench, traffic: Path | None) -> dict[str, Any]:
        """Start the dead-man's switch for a source that outlives this process (not the embedded twin's)."""
        if not bench.provider.source_outlives_run:
            return {}  # a source simulated in this process dies with it
        try:
            self.switch = DeadMansSwitch.start(bench.source.resource, bench.config.instrument("source").driver,
                                               traffic=traffic)
        except RigError as exc:
            note = f"dead-man's switch not armed: {exc}; a SIGKILL of this run would leave the source as it is"
            sys.stderr.write(f"rig: warning: {note}\n")
            self.note("#", note)
            return {"dead_mans_switch": note}
        self.note("#", f"dead-man's switch {self.switch.armed}")
        return {"dead_mans_switch": self.switch.armed}

    def drive_safe(self) -> None:
        """Source output off, confirmed (`OUTP?` reads off): the first step of every ending. Never raises."""
        if self.opened is None or self.safe_confirmed or self.closed:
            return
        with STOP.deferred():
            try:
                self.opened.safe()
                self.safe_confirmed = True
            except Exception as exc:  # noqa: BLE001 - the ending goes on; the switch and close() try again
                self.safe_problem = f"driving the source safe failed: {exc}"
                sys.stderr.write(f"rig: {self.safe_problem}\n")
                self.note("!", self.safe_problem)

    def close(self) -> None:
        """Close the bench (output off again, instruments closed) and stand the dead-man's switch down: it
        only exits when the source was confirmed off, else it drives the source safe itself."""
        if self.opened is None or self.closed:
            return
        self.drive_safe()  # first, and confirmed, whatever closing the instruments then does
        with STOP.deferred():
            closed = False
            try:
                self.opened.close()
                closed = True
            finally:
                self.closed = True
                switch, self.switch = self.switch, None
                if switch is not None:
                    switch.stand_down(safe=closed or self.safe_confirmed)
