"""Soak: the default plan run N times on the twin with random bench faults (run: `python benchmarks/soak.py`).

Each run is its own `rig run` process (2 at a time) with 1..4 faults drawn from a seeded generator: mostly
transient (one event, or a short window), some persistent. A healthy meter must come out of every run with no
meter verdict against it, and every record the journal took must be in the run's results. Reports:
runs completed, faults scheduled / fired / survived (a fault fired when the twin injected it: its traffic-log note;
one whose time never came or whose target was never used did not, and is not counted as survived), retries that
cured a fault, points failed as bench faults (persistent faults), records lost, wrong verdicts. Exit 0 when
every run completed, no record was lost and no verdict was wrong; 1 otherwise.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The full default plan is every plan; a soak run keeps to the bench smoke and accuracy plans (the
# instruments and the reference's gates, where bench faults bite) so that 50 runs finish in minutes.
DEFAULT_PLANS = ("testplans/smoke", "testplans/accuracy")
BENCH_SPAN_S = 4900.0  # bench time the default plans take on the twin
FAST_TIMEOUTS = ("instruments.0.timeout_s=0.3", "instruments.1.timeout_s=0.3")
TRANSIENT_KINDS = ("scpi_drop", "scpi_delay", "scpi_garble", "scpi_error_queue", "reference_reset",
                   "serial_vanish", "serial_flip", "serial_drop", "ble_drop")
# scpi_delay costs its timeout in wall time at every try: persistent faults are the quick ones.
PERSISTENT_KINDS = ("scpi_drop", "scpi_garble", "scpi_error_queue", "reference_reset")
SCPI_TARGETS = ("source", "reference")
# The twin notes each scheduled fault's first firing in the run's traffic log (rig.twin.faults).
FIRED_RE = re.compile(r" twin # fault (\d+) fired: ")


def random_faults(rng: random.Random) -> list[dict[str, Any]]:
    """1..4 faults; one run in five has a persistent one."""
    faults: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(TRANSIENT_KINDS)
        fault: dict[str, Any] = {"kind": kind, "at_s": round(rng.uniform(5.0, BENCH_SPAN_S), 1),
                                 "duration_s": rng.choice([0.0, 0.0, round(rng.uniform(0.1, 1.0), 2)])}
        fault["target"] = _target(kind, rng)
        if kind in ("serial_flip", "serial_drop"):
            fault["rate"] = 0.2
        faults.append(fault)
    if rng.random() < 0.2:
        kind = rng.choice(PERSISTENT_KINDS)
        faults.append({"kind": kind, "target": _target(kind, rng), "at_s": round(rng.uniform(5.0, BENCH_SPAN_S), 1),
                       "duration_s": 1e6})
    return faults


def _target(kind: str, rng: random.Random) -> str:
    if kind == "reference_reset":
        return "reference"
    return rng.choice(SCPI_TARGETS) if kind.startswith("scpi_") else "0"


@dataclass
class RunOutcome:
    """What one soak run did."""

    index: int
    faults: list[dict[str, Any]]
    exit_code: int = -1
    completed: bool = False
    retried_ok: int = 0
    fired: set[int] = field(default_factory=set)  # indices of the scheduled faults the twin injected
    bench_fault_points: int = 0
    records_lost: int = 0
    wrong_verdicts: list[str] = field(default_factory=list)
    problem: str = ""
    wall_s: float = 0.0


def _rig_run(plans: tuple[str, ...], reports: Path, overrides: list[str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rig.cli", "run", *plans, "--reports", str(reports)]
    for override in overrides:
        command += ["--set", override]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def soak_run(index: int, seed: int, plans: tuple[str, ...], out: Path,
             baseline: set[tuple[str, str]]) -> RunOutcome:
    """One run with random faults, judged against the healthy baseline's records."""
    faults = random_faults(random.Random(f"{seed}:{index}"))
    outcome = RunOutcome(index, faults)
    reports = out / f"run-{index:03d}"
    start = time.monotonic()
    proc = _rig_run(plans, reports, [*FAST_TIMEOUTS, f"twin.faults.schedule={json.dumps(faults)}"])
    outcome.wall_s = time.monotonic() - start
    outcome.exit_code = proc.returncode
    results_file = reports / "latest" / "results.json"
    if not results_file.is_file():
        outcome.problem = f"no results.json (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}"
        return outcome
    document = json.loads(results_file.read_text())
    outcome.fired = fired_faults(reports / document["run_id"])
    outcome.completed = proc.returncode in (0, 3) and all(
        t["outcome"] in ("passed", "bench-fault") for t in document["tests"]) and bool(document["tests"])
    records = document["records"]
    outcome.retried_ok = sum(1 for r in records if r["quantity"].startswith("bench fault retried"))
    outcome.bench_fault_points = int(document.get("bench_faults") or 0)
    # A healthy meter: any meter verdict against it is wrong (a bench fault must never become one).
    outcome.wrong_verdicts = [f"{t['test']}: {t['outcome']}" for t in document["tests"]
                              if t["outcome"] in ("failed", "error", "interrupted")]
    outcome.wrong_verdicts += [f"{r['test']}: {r['quantity']} {r['verdict']}" for r in records
                               if r["verdict"] == "fail"]
    outcome.records_lost = _records_lost(reports / document["run_id"], document, baseline)
    return outcome


