"""A run on a labgrid place: hold it through the lease process for exactly as long as the run lives.

`held_place` is what `rig run --place NAME` wraps the run in: it starts the lease (rig.lab.lease), waits
for the place (a reservation, when asked), publishes the place's resources for the bench file's
`place:NAME` values (rig.config.place) and, on every ending, closes the lease's standard input and waits
until it has released the place. When the run dies instead, the kernel closes that input and the lease
releases the place all the same.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rig.config import ConfigError, apply_override, parse_override, read_bench_yaml
from rig.config.place import PLACE_RESOURCES_ENV, PlaceConfig
from rig.lab.lease import ACQUIRED, ERROR, WAITING
from rig.lab.resources import PlaceError


def place_of_bench(bench_file: str | Path | None, overrides: tuple[str, ...] | list[str]) -> PlaceConfig | None:
    """The bench file's `place:` section (overrides applied), read before the bench is validated: its
    `place:NAME` values can only be validated once the place is held."""
    if bench_file is None:
        return None
    data = read_bench_yaml(Path(bench_file))
    for text in overrides:
        path, value = parse_override(text)
        if path[0] == "place":
            apply_override(data, path, value)
    section = data.get("place")
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError(f"bench file {bench_file}: place must be a mapping (name, coordinator, wait)")
    try:
        return PlaceConfig.model_validate(section)
    except ValueError as exc:
        raise ConfigError(f"bench file {bench_file}: place: {exc}") from None


def identity(run_id: str) -> str:
    """The user name the coordinator sees for this run: `labgrid-client who` shows who runs what."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}:run-{run_id}"


class PlaceLease:
    """The run's side of the lease process: start it, read what it holds, end it."""

    def __init__(self, process: subprocess.Popen[str], place: str, coordinator: str) -> None:
        self.process = process
        self.place = place
        self.coordinator = coordinator
        self.resources: dict[str, str] = {}

    @classmethod
    def start(cls, place: str, coordinator: str, run_id: str, *, wait: bool) -> PlaceLease:
        command = [sys.executable, "-m", "rig.lab.lease", "--coordinator", coordinator, "--place", place,
                   "--identity", identity(run_id)] + (["--wait"] if wait else [])
        # Its own session: the terminal's Ctrl-C and hangup are the run's to handle, not the lease's.
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                   start_new_session=True, cwd=Path(__file__).resolve().parent.parent.parent)
        return cls(process, place, coordinator)

    def acquired(self, say: Callable[[str], None]) -> dict[str, str]:
        """Block until the lease holds the place: its resources; PlaceError with the coordinator's reason."""
        stream = self.process.stdout
        assert stream is not None
        for line in stream:
            kind, _, text = line.strip().partition(" ")
            if kind == WAITING:
                say(f"place {self.place} is in use: waiting ({text})")
            elif kind == ACQUIRED:
                self.resources = dict(json.loads(text)["resources"])
                return self.resources
            elif kind == ERROR:
                hint = "; `rig run --wait` waits for it" if "already acquired" in text else ""
                raise PlaceError(f"place {self.place} (coordinator {self.coordinator}): {text}{hint}")
        raise PlaceError(f"the lease process for place {self.place} ended without holding it "
                         f"(exit status {self.process.wait()})")

    def end(self, timeout_s: float = 60.0) -> int:
        """Close the lease's input and wait until it has given the place back; its exit status."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            status = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.terminate()  # SIGTERM: it releases at once
            status = self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return status


@contextlib.contextmanager
def held_place(place: PlaceConfig, run_id: str, say: Callable[[str], None],
               interruptible: Callable[[], contextlib.AbstractContextManager[Any]]) -> Iterator[dict[str, str]]:
    """Hold `place` for the block (waiting for it when `place.wait`); its resources are published in
    RIG_PLACE_RESOURCES meanwhile. `interruptible` is where a stop signal may cut the waiting short."""
    assert place.name is not None
    lease = PlaceLease.start(place.name, place.address(), run_id, wait=place.wait)
    previous = os.environ.get(PLACE_RESOURCES_ENV)
    held = False
    try:
        with interruptible():
            resources = _acquired_or_stopped(lease, say)
        held = True
        shown = ", ".join(f"{name}={value}" for name, value in sorted(resources.items())) or "no resources"
        say(f"place {place.name} acquired (coordinator {lease.coordinator}): {shown}")
        os.environ[PLACE_RESOURCES_ENV] = json.dumps({"place": place.name, "resources": resources})
        yield resources
    finally:
        if previous is None:
            os.environ.pop(PLACE_RESOURCES_ENV, None)
        else:
            os.environ[PLACE_RESOURCES_ENV] = previous
        status = lease.end()
        if held:
            say(f"place {place.name} released" if status == 0 else f"place {place.name}: the lease ended with "
                f"status {status}; check `labgrid-client -p {place.name} show`")


def _acquired_or_stopped(lease: PlaceLease, say: Callable[[str], None]) -> dict[str, str]:
    """lease.acquired, read in a thread so that a stop signal in the main thread is not held up by the read."""
    result: dict[str, Any] = {}
    done = threading.Event()

    def read() -> None:
        try:
            result["resources"] = lease.acquired(say)
        except PlaceError as exc:
            result["error"] = exc
        finally:
            done.set()

    threading.Thread(target=read, daemon=True, name="place-lease").start()
    while not done.wait(0.2):
        pass
    if "error" in result:
        raise result["error"]
    return dict(result["resources"])
