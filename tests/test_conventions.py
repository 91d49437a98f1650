"""The conventions a Python tool is expected to keep: `rig --version`, `python -m rig`, the pytest plugin
found through its `pytest11` entry point (once), the traffic through `logging`, and a run's measurements
exported to CSV and a LIMS-friendly JSON."""

from __future__ import annotations

import csv
import io
import json
import logging
import subprocess
import sys
from importlib.metadata import entry_points, version
from pathlib import Path

import pytest
from click.testing import CliRunner

from drivers.errors import LinkError
from drivers.retry import RetryPolicy
from drivers.transport import TRAFFIC_LOGGER, TrafficLog, recording_traffic
from rig.cli import main
from rig.export import CSV_COLUMNS, LIMS_FORMAT, to_csv, to_lims
from rig.results import Journal, Record, judge

ROOT = Path(__file__).resolve().parent.parent


def test_version_and_python_dash_m(tmp_path: Path) -> None:
    expected = f"rig {version('meter-hil-rig')}"
    assert CliRunner().invoke(main, ["--version"]).output.strip() == expected
    proc = subprocess.run([sys.executable, "-m", "rig", "--version"], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == expected, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "rig", "history", "--since", "yesterday", "--db", "sqlite://"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error:"), "the same command line, exit codes and all"


def test_pytest_finds_the_plugin_by_its_entry_point_once(tmp_path: Path) -> None:
    """Outside this repository (no conftest) pytest loads the rig's plugin from its entry point, once."""
    (plugin,) = [e for e in entry_points(group="pytest11") if e.value == "fixtures.plugin"]
    assert plugin.name == "fixtures.plugin", "named as the module, so conftest/-p find it registered already"
    (tmp_path / "test_x.py").write_text(
        "def test_plugin(request, pytestconfig):\n"
        "    manager = request.config.pluginmanager\n"
        "    import fixtures.plugin\n"
        "    names = [n for n, p in manager.list_name_plugin() if p is fixtures.plugin]\n"
        "    assert names == ['fixtures.plugin'], names\n"
        "    assert pytestconfig.getoption('rig_bench') is None  # the rig's options are there\n")
    # (`rig run` adds `-p fixtures.plugin` and this suite's conftest names it too: every run of either would
    # stop with "Plugin already registered" if that registered it a second time.)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_x.py"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_traffic_is_logging(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Each traffic line is a DEBUG record of the traffic logger (redacted before any handler sees it), the
    traffic file is a logging handler, and pyvisa's warnings reach it while a run records traffic."""
    secret = bytes.fromhex("00112233445566778899aabbccddeeff")
    path = tmp_path / "traffic.log"
    log = TrafficLog(path.open("w"), secrets=[secret])
    assert isinstance(log, logging.Handler)
    with caplog.at_level(logging.DEBUG, logger=TRAFFIC_LOGGER), recording_traffic(log):
        log.write("TCPIP::127.0.0.1::5025::SOCKET", ">", "*IDN?")
        log.write("ASRL1", ">", f"KEY {secret.hex()}")
        logging.getLogger("pyvisa").warning("could not set VI_ATTR_TERMCHAR")
    logging.getLogger("pyvisa").warning("after the run: not in its traffic")
    log.close()
    traffic = [r.getMessage() for r in caplog.records if r.name == TRAFFIC_LOGGER]
    assert traffic == ["TCPIP::127.0.0.1::5025::SOCKET > *IDN?",
                       "ASRL1 > <redacted: the message held key material>"]
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and log.lines == 3
    assert lines[0].endswith(" TCPIP::127.0.0.1::5025::SOCKET > *IDN?")
    assert lines[2].endswith(" pyvisa # WARNING: could not set VI_ATTR_TERMCHAR")
    assert secret.hex() not in path.read_text()


def test_traffic_not_logged_unless_asked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """At the default level the traffic only goes to its file (pytest's reports stay small)."""
    log = TrafficLog((tmp_path / "t.log").open("w"))
    with caplog.at_level(logging.WARNING):
        log.write("r", ">", "*IDN?")
    log.close()
    assert not [r for r in caplog.records if r.name == TRAFFIC_LOGGER]
    assert (tmp_path / "t.log").read_text().endswith("r > *IDN?\n")


def test_retries_and_bench_faults_are_logged(caplog: pytest.LogCaptureFixture, manual_clock: type) -> None:
    policy = RetryPolicy(manual_clock(), attempts=2, backoff_s=0.1)
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise LinkError("connection reset")
        return "ok"

    with caplog.at_level(logging.WARNING, logger="meter_hil_rig.retry"):
        assert policy.run("source", "OUTP?", flaky) == "ok"
        with pytest.raises(Exception, match="bench fault"):
            policy.run("source", "MEAS?", lambda: (_ for _ in ()).throw(LinkError("gone")))
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("WARNING", "source: 'OUTP?' failed (LinkError: connection reset); retried ok after 2 tries") in messages
    assert ("ERROR", "source: 'MEAS?' failed 2 times (LinkError: gone): bench fault") in messages


@pytest.fixture
def finished_run(tmp_path: Path) -> Path:
    """A run folder with a journal: two meters, one value failing, one bench-wide record."""
    folder = tmp_path / "reports" / "20261101-020000-abcdef"
    journal = Journal.in_folder(folder)
    run_id = folder.name
    journal.start_run(run_id, "lab-a", {"meter_type": {"nameplate": "220 V 5(60) A"}})
    session = journal.start_session(run_id, {"rig_version": "0.1.0"})
    rows = [("t.py::test_e[P1]", "P1", "error at Ib", 0.25, "%", -1.0, 1.0, "000000000001"),
            ("t.py::test_e[P2]", "P2", "error at Ib", 1.5, "%", -1.0, 1.0, "000000000002"),
            ("t.py::test_cal", None, "calibration days left", 120.0, "d", 0.0, None, None)]
    for test, position, quantity, value, unit, low, high, meter in rows:
        journal.add(run_id, Record(test, position, quantity, value, unit, low, high, judge(value, low, high), 3.5,
                                   meter=meter), session)
    journal.close()
    (folder / "results.json").write_text(json.dumps({"run_id": run_id}))
    (folder.parent / "latest").symlink_to(folder.name, target_is_directory=True)
    return folder


def test_export_csv(finished_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "exports" / "run.csv"
    result = CliRunner().invoke(main, ["export", "latest", "--reports", str(finished_run.parent), "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["meter"], r["quantity"], float(r["value"]), r["low"], r["high"], r["verdict"]) for r in rows] == [
        ("000000000001", "error at Ib", 0.25, "-1.0", "1.0", "pass"),
        ("000000000002", "error at Ib", 1.5, "-1.0", "1.0", "fail"),
        ("", "calibration days left", 120.0, "0.0", "", "pass")]
    assert {r["run_id"] for r in rows} == {finished_run.name} and {r["bench"] for r in rows} == {"lab-a"}
    assert not (finished_run / "run.csv").exists(), "nothing unsigned is added to the run folder"


def test_export_lims_json(finished_run: Path) -> None:
    result = CliRunner().invoke(main, ["export", str(finished_run), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["format"] == LIMS_FORMAT
    assert data["run"]["run_id"] == finished_run.name and data["run"]["rig_version"] == "0.1.0"
    assert data["run"]["meter_type"] == "220 V 5(60) A"
    samples = {s["sample_id"]: s for s in data["samples"]}
    assert set(samples) == {"000000000001", "000000000002", "bench"}
    assert samples["000000000002"]["verdict"] == "fail" and samples["000000000001"]["verdict"] == "pass"
    (result_,) = samples["000000000001"]["results"]
    assert result_ | {"measured_utc": None, "record_sm3": None} == {
        "test": "t.py::test_e[P1]", "parameter": "error at Ib", "value": 0.25, "unit": "%", "lower_limit": -1.0,
        "upper_limit": 1.0, "verdict": "pass", "measured_utc": None, "bench_time_s": 3.5, "record_seq": 1,
        "record_sm3": None}
    assert samples["bench"]["results"][0]["upper_limit"] is None
    journal = Journal.in_folder(finished_run, create=False)
    assert to_lims(journal, finished_run.name) == data and to_csv(journal, finished_run.name).count("\n") == 4


def test_export_bad_input(tmp_path: Path, finished_run: Path) -> None:
    result = CliRunner().invoke(main, ["export", "no-such-run", "--reports", str(tmp_path)])
    assert result.exit_code == 2 and "no journal" in result.stderr
    result = CliRunner().invoke(main, ["export", "latest", "--reports", str(finished_run.parent), "--format", "xls"])
    assert result.exit_code == 2
