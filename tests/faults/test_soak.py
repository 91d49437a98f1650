"""The soak benchmark itself, short: 3 runs with random bench faults, nothing lost, no wrong verdict; and
only faults that fired (the twin's note in traffic.log) count as fired or survived."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


def soak_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_three_run_soak_loses_nothing_and_gives_no_wrong_verdict(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SOAK), "--runs", "3", "--jobs", "2", "--seed", "5",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    summary = json.loads(proc.stdout.split("soak:")[0])
    assert summary["runs_completed"] == 3 and summary["faults_scheduled"] >= 3
    assert summary["faults_fired"] + summary["faults_never_fired"] == summary["faults_scheduled"]
    assert 1 <= summary["faults_survived"] <= summary["faults_fired"]
    assert summary["records_lost"] == 0 and summary["wrong_verdicts"] == 0
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("run-")]) == 3


def test_a_fault_scheduled_after_the_run_ended_never_fired(tmp_path: Path) -> None:
    soak = soak_module()
    faults = [{"kind": "scpi_drop", "target": "reference", "at_s": 5.0},
              {"kind": "serial_flip", "target": "0", "at_s": 1e6, "duration_s": 5.0, "rate": 0.2},
              {"kind": "scpi_garble", "target": "source", "at_s": 30.0}]
    proc = soak._rig_run(("testplans/accuracy/test_accuracy.py::test_basic_error",), tmp_path,
                         [f"twin.faults.schedule={json.dumps(faults)}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert soak.fired_faults((tmp_path / "latest").resolve()) == {0, 2}, "the one at 1e6 s never came"
