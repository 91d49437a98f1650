"""The dead-man's switch: a small process that drives the source safe when the run that energises it dies.

A run's own signal handling covers SIGINT, SIGTERM and SIGHUP; nothing in a process survives SIGKILL
or the kernel's OOM killer. So every run on a bench with a real (or served) source starts this
supervisor beside it (`DeadMansSwitch.start`). The run holds the write end of the supervisor's
standard input; the kernel closes it however the run ends. The supervisor then:

- reads `bye` first (the run drove the source safe itself and closed the bench): it exits, touching nothing;
- reads end-of-file without `bye` (the run was killed, or could not confirm the source safe): it
  sends the dialect's output-off, current to zero, checks `OUTP?` reads off, notes what it did in the
  run's traffic log, and exits.

Where the transport allows a second session (TCP SCPI sockets), the supervisor opens its own at once
and holds it, so nothing has to be negotiated at the moment it matters. A serial (ASRL) port is
exclusive to the run while it lives; the kernel releases it when the run dies, and the supervisor opens
it then. GPIB/USB-TMC are treated like serial. The supervisor lives in its own session (process group):
the terminal's Ctrl-C and hangup do not reach it, so it is still there when the run it watches is gone.
It dies only by SIGKILL (or power loss): what remains then is the instrument's own communication
watchdog, where its dialect has one (drivers/source.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from drivers.clock import WallClock
from drivers.errors import RigError
from drivers.registry import SOURCES, source_driver
from drivers.source import PowerSource
from drivers.transport import PyVisaTransport, TrafficLog

BYE = "bye"
ARMED = "armed"
WHO = "dead-man's switch"


def holds_session(resource: str) -> bool:
    """True when the transport allows the supervisor a session of its own beside the run's (TCP sockets)."""
    return resource.upper().startswith("TCPIP")


@dataclass
class Watch:
    """What the supervisor watches over: one source, by its bench-file driver name."""

    resource: str
    driver: str
    traffic: Path | None = None
    attempts: int = 5
    retry_s: float = 0.2
    watchdog_s: float = 30.0  # the instrument's own watchdog delay, where its dialect has one
    feed_s: float = 10.0  # I/O on the supervisor's session this often keeps that watchdog from tripping


def build_source(watch: Watch) -> PowerSource:
    """The source driver on a session of the supervisor's own (not opened). No safety limits: it only
    switches the output off and the current to zero."""
    return source_driver(watch.driver).build(PyVisaTransport(watch.resource, timeout_s=2.0),
                                             max_voltage_v=float("inf"), max_current_a=float("inf"))


def _log(traffic: Path | None, direction: str, text: str) -> None:
    """A line in the run's traffic log (the run is gone or done: the file is ours now)."""
    print(f"rig supervisor: {text}", file=sys.stderr, flush=True)
    if traffic is None:
        return
    with contextlib.suppress(OSError), traffic.open("a", encoding="utf-8") as stream:
        TrafficLog(stream).write(WHO, direction, text)


def drive_safe(watch: Watch, source: PowerSource) -> bool:
    """Output off, current zero, and `OUTP?` reads off; retries (reconnecting) for a few attempts."""
    clock = WallClock()
    for attempt in range(1, watch.attempts + 1):
        try:
            source.transport.open()
            source.safe()
        except RigError as exc:
            _log(watch.traffic, "!", f"{watch.resource}: driving safe, attempt {attempt}: {exc}")
            source.transport.close()
            clock.sleep(watch.retry_s)
            continue
        _log(watch.traffic, "#", f"{watch.resource}: the run ended without saying it left the source safe; "
                                 f"sent {source.dialect.output_off!r}, current 0: output reads off")
        return True
    return False


class Stopped(Exception):
    """SIGTERM to the supervisor itself: the lab is stopping everything; drive safe now."""


def wait_for_run(stdin_fd: int, feed: Callable[[], None] | None, every_s: float) -> bool:
    """Block until the run says `bye` (True) or its end of the pipe closes (False); meanwhile call `feed`
    every `every_s` (the instrument's watchdog)."""
    pending = b""
    while True:
        ready, _, _ = select.select([stdin_fd], [], [], every_s if feed is not None else None)
        if not ready:
            if feed is not None:
                with contextlib.suppress(RigError):
                    feed()
            continue
        chunk = os.read(stdin_fd, 4096)
        if not chunk:
            return False
        pending += chunk
        if any(line.strip() == BYE.encode() for line in pending.split(b"\n")[:-1]):
            return True


