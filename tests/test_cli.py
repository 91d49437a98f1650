"""The `rig` command line end to end: run, twin serve (reached by plain pyvisa), SIGTERM, bench check."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rig.twin.control import RemoteTwinControl

HERE = Path(__file__).resolve().parent
RIG = [sys.executable, "-m", "rig.cli"]


def rig(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RIG, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, dict]]:
    """`rig twin serve` in its own process; yields the ready bench file and its parsed content."""
    out = tmp_path / "served.yaml"
    proc = subprocess.Popen([*RIG, "twin", "serve", "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first_line = proc.stdout.readline()  # printed once the ports are open
        assert "twin serving" in first_line, proc.stderr.read()
        yield out, yaml.safe_load(out.read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_run_default_bench_writes_reports(tmp_path: Path) -> None:
    proc = rig("run", "testplans/smoke", "--reports", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    latest = tmp_path / "latest"
    assert {"report.html", "junit.xml", "results.json", "journal.sqlite"} <= {p.name for p in latest.iterdir()}
    results = json.loads((latest / "results.json").read_text())
    assert results["verdict"] == "pass"
    assert results["bench_s"] > 10 and results["wall_s"] > 0
    assert results["instruments"][1]["calibration_due"] == "2099-12-31"
    assert results["positions"][0]["address"] == "000000000001"
    fields = {"test", "position", "quantity", "value", "unit", "low", "high", "verdict", "bench_time_s"}
    assert results["records"] and all(fields <= set(r) for r in results["records"])
    assert "bench 0:00:" in proc.stderr, "progress lines show bench time"


def test_run_with_a_defect_exits_1_and_says_why(tmp_path: Path) -> None:
    proc = rig("run", "testplans/smoke", "--reports", str(tmp_path),
               "--set", "twin.meter.metering.constant_error_pct=30")
    assert proc.returncode == 1
    results = json.loads((tmp_path / "latest" / "results.json").read_text())
    assert results["verdict"] == "fail"
    failed = [r for r in results["records"] if r["verdict"] == "fail"]
    assert [r["quantity"] for r in failed] == ["pulses in ten nominal periods"]


def test_unknown_plan_is_usage_error(tmp_path: Path) -> None:
    proc = rig("run", "testplans/no_such_plan", "--reports", str(tmp_path))
    assert proc.returncode == 2 and "no test plan" in proc.stderr


def test_plain_pyvisa_client_reaches_served_twin(served: tuple[Path, dict]) -> None:
    _, bench = served
    resource = next(i["resource"] for i in bench["instruments"] if i["role"] == "source")
    script = textwrap.dedent(f"""
        import pyvisa
        inst = pyvisa.ResourceManager("@py").open_resource(
            "{resource}", read_termination="\\n", write_termination="\\n", timeout=2000)
        print(inst.query("*IDN?"))
        inst.write("SOUR:VOLT 231.5")
        print(inst.query("SOUR:VOLT?"))
        inst.write("SOUR:VOLT 5000")
        print(inst.query("SYST:ERR?"))
        print(inst.query("SYST:ERR?"))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": ""}, cwd="/")
    assert proc.returncode == 0, proc.stderr
    idn, volts, error, no_error = proc.stdout.splitlines()
    assert idn.startswith("Meter HIL Twin,PhantomSource")
    assert float(volts) == 231.5
    assert error == '-222,"Data out of range"'
    assert no_error == '0,"No error"'


def test_run_against_served_twin(served: tuple[Path, dict], tmp_path: Path) -> None:
    path, bench = served
    assert bench["clock"].startswith("twin+tcp://127.0.0.1:")
    proc = rig("run", "--bench", str(path), "testplans/smoke", "--reports", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    state = RemoteTwinControl(bench["clock"].removeprefix("twin+")).state()
    assert state["output_on"] is False, "the run ends with the source safe"
    assert state["meters"][0]["pulses"] > 0


def test_sigterm_mid_plan_leaves_source_off(served: tuple[Path, dict], tmp_path: Path) -> None:
    path, bench = served
    control = RemoteTwinControl(bench["clock"].removeprefix("twin+"))
    run = subprocess.Popen([*RIG, "run", "--bench", str(path), str(HERE / "data" / "hold_plan.py"),
                            "--reports", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        energised = False
        for _ in range(600):  # wait (wall time) until the plan is holding, energised, past its record
            if run.poll() is not None:
                break
            state = control.state()
            if state["output_on"] and state["time_s"] > 120:
                energised = True
                break
            subprocess.run(["sleep", "0.05"], check=True)
        assert energised, run.stderr.read() if run.poll() is not None else "output never switched on"
        run.send_signal(signal.SIGTERM)
        code = run.wait(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert code == 130
    assert control.state()["output_on"] is False
    results = json.loads((tmp_path / "latest" / "results.json").read_text())
    assert results["verdict"] == "interrupted"
    assert [r["quantity"] for r in results["records"]] == ["energised"], "completed records are kept"


def test_twin_knobs_lists_every_metering_knob() -> None:
    proc = rig("twin", "knobs")
    assert proc.returncode == 0
    for knob in ("gain_error_pct", "phase_error_deg", "start_current_a", "creep_w", "constant_error_pct",
                 "voltage_sensitivity_pct_per_pct", "frequency_sensitivity_pct_per_pct", "noise_pct"):
        assert f"twin.meter.metering.{knob}" in proc.stdout


def test_bench_check_reports_identity_and_expired_calibration() -> None:
    ok = rig("bench", "check")
    assert ok.returncode == 0, ok.stderr
    assert "TWIN-CAL-0001, due 2099-12-31" in ok.stderr and "position   P1" in ok.stderr
    expired = rig("bench", "check", "--set", "twin.reference.calibration_due=2020-01-01")
    assert expired.returncode == 2
    assert "expired on 2020-01-01" in expired.stderr
