"""The place lease: a small process that holds a labgrid place for one run and gives it back however the
run ends.

A labgrid place stays acquired until someone releases it; the coordinator does not notice that the
client that acquired it is gone. A run that is killed (SIGKILL, the OOM killer, a power cut of the
controlling PC aside) would leave the bench locked for everyone. So the run never acquires the place
itself: it starts this process (`rig.lab.places.PlaceLease`), which

1. asks for the place: with `--wait`, a labgrid reservation for it (filter name=PLACE) first, waiting
   until the coordinator allocates it (the run that holds it now releases it);
2. acquires it, reads its resources (`labgrid-client env`) and writes one line to the run:
   `acquired {json}` (or `error <message>`; `waiting <message>` lines while it waits);
3. waits for its standard input to close: the run closes it when it ends, and the kernel closes it when
   the run dies however it dies;
4. releases the place and cancels its reservation, then exits.

It talks to the coordinator through `labgrid-client` (labgrid's documented command line), under an
identity of its own for the coordinator (LG_USERNAME `<user>:run-<run id>`): `labgrid-client who` shows
which run holds a bench, and one run can never release a place another run holds. Like the dead-man's
switch (rig.supervisor) it lives in its own session: the terminal's Ctrl-C and hangup go to the run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from rig.lab.resources import PlaceError, resources_from_env

ACQUIRED = "acquired"
WAITING = "waiting"
ERROR = "error"
CLIENT_TIMEOUT_S = 30.0
_TOKEN_RE = re.compile(r"token: (\w+)")


class Stopped(Exception):
    """SIGTERM to the lease itself: give the place back now."""


def client_command() -> list[str]:
    """labgrid-client, next to this Python first (a venv), else on PATH; PlaceError when labgrid is missing."""
    beside = Path(sys.executable).parent / "labgrid-client"
    found = str(beside) if beside.is_file() else shutil.which("labgrid-client")
    if found is None:
        raise PlaceError("labgrid is not installed (no labgrid-client): pip install 'meter-hil-rig[lab]'")
    return [found]


class Client:
    """labgrid-client against one coordinator under one identity."""

    def __init__(self, coordinator: str, identity: str) -> None:
        self.command = client_command()
        self.env = {**os.environ, "LG_COORDINATOR": coordinator, "LG_USERNAME": identity}
        self.env.pop("LG_TOKEN", None)
        self.env.pop("LG_PLACE", None)

    def run(self, *args: str) -> str:
        """Its standard output; PlaceError with labgrid's own message when it fails."""
        try:
            done = subprocess.run([*self.command, *args], env=self.env, capture_output=True, text=True,
                                  timeout=CLIENT_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise PlaceError(f"labgrid-client {' '.join(args)}: no answer from the coordinator "
                             f"{self.env['LG_COORDINATOR']} within {CLIENT_TIMEOUT_S:g} s") from None
        if done.returncode != 0:
            lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
            ours = [line for line in lines if line.startswith("labgrid-client: Error: ")]
            text = (ours or lines or [f"exit status {done.returncode}"])[-1]
            raise PlaceError(text.removeprefix("labgrid-client: Error: "))
        return done.stdout

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([*self.command, *args], env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)


def say(kind: str, text: str) -> None:
    print(f"{kind} {text}", flush=True)


def stdin_closed(fd: int, timeout_s: float | None) -> bool:
    """True when the run's end of the pipe closed (it ended or died) within `timeout_s` (None: wait for it)."""
    ready, _, _ = select.select([fd], [], [], timeout_s)
    if not ready:
        return False
    while True:  # anything the run writes is ignored: only the close counts
        chunk = os.read(fd, 4096)
        if not chunk:
            return True
        ready, _, _ = select.select([fd], [], [], 0)
        if not ready:
            return False


def wait_allocated(client: Client, token: str, stdin_fd: int) -> bool:
    """Wait until the coordinator allocates the reservation (True) or the run goes away (False)."""
    waiter = client.popen("wait", token)
    try:
        while waiter.poll() is None:
            if stdin_closed(stdin_fd, 0.5):
                return False
        if waiter.returncode != 0:
            raise PlaceError(f"waiting for reservation {token} failed: "
                             f"{(waiter.stderr.read() if waiter.stderr else '').strip() or waiter.returncode}")
        return True
    finally:
        if waiter.poll() is None:
            waiter.kill()
        waiter.wait()
        if waiter.stderr is not None:
            waiter.stderr.close()


def hold(client: Client, place: str, wait: bool, stdin_fd: int) -> int:
    """Steps 1 to 4 of the module's description; the exit code."""
    token: str | None = None
    acquired = False
    try:
        if wait:
            reservation = client.run("reserve", f"name={place}")
            found = _TOKEN_RE.search(reservation)
            if found is None:
                raise PlaceError(f"labgrid-client reserve name={place} gave no token")
            token = found.group(1)
            if "state: allocated" not in reservation:
                say(WAITING, f"labgrid reservation {token}")
            if not wait_allocated(client, token, stdin_fd):
                return 0
        client.run("-p", place, "acquire")
        acquired = True
        resources = resources_from_env(yaml.safe_load(client.run("-p", place, "env")))
        say(ACQUIRED, json.dumps({"place": place, "resources": resources, "token": token}))
        while not stdin_closed(stdin_fd, None):
            pass
        return 0
    except PlaceError as exc:
        say(ERROR, str(exc))
        return 1
    except (Stopped, BrokenPipeError):  # SIGTERM, or the run is gone before it could read the answer
        return 0
    finally:
        _give_back(client, place, acquired, token)


def _give_back(client: Client, place: str, acquired: bool, token: str | None) -> None:
    """Release the place and cancel the reservation; tell stderr when that fails (someone must release it)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # giving back must run to its end
    if acquired:
        try:
            client.run("-p", place, "release")
        except PlaceError as exc:
            print(f"rig place lease: could NOT release place {place}: {exc}", file=sys.stderr, flush=True)
    if token is not None:
        with contextlib.suppress(PlaceError):
            client.run("cancel-reservation", token)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rig.lab.lease", description=__doc__.split("\n")[0])
    parser.add_argument("--coordinator", required=True, help="HOST:PORT of the labgrid coordinator")
    parser.add_argument("--place", required=True)
    parser.add_argument("--identity", required=True, help="the user name the coordinator sees (LG_USERNAME)")
    parser.add_argument("--wait", action="store_true", help="wait for the place (a reservation) when it is in use")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def _terminate(signum: int, frame: object) -> None:
        raise Stopped

    signal.signal(signal.SIGTERM, _terminate)
    try:
        client = Client(args.coordinator, args.identity)
    except PlaceError as exc:
        say(ERROR, str(exc))
        return 1
    return hold(client, args.place, args.wait, sys.stdin.fileno())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
