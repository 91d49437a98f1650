"""Benches shared through labgrid: a coordinator, a served twin exported by labgrid-exporter as a place, and
`rig run --place` processes that take turns on it, on loopback.

The lab test needs labgrid (the `lab` extra, in the test extra too). It skips, with the reason, when the
coordinator cannot start here; under CI=true it fails instead (CI installs labgrid with the test extra).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from rig.config import ConfigError, load_bench
from rig.config.place import PLACE_RESOURCES_ENV, PlaceConfig
from rig.lab.exporter import place_bench
from rig.lab.places import held_place
from rig.lab.resources import PlaceError, labgrid_resource, resources_from_env, rig_resource

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLACE = "bench-t"
# One quick point of the smoke plan: what is proved here is who holds the bench, not the meter.
PLAN = "testplans/smoke/test_bench.py::test_reference_calibration_valid"


# ------------------------------------------------------------------ resources and bench files (no labgrid)


@pytest.mark.parametrize(("cls", "params", "expected"), [
    ("PyVISADevice", {"type": "TCPIP", "url": "127.0.0.1::5025::SOCKET"}, "TCPIP::127.0.0.1::5025::SOCKET"),
    ("PyVISADevice", {"type": "TCPIP", "url": "127.0.0.1::5025"}, "TCPIP::127.0.0.1::5025::SOCKET"),
    ("PyVISADevice", {"type": "TCPIP", "url": "10.0.0.7"}, "TCPIP::10.0.0.7::INSTR"),
    ("PyVISADevice", {"type": "ASRL", "url": "/dev/ttyUSB0::INSTR"}, "ASRL::/dev/ttyUSB0::INSTR"),
    ("NetworkSerialPort", {"host": "127.0.0.1", "port": 7001, "speed": 2400, "protocol": "rfc2217"},
     "rfc2217://127.0.0.1:7001"),
    ("NetworkSerialPort", {"host": "127.0.0.1", "port": 7002, "protocol": "raw"}, "socket://127.0.0.1:7002"),
])
def test_exported_resource_becomes_the_rigs_resource_string(cls: str, params: dict[str, object],
                                                             expected: str) -> None:
    assert rig_resource(cls, params) == expected


def test_resources_the_rig_cannot_use_are_named() -> None:
    with pytest.raises(PlaceError, match="cannot use a labgrid USBSerialPort"):
        rig_resource("USBSerialPort", {"ID_SERIAL_SHORT": "x"})
    with pytest.raises(PlaceError, match="protocol 'telnet'"):
        rig_resource("NetworkSerialPort", {"host": "h", "port": 1, "protocol": "telnet"})
    with pytest.raises(PlaceError, match="labgrid cannot export"):
        labgrid_resource("/dev/ttyUSB0")


def test_exporter_entries_round_trip_through_labgrid_client_env() -> None:
    source = labgrid_resource("TCPIP::127.0.0.1::5025::SOCKET")
    port = labgrid_resource("rfc2217://127.0.0.1:7001", speed=2400)
    assert port == {"cls": "NetworkSerialPort", "host": "127.0.0.1", "port": 7001, "speed": 2400,
                    "protocol": "rfc2217"}
    # labgrid-client env lists each resource under its class, named unless the name is the class
    env = {"targets": {PLACE: {"resources": [
        {source.pop("cls"): {"name": "source", **source}}, {port.pop("cls"): {"name": "P1-uart", **port}}]}}}
    assert resources_from_env(env) == {"source": "TCPIP::127.0.0.1::5025::SOCKET",
                                       "P1-uart": "rfc2217://127.0.0.1:7001"}


def _served_bench(tmp_path: Path) -> Path:
    """The default twin bench with real-looking served addresses, as `rig twin serve` would print it."""
    data = yaml.safe_load((ROOT / "benches" / "twin.yaml").read_text())
    data["instruments"][0]["resource"] = "TCPIP::127.0.0.1::5025::SOCKET"
    data["instruments"][1]["resource"] = "TCPIP::127.0.0.1::5026::SOCKET"
    data["positions"][0]["serial"] = "rfc2217://127.0.0.1:7001"
    data["positions"][0]["expansion_tap"]["serial"] = "rfc2217://127.0.0.1:7002"
    path = tmp_path / "served.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_place_bench_needs_the_place_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exporter, document = place_bench(load_bench(_served_bench(tmp_path)), PLACE, "127.0.0.1:29999")
    assert exporter[PLACE]["source"] == {"cls": "PyVISADevice", "type": "TCPIP", "url": "127.0.0.1::5025::SOCKET"}
    assert exporter[PLACE]["P1-uart"]["speed"] == document["positions"][0]["line"]["baud"]
    assert document["instruments"][0]["resource"] == "place:source"
    assert document["place"] == {"name": PLACE, "coordinator": "127.0.0.1:29999"}
    bench_file = tmp_path / "place.yaml"
    bench_file.write_text(yaml.safe_dump(document))

    monkeypatch.delenv(PLACE_RESOURCES_ENV, raising=False)
    with pytest.raises(ConfigError, match=r"instruments\.0\.resource: 'place:source' is a resource of a labgrid "
                                          "place, but no place is held"):
        load_bench(bench_file)
    monkeypatch.setenv(PLACE_RESOURCES_ENV, '{"place": "bench-t", "resources": {"source": "TCPIP::h::1::SOCKET"}}')
    with pytest.raises(ConfigError, match=r"place bench-t exports no resource 'reference' \(it exports source\)"):
        load_bench(bench_file)
    held = {name: f"TCPIP::10.0.0.9::{n}::SOCKET" for n, name in enumerate(("source", "reference"))}
    held["P1-uart"], held["P1-tap"] = "rfc2217://10.0.0.9:7001", "rfc2217://10.0.0.9:7002"
    monkeypatch.setenv(PLACE_RESOURCES_ENV, json.dumps({"place": PLACE, "resources": held}))
    bench = load_bench(bench_file)
    assert bench.instrument("reference").resource == "TCPIP::10.0.0.9::1::SOCKET"
    assert bench.positions[0].serial == "rfc2217://10.0.0.9:7001"


# --------------------------------------------------------------------------------- a labgrid lab on loopback


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    pause = threading.Event()
    for _ in range(int(timeout_s / 0.2)):
        if condition():
            return
        pause.wait(0.2)
    raise AssertionError(f"not within {timeout_s:g} s: {what}")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run the labgrid lab test: {reason}", pytrace=False)
    pytest.skip(reason)


class Lab:
    """A coordinator, a served twin exported as place bench-t, and labgrid-client against them."""

    def __init__(self, folder: Path, coordinator: str) -> None:
        self.folder = folder
        self.coordinator = coordinator
        self.env = {**os.environ, "LG_COORDINATOR": coordinator}
        self.env.pop(PLACE_RESOURCES_ENV, None)
        self.processes: list[subprocess.Popen[str]] = []
        self.bench = folder / "bench-t.yaml"

    def client(self, *args: str, check: bool = True) -> str:
        done = subprocess.run([str(BIN / "labgrid-client"), *args], env=self.env, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0 or not check, f"labgrid-client {' '.join(args)}: {done.stderr}"
        return done.stdout

    def start(self, name: str, *command: str, cwd: Path = ROOT) -> subprocess.Popen[str]:
        log = (self.folder / f"{name}.log").open("w")
        process = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT, text=True, cwd=cwd,
                                   env=self.env)
        log.close()
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()

    def rig_run(self, name: str, *args: str) -> subprocess.Popen[str]:
        return self.start(name, sys.executable, "-m", "rig.cli", "run", "--bench", str(self.bench),
                          "--place", PLACE, "--reports", str(self.folder / "reports"), *args, PLAN)

    def holder(self) -> str:
        """Who holds the place ('' when free), as `labgrid-client show` says."""
        for line in self.client("-p", PLACE, "show").splitlines():
            if line.strip().startswith("acquired:"):
                value = line.split(":", 1)[1].strip()
                return "" if value == "None" else value
        return ""

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                process.send_signal(signal.SIGCONT)  # a run the test held still takes the SIGTERM now
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if not (BIN / "labgrid-coordinator").is_file():
        _unavailable(f"labgrid is not installed in {BIN} (pip install -e '.[test]')")
    the_lab = Lab(tmp_path, f"127.0.0.1:{_free_port()}")
    try:
        # The coordinator keeps its places and resources in its working folder: the test's own.
        coordinator = the_lab.start("coordinator", str(BIN / "labgrid-coordinator"), "--listen",
                                    the_lab.coordinator, cwd=tmp_path)

        def answers() -> bool:
            return coordinator.poll() is not None or subprocess.run(
                [str(BIN / "labgrid-client"), "places"], env=the_lab.env, capture_output=True, timeout=60,
                check=False).returncode == 0

        with contextlib.suppress(AssertionError):
            _until(answers, 60, "the coordinator answers")
        if coordinator.poll() is not None:
            _unavailable(f"labgrid-coordinator did not start: {the_lab.log('coordinator')[-500:]}")
        # The served twin registers its instruments and meter ports with an exporter it starts.
        the_lab.start("twin", sys.executable, "-m", "rig.cli", "twin", "serve", "--speed", "0", "--place", PLACE,
                      "--coordinator", the_lab.coordinator, "--start-exporter", "--out", str(the_lab.bench),
                      "--exporter-config", str(tmp_path / "exporter.yaml"))
        _until(lambda: the_lab.client("resources").count(f"twin-{PLACE}/{PLACE}/") >= 4, 90,
               f"the exporter publishes the twin's resources ({the_lab.log('twin')[-800:]})")
        # What a lab manager does once per bench: the place, its tags, and which resources belong to it.
        the_lab.client("-p", PLACE, "create")
        the_lab.client("-p", PLACE, "set-tags", "room=lab-2", "type=single-phase")
        the_lab.client("-p", PLACE, "add-match", f"twin-{PLACE}/{PLACE}/*/*")
        yield the_lab
    finally:
        the_lab.stop()


def test_an_unreachable_coordinator_is_named_and_nothing_is_held() -> None:
    if not (BIN / "labgrid-client").is_file():
        _unavailable(f"labgrid is not installed in {BIN} (pip install -e '.[test]')")
    said: list[str] = []
    address = f"127.0.0.1:{_free_port()}"  # nothing listens there
    with pytest.raises(PlaceError, match=rf"place bench-x \(coordinator {address}\): .*Could not connect"), \
            held_place(PlaceConfig(name="bench-x", coordinator=address), "r1", said.append, contextlib.nullcontext):
        pass
    assert said == []  # nothing claimed as acquired or released
    assert PLACE_RESOURCES_ENV not in os.environ


@pytest.mark.slow
def test_runs_take_turns_on_a_place_and_a_killed_run_leaves_it_free(lab: Lab) -> None:
    assert yaml.safe_load(lab.bench.read_text())["instruments"][0]["resource"] == "place:source"
    first = lab.rig_run("first")
    _until(lambda: "place bench-t acquired" in lab.log("first") or first.poll() is not None, 120,
           "the first run acquires the place")
    # Held still (SIGSTOP) while the others ask, however fast this machine is; its lease goes on holding.
    first.send_signal(signal.SIGSTOP)
    assert ":run-" in lab.holder(), lab.log("first")  # `labgrid-client who/show` name the run holding the bench
    assert "source=TCPIP::127.0.0.1::" in lab.log("first") and "P1-uart=rfc2217://127.0.0.1:" in lab.log("first")

    # A run that does not wait is refused at once (here the same code in this process: `rig run` prints the
    # message and exits 2), naming who holds the bench and how to wait; the second waits (a labgrid
    # reservation) while the first holds the place.
    second = lab.rig_run("second", "--wait")
    quitter = lab.rig_run("quitter", "--wait")
    said: list[str] = []
    with pytest.raises(PlaceError, match=r"place bench-t \(coordinator .*\): Place bench-t is already acquired by "
                                         r".*:run-.*; `rig run --wait` waits for it"), \
            held_place(PlaceConfig(name=PLACE, coordinator=lab.coordinator), "r0", said.append, contextlib.nullcontext):
        pass
    _until(lambda: "waiting" in lab.log("second") or second.poll() is not None, 120, "the second run waits")
    assert "place bench-t is in use: waiting" in lab.log("second"), lab.log("second")
    # Ctrl-C while waiting: exit 130, and its reservation does not outlive it (the second's turn comes).
    _until(lambda: "waiting" in lab.log("quitter") or quitter.poll() is not None, 120, "the third run waits")
    quitter.send_signal(signal.SIGINT)
    assert quitter.wait(timeout=120) == 130, lab.log("quitter")
    assert lab.client("reservations").count("name=bench-t") == 1  # the second's only
    first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=300) == 0, lab.log("first")
    assert "place bench-t released" in lab.log("first")
    assert second.wait(timeout=300) == 0, lab.log("second")
    log = lab.log("second")
    assert log.index("waiting") < log.index("place bench-t acquired") < log.index("1 passed"), log
    assert lab.holder() == ""
    assert "bench-t" not in lab.client("reservations")  # the waiting run's reservation is gone with it

    # SIGTERM while the run holds the place: the run ends interrupted (130) and gives the place back itself.
    stopped = lab.rig_run("stopped")
    _until(lambda: "place bench-t acquired" in lab.log("stopped") or stopped.poll() is not None, 120,
           "the next run acquires the place")
    stopped.terminate()
    assert stopped.wait(timeout=300) == 130, lab.log("stopped")
    assert "place bench-t released" in lab.log("stopped") and lab.holder() == ""

    # SIGKILL: nothing in the run survives to release the place; its lease process does.
    killed = lab.rig_run("killed", "--wait")
    _until(lambda: "place bench-t acquired" in lab.log("killed") or killed.poll() is not None, 120,
           "the next run acquires the place")
    assert lab.holder() != ""
    assert "waiting" not in lab.log("killed")  # --wait on a free place: no wait
    killed.kill()
    killed.wait()
    _until(lambda: lab.holder() == "", 60, "the killed run's place is released")

    # The bench file names its place itself: `rig bench check` holds it too while it opens the bench.
    check = lab.start("check", sys.executable, "-m", "rig.cli", "bench", "check", "--bench", str(lab.bench))
    assert check.wait(timeout=300) == 0, lab.log("check")
    assert "place bench-t acquired" in lab.log("check") and "place bench-t released" in lab.log("check")
    assert "source     TCPIP::127.0.0.1::" in lab.log("check"), lab.log("check")
    assert lab.holder() == ""
