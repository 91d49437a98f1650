"""`rig mutate`: run the plans on the healthy twin, once per defect knob set outside its spec and once per knob
set to its within-limit (inside) value, and derive the knob x plan matrix: caught / missed outside, and false
alarms on the healthy twin and on every inside value (an inside value equal to the healthy default is the
healthy run).

Each run is a separate `rig run` process with its own twin, so runs cannot leak state into each other.
The defect catalogue is plan knowledge and lives with the plans, which hand it over through an entry point
(`rig.plans.mutation_catalogue`); the rig never imports them.
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from rig.config import MeterKnobs, MeterType
from rig.plans import mutation_catalogue

HEALTHY = "healthy twin"


@dataclass
class Row:
    """One twin run of the matrix."""

    name: str
    override: str | None
    expected: tuple[str, ...]  # tests that must fail (empty for the healthy run)
    failed_tests: set[str] = field(default_factory=set)
    bench_faults: set[str] = field(default_factory=set)  # tests the bench could not measure (never 'caught')
    exit_code: int = 0
    error: str = ""
    inside: bool = False  # the knob at its within-limit value: any failed test is a false alarm

    @property
    def verdict(self) -> str:
        """caught / missed for a defect outside; clean / false alarm for the healthy run and an inside value."""
        if self.error:
            return "run error"
        if not self.expected:
            if self.failed_tests:
                return "false alarm"
            return "bench fault" if self.bench_faults else "clean"
        if set(self.expected) & self.failed_tests:
            return "caught"
        # A test that could not measure proves nothing either way: neither caught nor missed.
        return "bench fault" if set(self.expected) & self.bench_faults else "missed"


@dataclass
class Matrix:
    """Rows (healthy, one per knob outside, one per knob inside unless that is the default) by test functions."""

    tests: list[str]
    rows: list[Row]

    @property
    def ok(self) -> bool:
        """No missed defect and no false alarm."""
        return all(r.verdict in ("caught", "clean") for r in self.rows)

    def to_json(self) -> dict[str, Any]:
        """What matrix.json holds."""
        return {
            "tests": self.tests,
            "ok": self.ok,
            "rows": [
                {"knob": r.name, "override": r.override, "inside": r.inside, "expected": list(r.expected),
                 "verdict": r.verdict, "failed": sorted(r.failed_tests), "bench_faults": sorted(r.bench_faults),
                 "error": r.error}
                for r in self.rows
            ],
            "caught": self.tally(outside=True),
            "false_alarms_inside": self.tally(outside=False),
        }

    def tally(self, *, outside: bool) -> dict[str, int]:
        """Outside: defects caught of those tried; inside: false alarms of the inside values tried."""
        rows = [r for r in self.rows if r.expected] if outside else [r for r in self.rows if r.inside]
        hits = sum(1 for r in rows if r.verdict == ("caught" if outside else "false alarm"))
        return {"count": hits, "tried": len(rows)}

    def inside_of(self, knob: str) -> Row | None:
        """The inside run of `knob` (None: its inside value is the healthy default)."""
        return next((r for r in self.rows if r.inside and r.name == knob), None)

    def text(self) -> str:
        """A plain-text matrix: one line per knob (its outside run), X where a test failed, * where it was expected
        to; then two columns, the outside verdict and the inside one (with the tests that failed there)."""
        short = [t.split("::")[-1] for t in self.tests]
        width = max(len(r.name) for r in self.rows) + 2
        header = " " * width + " ".join(f"{i + 1:>3}" for i in range(len(short))) + f"  {'outside':<12} inside"
        lines = [header]
        for row in (r for r in self.rows if not r.inside):
            cells = []
            for test in self.tests:
                mark = "X" if test in row.failed_tests else "."
                cells.append(f"{mark + ('*' if test in row.expected else ''):>3}")
            lines.append(f"{row.name:<{width}}" + " ".join(cells) + f"  {row.verdict:<12} {self._inside_cell(row)}"
                         + (f" ({row.error})" if row.error else ""))
        lines.append("")
        lines += [f"{i + 1:>3} {name}" for i, name in enumerate(self.tests)]
        caught, alarms = self.tally(outside=True), self.tally(outside=False)
        lines.append("X failed, . passed, * expected to fail for that knob (outside); inside: the knob at its "
                     "within-limit value")
        lines.append(f"caught {caught['count']}/{caught['tried']} outside; false alarms {alarms['count']}/"
                     f"{alarms['tried']} inside")
        return "\n".join(lines)

    def _inside_cell(self, row: Row) -> str:
        if row.name == HEALTHY:
            return "-"
        inside = self.inside_of(row.name)
        if inside is None:
            return "= healthy"
        failed = [str(self.tests.index(t) + 1) for t in sorted(inside.failed_tests) if t in self.tests]
        return inside.verdict + (f" ({', '.join(failed)})" if failed else "") + (
            f" ({inside.error})" if inside.error else "")


def _function(nodeid: str) -> str:
    return nodeid.split("[", 1)[0]


def position_outcomes(results: dict[str, Any], position: str, *, exclude_params: Sequence[str] = (),
                      exclude_tests: Sequence[str] = ()) -> dict[str, str]:
    """Outcome per test item of one position in a results.json document (by the item's parameters).

    Items carrying any of `exclude_params` (e.g. the transport "ble") or whose node id contains any of
    `exclude_tests` are left out.
    """
    out: dict[str, str] = {}
    for test in results["tests"]:
        nodeid = str(test["test"])
        params = nodeid.rsplit("[", 1)[-1].rstrip("]").split("-")
        if position not in params or any(p in params for p in exclude_params):
            continue
        if any(t in nodeid for t in exclude_tests):
            continue
        out[nodeid] = str(test["outcome"])
    return out


def _default_override(knob: str) -> str | None:
    """The `--set` text of a `twin.meter.*` knob at its healthy default, formatted as the catalogue formats its
    values (None: not a knob of the meter model)."""
    value: Any = MeterKnobs()
    for part in knob.removeprefix("twin.meter.").split("."):
        if not hasattr(value, part):
            return None
        value = getattr(value, part)
    if isinstance(value, str):
        return f"{knob}={value}"
    return f"{knob}={float(value):.6g}" if isinstance(value, int | float) else None


def _in_plans(test: str, plans: Sequence[str]) -> bool:
    return any(test.startswith(_relative(p)) for p in plans)


def _relative(plan: str) -> str:
    """A plan path (with any ::selector) as it appears in node ids (`testplans/...`)."""
    marker = "testplans/"
    return plan[plan.index(marker):] if marker in plan else plan


def run_plans(plans: Sequence[str], bench_file: str | None, overrides: Sequence[str], reports: Path) -> dict[str, Any]:
    """One `rig run` process of `plans` with `overrides`; its results.json with `exit_code` added."""
    command = [sys.executable, "-m", "rig.cli", "run", *plans, "--reports", str(reports)]
    if bench_file:
        command += ["--bench", bench_file]
    for override in overrides:
        command += ["--set", override]
    proc = subprocess.run(command, capture_output=True, text=True)
    results_file = reports / "latest" / "results.json"
    if not results_file.exists():
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"rig run exited {proc.returncode} without results: {tail}")
    results: dict[str, Any] = json.loads(results_file.read_text())
    results["exit_code"] = proc.returncode
    return results


def run_matrix(plans: Sequence[str], *, bench_file: str | None, overrides: Sequence[str], meter: MeterType,
               out_dir: Path, jobs: int, console: Console) -> Matrix:
    """Run healthy + every applicable mutation, outside and inside, and build the matrix."""
    rows = [Row(HEALTHY, None, ())]
    inside_rows = []
    for mutation in mutation_catalogue():
        expected = tuple(t for t in mutation.catches if _in_plans(t, plans))
        if expected:
            rows.append(Row(mutation.knob, mutation.override(meter), expected))
            inside = mutation.override(meter, violating=False)
            if inside != _default_override(mutation.knob):
                inside_rows.append(Row(mutation.knob, inside, (), inside=True))
    rows += inside_rows
    out_dir.mkdir(parents=True, exist_ok=True)
    console.print(f"rig mutate: {len(rows) - 1 - len(inside_rows)} defect knob(s) outside, {len(inside_rows)} inside "
                  f"+ the healthy twin, {jobs} at a time")

    def execute(index: int, row: Row) -> dict[str, Any]:
        extra = [*overrides, *([row.override] if row.override else [])]
        return run_plans(plans, bench_file, extra, out_dir / f"run-{index:02d}")

    all_tests: set[str] = set()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(execute, i, row): row for i, row in enumerate(rows)}
        for future in concurrent.futures.as_completed(futures):
            row = futures[future]
            try:
                results = future.result()
            except RuntimeError as exc:
                row.error = str(exc)
                console.print(f"  {row.name}: [red]{row.error}[/red]")
                continue
            row.exit_code = int(results["exit_code"])
            outcomes = results.get("tests", [])
            all_tests |= {_function(t["test"]) for t in outcomes}
            row.failed_tests = {_function(t["test"]) for t in outcomes if t["outcome"] in ("failed", "error")}
            row.bench_faults = {_function(t["test"]) for t in outcomes if t["outcome"] == "bench-fault"}
            console.print(f"  {row.name}{' (inside)' if row.inside else ''}: {row.verdict}")
    matrix = Matrix(tests=sorted(all_tests), rows=rows)
    (out_dir / "matrix.json").write_text(json.dumps(matrix.to_json(), indent=2))
    (out_dir / "matrix.txt").write_text(matrix.text() + "\n")
    return matrix
