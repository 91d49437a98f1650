"""What a wrong instrument address says, on real loopback sockets: a refused connection, a resource name
that is not one, a web server where the instrument should be, something silent; and an `--set` typo is
blamed on the override, not on the bench file."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from drivers.errors import AddressError, ConnectionRefused, InstrumentTimeout
from drivers.source import PowerSource
from drivers.transport import LoggedTransport, PyVisaTransport, TrafficLog


def _free_port() -> int:
    with socket.socket() as s:  # bound and closed again: nothing listens there
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server() -> Iterator[int]:
    """Python's own web server in its own process, on a loopback port."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N ..." once it listens
        assert f"port {port}" in line, line
        yield port
    finally:
        proc.kill()
        proc.wait()


def _source(resource: str) -> PowerSource:
    return PowerSource(PyVisaTransport(resource, timeout_s=0.5), max_voltage_v=264, max_current_a=72)


def test_refused_connection_says_so() -> None:
    port = _free_port()
    resource = f"TCPIP::127.0.0.1::{port}::SOCKET"
    with pytest.raises(ConnectionRefused, match=re.escape(f"connection refused at {resource}")) as caught:
        _source(resource).open()
    assert not isinstance(caught.value, InstrumentTimeout)


@pytest.mark.parametrize(("resource", "says"), [
    ("TCPIP::127.0.0.1:5025::SOCKET", "port part is mandatory"),
    ("TCIP::127.0.0.1::5025::SOCKET", "unknown interface type"),
    ("127.0.0.1:5025", "unknown interface type"),
    ("TCPIP::127.0.0.1::abc::SOCKET", "the socket port 'abc' is not a number"),
])
def test_mistyped_resource_is_named(resource: str, says: str) -> None:
    with pytest.raises(AddressError) as caught:
        _source(resource).open()
    message = str(caught.value)
    assert f"{resource!r} is not a VISA resource name" in message and says in message
    assert "TCPIP::192.168.1.20::5025::SOCKET" in message, "an example of the right shape"
    assert "read_termination" not in message


def test_web_server_is_not_a_scpi_instrument(http_server: int) -> None:
    resource = f"TCPIP::127.0.0.1::{http_server}::SOCKET"
    transport = PyVisaTransport(resource, timeout_s=1.0)
    with pytest.raises(AddressError, match=re.escape(f"{resource} is not a SCPI instrument: a web (HTTP) server "
                                                     "answers there")):
        _source(resource).open()
    with pytest.raises(AddressError):
        transport.open()
    with pytest.raises(Exception, match="not open"):
        transport.query("*IDN?")  # the failed open left nothing half-open


def test_idn_is_the_first_message_and_a_device_without_it_is_refused() -> None:
    """A line server that echoes: the first thing it hears is *IDN?, and an echo is not an identity."""
    heard: list[bytes] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def echo() -> None:
            conn, _ = listener.accept()
            with conn:
                data = conn.recv(100)
                heard.append(data)
                conn.sendall(data)

        thread = threading.Thread(target=echo, daemon=True)
        thread.start()
        with pytest.raises(AddressError, match=r"its reply is not 'maker,model,serial,firmware' "
                                               r"\(reply to \*IDN\?: '\*IDN\?'\)"):
            _source(f"TCPIP::127.0.0.1::{port}::SOCKET").open()
        thread.join(5)
    assert heard == [b"*IDN?\n"]


def test_silent_instrument_times_out_on_its_identity() -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(InstrumentTimeout, match=r"no reply to '\*IDN\?' within 0.5 s"):
            _source(f"TCPIP::127.0.0.1::{port}::SOCKET").open()


def test_set_typo_names_the_override_not_the_bench_file() -> None:
    from rig.cli import main

    result = CliRunner().invoke(main, ["bench", "check", "--set", "twin.meter.metering.gian_error_pct=1"])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: --set twin.meter.metering.gian_error_pct: unknown key"), line
    assert "bench file" not in line.replace("README 'Bench file'", "")
    result = CliRunner().invoke(main, ["bench", "check", "--set", "positions.0.address=zz"])
    assert "--set positions.0.address: address 'zz' must be 12 decimal digits" in result.stderr


def test_the_identity_check_is_in_the_traffic_log(tmp_path: Path) -> None:
    """A line server answering *IDN? like an instrument: the session opens, and traffic.log shows the check."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def instrument() -> None:
            conn, _ = listener.accept()
            with conn:
                if conn.recv(100) == b"*IDN?\n":
                    conn.sendall(b"ACME,PS-9,SN42,1.0\n")
                conn.recv(100)  # until the client closes

        thread = threading.Thread(target=instrument, daemon=True)
        thread.start()
        resource = f"TCPIP::127.0.0.1::{port}::SOCKET"
        log = TrafficLog((tmp_path / "traffic.log").open("w"))
        transport = LoggedTransport(PyVisaTransport(resource, timeout_s=1.0), log)
        transport.open()
        transport.close()
        thread.join(5)
        log.close()
    lines = [line.split(" ", 2)[2] for line in (tmp_path / "traffic.log").read_text().splitlines()]
    assert lines[:3] == [f"{resource} # open", f"{resource} > *IDN?", f"{resource} < ACME,PS-9,SN42,1.0"]