def supervise(watch: Watch, stdin_fd: int, stdout: IO[str], source: PowerSource | None = None) -> int:
    """Arm, then wait for the run: exit 0 after `bye` or after driving the source safe, 1 when that failed."""
    source = source if source is not None else build_source(watch)
    how, watchdog = "holding its own session", False
    if holds_session(watch.resource):
        try:
            source.transport.open()
        except RigError as exc:
            how = f"could not open a session of its own now ({exc}); will open one when needed"
        else:
            try:
                watchdog = source.arm_watchdog(watch.watchdog_s)
            except RigError as exc:
                how += f"; the instrument's communication watchdog is not armed ({exc})"
            if watchdog:
                how += f"; instrument watchdog armed ({watch.watchdog_s:g} s)"
    else:
        how = "will open the port when the run has released it"
    stdout.write(f"{ARMED} {watch.resource}: {how}\n")
    stdout.flush()
    try:
        said_bye = wait_for_run(stdin_fd, source.feed_watchdog if watchdog else None, watch.feed_s)
    except Stopped:
        said_bye = False
    ok = True if said_bye else drive_safe(watch, source)
    if watchdog and ok:
        with contextlib.suppress(RigError):
            source.disarm_watchdog()  # an idle instrument must not latch its protection before the next run
    source.transport.close()
    if not ok:
        _log(watch.traffic, "!", f"{watch.resource}: could NOT drive the source safe; switch it off by hand")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rig.supervisor", description=__doc__.split("\n")[0])
    parser.add_argument("--resource", required=True)
    parser.add_argument("--driver", required=True, choices=sorted(SOURCES), help="the bench file's source driver")
    parser.add_argument("--traffic", type=Path, default=None, help="the run's traffic log (appended to)")
    args = parser.parse_args(argv)
    # Terminal signals belong to the run; a SIGTERM to the supervisor itself means the lab is stopping
    # everything: stop waiting and drive safe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def _terminate(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough: the rest must not cut driving safe
        raise Stopped

    signal.signal(signal.SIGTERM, _terminate)
    watch = Watch(resource=args.resource, driver=args.driver, traffic=args.traffic)
    return supervise(watch, sys.stdin.fileno(), sys.stdout)


class DeadMansSwitch:
    """The run's side: start the supervisor, tell it the run ended safe, or just die (it acts then)."""

    def __init__(self, process: subprocess.Popen[str], resource: str) -> None:
        self.process = process
        self.resource = resource
        self.armed: str | None = None

    @classmethod
    def start(cls, resource: str, driver: str, *, traffic: Path | None = None,
              ready_timeout_s: float = 20.0) -> DeadMansSwitch:
        """Start the supervisor for `resource` and wait until it is armed (RigError when it is not)."""
        command = [sys.executable, "-m", "rig.supervisor", "--resource", resource, "--driver", driver]
        if traffic is not None:
            command += ["--traffic", str(traffic)]
        # Its own session: the terminal's Ctrl-C/hangup goes to the run's process group, not to it.
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                   start_new_session=True, cwd=Path(__file__).resolve().parent.parent)
        switch = cls(process, resource)
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(process.stdout.readline() if process.stdout else ""),
                                  daemon=True)
        reader.start()
        reader.join(ready_timeout_s)
        line = first[0].strip() if first else ""
        if not line.startswith(ARMED):
            switch.stand_down(safe=False)
            raise RigError(f"the dead-man's switch for {resource} did not start"
                           + (f" (it said {line!r})" if line else f" within {ready_timeout_s:g} s"))
        switch.armed = line
        return switch

    def stand_down(self, *, safe: bool, timeout_s: float = 15.0) -> None:
        """The run is ending: `safe` when it confirmed the source off (the supervisor just exits), else the
        supervisor drives it safe itself. Waits for the supervisor to exit (no orphan)."""
        stdin = self.process.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError, ValueError):
                if safe:
                    stdin.write(BYE + "\n")
                    stdin.flush()
            with contextlib.suppress(OSError, ValueError):
                stdin.close()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
