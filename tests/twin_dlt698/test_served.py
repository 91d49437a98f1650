"""Done-when of the twin's DL/T 698.45 side: `rig twin serve` exposes it on the meter's serial port, and a plain
script with the PyPI `dlt698` client (tests/twin_dlt698/plain_dlt698_client.py, no rig code) reads the energy
and the last minute-freeze record from it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dlt698")

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_plain_dlt698_script_reads_energy_and_last_minute_freeze_from_rig_twin_serve(tmp_path: Path) -> None:
    out = tmp_path / "served.yaml"
    serve = subprocess.Popen(
        [sys.executable, "-m", "rig.cli", "twin", "serve", "--set", "positions.0.serial=twin+pty",
         "--set", "twin.meter.dlt698.minute_freeze_period_min=1", "--speed", "60", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert serve.stdout is not None
        first_line = serve.stdout.readline()  # printed once the ports are open
        assert "twin serving" in first_line, serve.stderr.read() if serve.stderr else ""
        script = subprocess.run([sys.executable, str(HERE / "plain_dlt698_client.py"), str(out), "4"],
                                capture_output=True, text=True, timeout=60)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
    assert script.returncode == 0, script.stderr
    lines = script.stdout.splitlines()
    energy = next(line for line in lines if line.startswith("0010 0200"))
    total = int(energy.split("[")[1].split(",")[0])
    assert total > 0, energy  # 2.2 kW for a few bench minutes
    assert any(line.startswith("5002 0200 last minute-freeze record") for line in lines)
    frozen = next(line for line in lines if line.strip().startswith("00100200:"))
    after = next(line for line in lines if line.startswith("0010 0200 forward active energy after the record"))
    # frozen no later than the record was read: at most the energy read after it (a freeze may fall between reads)
    assert 0 < int(frozen.split("[")[1].split(",")[0]) <= int(after.split("[")[1].split(",")[0])
    sequence = next(line for line in lines if line.strip().startswith("20230200:"))
    assert int(sequence.split(":")[1]) >= 1
