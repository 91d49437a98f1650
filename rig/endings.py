"""How a run is stopped: SIGINT, SIGTERM and SIGHUP are recorded, and obeyed only where that is safe.

One process-wide `STOP`. `rig run` installs it first (so a signal before or after the pytest session is
deferred, never a traceback or click's "Aborted!"), the rig's pytest plugin installs it too (counted, so
nested installs restore nothing early). A signal always:

- is recorded (`STOP.received`): the session that saw one ends `interrupted` unless every item had
  completed, and `rig run` exits 130;
- tells the listeners (the plugin: stop after the current item);
- raises KeyboardInterrupt only inside `STOP.interruptible()` (the plugin: while test items run), so a
  measurement in progress is cut short. Everywhere else (opening the bench, driving the source safe,
  teardown, journaling, signing, writing reports) it is deferred: the ending runs to its end.

Deferred signals do not pile up into a forced exit; SIGKILL is the way to abandon a run at once, and
the dead-man's switch (rig.supervisor) drives the source safe then.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

CAUGHT = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """The record of stop signals this process received, and where they may raise."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.listeners: list[Callable[[str], None]] = []
        self._raising = False
        self._installs = 0
        self._previous: dict[int, Any] = {}

    @property
    def interrupted(self) -> bool:
        """True once any stop signal arrived."""
        return bool(self.received)

    def install(self) -> bool:
        """Handle SIGINT/SIGTERM/SIGHUP from now on (main thread only; False elsewhere, nothing changed)."""
        if threading.current_thread() is not threading.main_thread():
            return False
        if self._installs == 0:
            for signum in CAUGHT:
                self._previous[signum] = signal.signal(signum, self._handle)
        self._installs += 1
        return True

    def uninstall(self) -> None:
        """Undo one `install()`; the last one puts the previous handlers back."""
        if self._installs == 0:
            return
        self._installs -= 1
        if self._installs == 0:
            for signum, previous in self._previous.items():
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
            self._previous.clear()

    def reset(self) -> None:
        """Forget received signals (a new run in the same process)."""
        self.received.clear()

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Inside: a stop signal raises KeyboardInterrupt (one already received raises at once)."""
        previous, self._raising = self._raising, True
        try:
            if self.received:
                raise KeyboardInterrupt(f"stopped by {self.received[0]}")
            yield
        finally:
            self._raising = previous

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Inside: stop signals are recorded only (they take effect when the block has ended)."""
        previous, self._raising = self._raising, False
        try:
            yield
        finally:
            self._raising = previous

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        self.received.append(name)
        for listener in list(self.listeners):
            listener(name)
        if self._raising:
            self._raising = False  # one KeyboardInterrupt: the ending that follows is not cut again
            raise KeyboardInterrupt(f"stopped by {name}")
        # os.write, not print: the handler may run while the main thread is inside a print to stderr.
        with contextlib.suppress(OSError):
            os.write(2, f"rig: {name} received; finishing the run's ending first (source safe, journal, "
                        "reports)\n".encode())


STOP = StopSignals()
