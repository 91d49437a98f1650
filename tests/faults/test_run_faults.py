"""Bench faults through `rig run`: transient ones are retried and journaled and the run passes; a persistent
one fails only the points it hits, as `bench-fault` (records, results.json, junit, certificate), the run
continues or stops as the bench file says, nothing completed is lost, and `rig run --resume` measures the
faulted points again. `rig mutate` never counts a bench fault as a caught defect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from rig.config import DEFAULT_BENCH
from rig.mutate import HEALTHY, Row

RIG = [sys.executable, "-m", "rig.cli"]
PLANS = ["testplans/smoke", "testplans/accuracy"]
FAST = ["--set", "instruments.0.timeout_s=0.3", "--set", "instruments.1.timeout_s=0.3"]
PERSISTENT = 1e6


def rig(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RIG, *args], capture_output=True, text=True, timeout=180, env=dict(os.environ))


def schedule(*faults: dict[str, Any]) -> list[str]:
    return ["--set", f"twin.faults.schedule={json.dumps(list(faults))}"]


def results(reports: Path) -> dict[str, Any]:
    return json.loads((reports / "latest" / "results.json").read_text())


def verdicts(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(r["test"], r["quantity"], r["verdict"]) for r in document["records"]
            if not r["quantity"].startswith("bench fault")]


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    reports = tmp_path_factory.mktemp("healthy")
    proc = rig("run", *PLANS, "--reports", str(reports), *FAST)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return results(reports)


def test_transient_faults_are_retried_journaled_and_change_no_verdict(tmp_path: Path,
                                                                        healthy: dict[str, Any]) -> None:
    faults = schedule(
        {"kind": "scpi_drop", "target": "reference", "at_s": 20},
        {"kind": "scpi_garble", "target": "source", "at_s": 40},
        {"kind": "reference_reset", "target": "reference", "at_s": 60},
        {"kind": "scpi_delay", "target": "reference", "at_s": 150},
        {"kind": "scpi_error_queue", "target": "source", "at_s": 400, "duration_s": 0.6},
    )
    proc = rig("run", *PLANS, "--reports", str(tmp_path), *FAST, *faults)
    assert proc.returncode == 0, proc.stdout[-3000:]
    document = results(tmp_path)
    assert document["verdict"] == "pass" and document["bench_faults"] == 0
    events = [r for r in document["records"] if r["quantity"].startswith("bench fault retried")]
    assert len(events) >= 4
    assert all(r["verdict"] == "info" and r["detail"]["event"] == "bench fault, retried ok" for r in events)
    assert {r["detail"]["instrument"].split(" ")[0] for r in events} == {"source", "reference"}
    assert any("restarted" in r["detail"]["problem"] for r in events)
    assert verdicts(document) == verdicts(healthy), "a fault that was retried changes no meter verdict"
    traffic = (tmp_path / "latest" / "traffic.log").read_text()
    assert "retried ok" in traffic and "reconnecting after a link fault" in traffic


def test_persistent_fault_fails_only_its_points_as_bench_faults(tmp_path: Path, healthy: dict[str, Any]) -> None:
    faults = schedule({"kind": "scpi_drop", "target": "reference", "at_s": 300, "duration_s": PERSISTENT})
    proc = rig("run", *PLANS, "--reports", str(tmp_path), *FAST, *faults)
    assert proc.returncode == 3, proc.stdout[-3000:]
    assert "bench faults:" in proc.stderr and "rig run --resume" in proc.stderr
    document = results(tmp_path)
    outcomes = {t["test"]: t["outcome"] for t in document["tests"]}
    assert set(outcomes.values()) == {"passed", "bench-fault"}
    assert sum(1 for o in outcomes.values() if o == "passed") >= 4, "points before the fault stand"
    assert document["verdict"] == "bench-fault" and document["bench_faults"] == len(
        [o for o in outcomes.values() if o == "bench-fault"])
    faulted = [r for r in document["records"] if r["verdict"] == "bench-fault"]
    assert {r["test"] for r in faulted} == {t for t, o in outcomes.items() if o == "bench-fault"}
    assert all(r["detail"]["instrument"].startswith("reference (TCPIP::") and r["value"] is None for r in faulted)
    assert "Connection reset" in faulted[0]["detail"]["message"]
    assert not any(r["verdict"] == "fail" for r in document["records"]), "never a meter verdict"
    traffic = (tmp_path / "latest" / "traffic.log").read_text()
    assert traffic.count("OUTP OFF") >= document["bench_faults"], "the source is driven safe after each"
    healthy_passed = {(r["test"], r["quantity"], r["verdict"]) for r in healthy["records"]}
    for record in document["records"]:
        if outcomes.get(record["test"]) == "passed":
            assert (record["test"], record["quantity"], record["verdict"]) in healthy_passed
    suite = ET.parse(tmp_path / "latest" / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    errors = [e for e in suite.iter("error") if e.get("type") == "bench-fault"]
    assert len(errors) == document["bench_faults"] and "reference" in errors[0].get("message", "")
    run_id = document["run_id"]
    report = rig("report", run_id, "--reports", str(tmp_path), "--format", "html")
    assert report.returncode == 0, report.stderr
    certificate = (tmp_path / run_id / "certificate.html").read_text()
    assert "BENCH-FAULT" in certificate and "INCOMPLETE" in certificate


def test_stop_on_bench_fault_then_resume_after_the_repair(tmp_path: Path) -> None:
    bench = tmp_path / "lab.yaml"
    text = DEFAULT_BENCH.read_text()
    faulty = (text + "  faults:\n    schedule:\n      - {kind: scpi_drop, target: reference, at_s: 300, "
              f"duration_s: {PERSISTENT}}}\nrun: {{on_bench_fault: stop}}\n")
    bench.write_text(faulty)
    reports = tmp_path / "reports"
    stopped = rig("run", *PLANS, "--bench", str(bench), "--reports", str(reports), *FAST)
    assert stopped.returncode == 3, stopped.stdout[-3000:]
    first = results(reports)
    outcomes = [t["outcome"] for t in first["tests"]]
    assert outcomes.count("bench-fault") == 1 and outcomes[-1] == "bench-fault", "stopped at the first"
    assert "on_bench_fault: stop" not in first["stopped_because"] and "rig run --resume" in first["stopped_because"]
    before = [(r["test"], r["quantity"], r["value"]) for r in first["records"]]
    bench.write_text(text + "run: {on_bench_fault: stop}\n")  # the lab repaired the reference standard
    refused = rig("run", "--resume", first["run_id"], "--reports", str(reports))
    assert refused.returncode == 2 and f"bench file {bench}: content changed" in refused.stderr
    repaired = "the twin's reference standard repaired: fault schedule removed"
    resumed = rig("run", "--resume", first["run_id"], "--reports", str(reports), "--accept-changed", repaired)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    done = json.loads((reports / first["run_id"] / "results.json").read_text())
    assert [a["reason"] for a in done["accepted_changes"]] == [repaired]
    assert done["verdict"] == "pass" and done["bench_faults"] == 0
    assert {t["outcome"] for t in done["tests"]} == {"passed"} and len(done["tests"]) == 31
    kept = [(r["test"], r["quantity"], r["value"]) for r in done["records"] if r["session"] == 0]
    assert kept == [b for b in before if b[1] != "bench fault"], "no completed record is lost"
    assert [r["verdict"] for r in done["superseded_records"]] == ["bench-fault"]
    verified = rig("verify", first["run_id"], "--reports", str(reports))
    assert verified.returncode == 3, verified.stdout[-2000:]  # consistent; twin keys are never pinned


def test_mutate_never_counts_a_bench_fault_as_caught() -> None:
    row = Row("twin.meter.metering.gain_error_pct", "x=1", ("testplans/accuracy/test_accuracy.py::test_basic_error",))
    row.bench_faults = {"testplans/accuracy/test_accuracy.py::test_basic_error"}
    assert row.verdict == "bench fault"
    row.failed_tests = {"testplans/accuracy/test_accuracy.py::test_basic_error"}
    assert row.verdict == "caught"
    healthy_row = Row(HEALTHY, None, ())
    healthy_row.bench_faults = {"testplans/smoke/test_bench.py::test_source_reaches_set_point"}
    assert healthy_row.verdict == "bench fault", "not a false alarm, not clean either"


@pytest.mark.parametrize("fault", [
    {"kind": "serial_vanish", "target": "0", "at_s": 60, "duration_s": PERSISTENT},
    {"kind": "serial_flip", "target": "0", "at_s": 60, "duration_s": PERSISTENT, "rate": 1.0},
    {"kind": "serial_drop", "target": "0", "at_s": 60, "duration_s": PERSISTENT, "rate": 1.0},
], ids=["port-gone", "every-bit-flipped", "every-byte-dropped"])
def test_a_meter_line_that_stays_broken_is_a_bench_fault_not_a_meter_defect(tmp_path: Path,
                                                                             fault: dict[str, Any]) -> None:
    """A meter's port that stays gone, or a line that garbles or loses everything, fails no meter item: every
    UART point after it is a bench fault (exit 3), as for the SCPI instruments; the BLE items still pass."""
    proc = rig("run", "testplans/comms", "--reports", str(tmp_path), *schedule(fault))
    assert proc.returncode == 3, proc.stdout[-3000:]
    document = results(tmp_path)
    outcomes = {t["test"]: t["outcome"] for t in document["tests"]}
    assert document["verdict"] == "bench-fault" and document["bench_faults"] >= 10
    assert not [t for t, o in outcomes.items() if o in ("failed", "error")], "no meter item failed"
    assert not [r for r in document["records"] if r["verdict"] == "fail"], "no meter record failed"
    assert {o for t, o in outcomes.items() if "[ble-" in t} <= {"passed", "skipped"}


def test_a_ble_link_that_stays_down_is_a_bench_fault_not_a_meter_defect(tmp_path: Path) -> None:
    """The meter's BLE link down for good: the BLE points (and a point sharing a reading with them) are bench
    faults, exit 3; no meter item fails."""
    proc = rig("run", "testplans/comms", "--reports", str(tmp_path),
               *schedule({"kind": "ble_drop", "target": "0", "at_s": 60, "duration_s": PERSISTENT}))
    assert proc.returncode == 3, proc.stdout[-3000:]
    document = results(tmp_path)
    outcomes = {t["test"]: t["outcome"] for t in document["tests"]}
    assert document["verdict"] == "bench-fault"
    assert not [t for t, o in outcomes.items() if o in ("failed", "error")], "no meter item failed"
    assert not [r for r in document["records"] if r["verdict"] == "fail"], "no meter record failed"
    assert sum(1 for t, o in outcomes.items() if "[ble-" in t and o == "bench-fault") >= 5
