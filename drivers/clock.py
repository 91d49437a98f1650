"""The one clock abstraction (drivers layer): `now`, `sleep`, `wait_until`, and deadlines.

On a bench it is the monotonic wall clock below; on the twin it is the twin's virtual clock, which
implements the same protocol. This module is the only place in the project that calls `time.sleep`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Bench time in seconds, and waiting on it."""

    def now(self) -> float:
        """Seconds of bench time since an arbitrary origin."""
        ...

    def sleep(self, duration_s: float) -> None:
        """Let `duration_s` seconds of bench time pass."""
        ...

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
        """Wait until `predicate()` is true or `timeout_s` has passed; return the last result."""
        ...

    def datetime_now(self) -> dt.datetime:
        """The bench's calendar time (local, naive): what a meter's clock should show."""
        ...


def poll_until(clock: Clock, predicate: Callable[[], bool], timeout_s: float, poll_s: float) -> bool:
    """Shared polling loop for clocks: check, sleep `poll_s` of bench time, until the deadline."""
    deadline = Deadline(clock, timeout_s)
    while True:
        if predicate():
            return True
        remaining = deadline.remaining_s()
        if remaining <= 0:
            return bool(predicate())
        clock.sleep(min(poll_s, remaining))


class WallClock:
    """The monotonic wall clock: what a real bench runs on."""

    def now(self) -> float:
        """Seconds from `time.monotonic()`."""
        return time.monotonic()

    def sleep(self, duration_s: float) -> None:
        """Block the caller for `duration_s` real seconds."""
        if duration_s > 0:
            time.sleep(duration_s)

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
        """Poll `predicate` every `poll_s` seconds until true or `timeout_s` elapsed."""
        return poll_until(self, predicate, timeout_s, poll_s)

    def datetime_now(self) -> dt.datetime:
        """Local calendar time of this machine (keep it NTP-synchronised on a bench)."""
        return dt.datetime.now()


class ManualClock:
    """Bench time that moves only when slept on: for drivers' and the rig's unit tests (a 300 s timeout takes no
    wall time), the same protocol as the bench's clocks. Its calendar starts at 2026-01-01 00:00."""

    def __init__(self, start_s: float = 0.0) -> None:
        self.t = start_s

    def now(self) -> float:
        """The bench seconds slept so far (from `start_s`)."""
        return self.t

    def sleep(self, duration_s: float) -> None:
        """Move bench time on by `duration_s` seconds at once."""
        self.t += max(duration_s, 0.0)

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
        """Poll `predicate` every `poll_s` bench seconds until true or `timeout_s` bench seconds passed."""
        return poll_until(self, predicate, timeout_s, poll_s)

    def datetime_now(self) -> dt.datetime:
        """2026-01-01 plus the bench seconds."""
        return dt.datetime(2026, 1, 1) + dt.timedelta(seconds=self.t)


class Deadline:
    """A point in bench time; ask how much is left rather than counting sleeps."""

    def __init__(self, clock: Clock, timeout_s: float) -> None:
        self._clock = clock
        self._end = clock.now() + timeout_s

    def remaining_s(self) -> float:
        """Seconds left before the deadline (negative once passed)."""
        return self._end - self._clock.now()

    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self.remaining_s() <= 0
