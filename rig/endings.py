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
        self._terminals: set[str] = set()  # the terminal(s) the run writes to (gone after a hangup)

    @property
    def interrupted(self) -> bool:
        """True once any stop signal arrived."""
        return bool(self.received)

    def install(self) -> bool:
        """Handle SIGINT/SIGTERM/SIGHUP from now on (main thread only; False elsewhere, nothing changed)."""
        if threading.current_thread() is not threading.main_thread():
            return False
        if self._installs == 0:
            for fd in (0, 1, 2):
                with contextlib.suppress(OSError):
                    if os.isatty(fd):
                        self._terminals.add(os.ttyname(fd))
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
        if signum == signal.SIGHUP:
            _detach_from_terminal(self._terminals)
        for listener in list(self.listeners):
            listener(name)
        if self._raising:
            self._raising = False  # one KeyboardInterrupt: the ending that follows is not cut again
            raise KeyboardInterrupt(f"stopped by {name}")
        # os.write, not print: the handler may run while the main thread is inside a print to stderr.
        with contextlib.suppress(OSError):
            os.write(2, f"rig: {name} received; finishing the run's ending first (source safe, journal, "
                        "reports)\n".encode())


def _detach_from_terminal(terminals: set[str]) -> None:
    """The terminal hung up: every write to it now fails (EIO) and would break the ending half-way. Every
    descriptor still on it (standard streams, and the copies pytest's output capture keeps) goes to
    /dev/null; what the run still has to say is in the journal, results.json and the reports."""
    if not terminals:
        return
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: the standard streams at least
        fds = [0, 1, 2]
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in fds:
            with contextlib.suppress(OSError):
                # a hung-up pseudo-terminal's node may be gone already: "/dev/pts/3 (deleted)"
                if fd != devnull and os.readlink(f"/proc/self/fd/{fd}").removesuffix(" (deleted)") in terminals:
                    os.dup2(devnull, fd)
        os.close(devnull)


STOP = StopSignals()
