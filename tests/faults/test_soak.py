"""The soak benchmark itself, short: 3 runs with random bench faults, nothing lost, no wrong verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


def test_three_run_soak_loses_nothing_and_gives_no_wrong_verdict(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SOAK), "--runs", "3", "--jobs", "2", "--seed", "5",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    summary = json.loads(proc.stdout.split("soak:")[0])
    assert summary["runs_completed"] == 3 and summary["faults_injected"] >= 3
    assert summary["records_lost"] == 0 and summary["wrong_verdicts"] == 0
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("run-")]) == 3