def fired_faults(folder: Path) -> set[int]:
    """Indices of the scheduled faults that fired, from the twin's notes in the run's traffic log(s)."""
    fired: set[int] = set()
    for log in sorted(folder.glob("traffic*.log")):
        fired |= {int(m.group(1)) for m in FIRED_RE.finditer(log.read_text(errors="replace"))}
    return fired


def _records_lost(folder: Path, document: dict[str, Any], baseline: set[tuple[str, str]]) -> int:
    """Records journaled but missing from results.json, plus records a completed item should have and lacks."""
    from rig.results import Journal

    journal = Journal.in_folder(folder, create=False)
    try:
        journaled = {(s.seq, s.hash) for s in journal.stored_records(document["run_id"])}
    finally:
        journal.close()
    shown = {(r["seq"], r["hash"]) for r in [*document["records"], *document["superseded_records"]]}
    lost = len(journaled - shown)
    passed = {t["test"] for t in document["tests"] if t["outcome"] == "passed"}
    have = {(r["test"], r["quantity"]) for r in document["records"]}
    lost += sum(1 for test, quantity in baseline if test in passed and (test, quantity) not in have)
    faulted = {t["test"] for t in document["tests"] if t["outcome"] == "bench-fault"}
    lost += len(faulted - {r["test"] for r in document["records"] if r["verdict"] == "bench-fault"})
    return lost


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="number of runs (default 50)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    parser.add_argument("--seed", type=int, default=11, help="seed of the fault generator (default 11)")
    parser.add_argument("--plans", nargs="+", default=list(DEFAULT_PLANS), help="plans of each run")
    parser.add_argument("--out", type=Path, default=None, help="folder for the runs (default: a temporary one)")
    args = parser.parse_args(argv)
    plans = tuple(args.plans)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rig-soak-") as tmp:
        out = args.out or Path(tmp)
        healthy = _rig_run(plans, out / "healthy", list(FAST_TIMEOUTS))
        if healthy.returncode != 0:
            print(f"soak: the healthy baseline run failed (exit {healthy.returncode})", file=sys.stderr)
            return 1
        base = json.loads((out / "healthy" / "latest" / "results.json").read_text())
        baseline = {(r["test"], r["quantity"]) for r in base["records"]}
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            outcomes = list(pool.map(lambda i: soak_run(i, args.seed, plans, out, baseline), range(args.runs)))
    scheduled = sum(len(o.faults) for o in outcomes)
    fired = sum(len(o.fired) for o in outcomes)
    persistent = sum(1 for o in outcomes for i, f in enumerate(o.faults) if f["duration_s"] >= 1e6 and i in o.fired)
    summary = {
        "runs": args.runs,
        "runs_completed": sum(o.completed for o in outcomes),
        "faults_scheduled": scheduled,
        "faults_fired": fired,
        "faults_never_fired": scheduled - fired,
        "persistent_faults_fired": persistent,
        # survived: fired, in a run that completed with nothing lost and no wrong verdict
        "faults_survived": sum(len(o.fired) for o in outcomes
                               if o.completed and not o.records_lost and not o.wrong_verdicts),
        "retries_ok": sum(o.retried_ok for o in outcomes),
        "points_failed_as_bench_faults": sum(o.bench_fault_points for o in outcomes),
        "records_lost": sum(o.records_lost for o in outcomes),
        "wrong_verdicts": sum(len(o.wrong_verdicts) for o in outcomes),
        "wall_s": round(time.monotonic() - started, 1),
        "mean_run_wall_s": round(sum(o.wall_s for o in outcomes) / max(1, len(outcomes)), 2),
    }
    for o in outcomes:
        if not o.completed or o.records_lost or o.wrong_verdicts:
            print(f"run {o.index}: exit {o.exit_code}, lost {o.records_lost}, wrong {o.wrong_verdicts[:3]} "
                  f"{o.problem} faults {json.dumps(o.faults)}", file=sys.stderr)
    print(json.dumps(summary, indent=2))
    ok = (summary["runs_completed"] == args.runs and summary["records_lost"] == 0
          and summary["wrong_verdicts"] == 0)
    print("soak: " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
