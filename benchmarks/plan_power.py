"""Marginal-defect power of the plans (run: `python benchmarks/plan_power.py`).

For every knob of the defect catalogue (`rig.plans.mutation_catalogue`, every plans package's entries):

- a numeric knob with a `boundary` (the knob value at which its plan's limit is just reached) is tried at
  1.1x the boundary (a defect the plan must catch) and at 0.8x (a meter within its limit: any failure is a
  false alarm); for a knob that deviates from a `nominal` (a threshold), 1.1x and 0.8x of the deviation;
- an on/off knob is tried on (must be caught) and off (the healthy meter: must pass);
- a numeric knob without a boundary is tried at the catalogue's outside / inside values and listed as such.

Each value runs over `--seeds` twin seeds (default 5) on two benches:

- one position (benches/twin.yaml): one `rig run` per knob, value and seed;
- six positions (benches/twin-rack.yaml), the defect on one position: knobs whose plans are the same files are
  put on different positions of one run (at most five; the sixth stays healthy as a sentinel), rotated by seed,
  and judged per position. A failure on a healthy position counts as a false alarm of that run.

Only the test files that must catch a knob are run (`catches` of its catalogue entry). The printout gives, per plan,
caught/tried at 1.1x, false alarms/tried at 0.8x and failed/tried healthy neighbours for each bench.
Targets: 100 % caught at 1.1x, no false alarm at 0.8x, and every numeric knob has a boundary (otherwise 1.1x
is not what was tried). Exit 0 when all hold, 1 otherwise. `--knob TEXT` limits the run to knobs containing
TEXT; `--jobs N` runs N `rig run` processes at a time; `--out DIR` keeps every run's results (and writes
summary.json there).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rig.config import BENCHES_DIR, load_bench
from rig.mutate import run_plans
from rig.plans import mutation_catalogue

ONE = BENCHES_DIR / "twin.yaml"
SIX = BENCHES_DIR / "twin-rack.yaml"
RACK_SIZE = 6
PER_RUN = RACK_SIZE - 1  # one position stays healthy: a sentinel for defects that leak to a neighbour
HIGH, LOW = 1.1, 0.8


@dataclass(frozen=True)
class Trial:
    """One knob at one value: what to set and which tests must fail (empty: nothing may fail)."""

    knob: str
    plan: str
    files: tuple[str, ...]
    value: float
    kind: str  # "1.1x" / "0.8x" for a boundary, "on" / "off" for a flag, "outside" / "inside" otherwise
    must_catch: tuple[str, ...]


@dataclass
class Tally:
    """Counts of one plan and bench."""

    caught: int = 0
    tried_high: int = 0
    false_alarms: int = 0
    tried_low: int = 0
    neighbours: int = 0  # healthy positions of the six-position runs
    neighbour_alarms: int = 0
    missed: list[str] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)


def _plan(test: str) -> str:
    parts = test.split("::", 1)[0].split("/")
    return "/".join(parts[:2])


def trials(meter: Any, only: str | None) -> tuple[list[Trial], list[str], list[str]]:
    """Two trials per catalogue entry; the knobs tried at catalogue values (no boundary); the knobs given as text."""
    out: list[Trial] = []
    no_boundary: list[str] = []
    text_knobs: list[str] = []
    for m in mutation_catalogue():
        if only and only not in m.knob:
            continue
        files = tuple(sorted({t.split("::", 1)[0] for t in m.catches}))
        plan = _plan(m.catches[0])
        value_at = getattr(m, "value_at", None)
        outside, inside = m.outside(meter), m.inside(meter)  # type: ignore[attr-defined]
        if isinstance(outside, str) or isinstance(inside, str):
            text_knobs.append(m.knob)
            continue
        if value_at is not None and value_at(meter, HIGH) is not None:
            pairs = [(value_at(meter, HIGH), "1.1x"), (value_at(meter, LOW), "0.8x")]
        elif (outside, inside) == (1.0, 0.0):
            pairs = [(1.0, "on"), (0.0, "off")]
        else:
            no_boundary.append(m.knob)
            pairs = [(outside, "outside"), (inside, "inside")]
        for (value, kind), high in zip(pairs, (True, False), strict=True):
            out.append(Trial(m.knob, plan, files, value, kind, tuple(m.catches) if high else ()))
    return out, no_boundary, text_knobs


def _functions(results: dict[str, Any], label: str | None, outcomes: Sequence[str]) -> set[str]:
    """Test functions (file::name) with one of `outcomes`, of position `label` (None: every item)."""
    found = set()
    for test in results["tests"]:
        nodeid = str(test["test"])
        params = nodeid.rsplit("[", 1)[-1].rstrip("]").split("-") if "[" in nodeid else []
        if label is not None and label not in params:
            continue
        if test["outcome"] in outcomes:
            found.add(nodeid.split("[", 1)[0])
    return found


def _judge(tally: Tally, trial: Trial, failed: set[str], where: str) -> None:
    if trial.kind == "healthy":
        tally.neighbours += 1
        if failed:
            tally.neighbour_alarms += 1
            tally.alarms.append(f"healthy neighbour ({where}): {sorted(failed)[0]}")
    elif trial.must_catch:
        tally.tried_high += 1
        if failed & set(trial.must_catch):
            tally.caught += 1
        else:
            tally.missed.append(f"{trial.knob}={trial.value:.6g} ({trial.kind}, {where})")
    else:
        tally.tried_low += 1
        if failed:
            tally.false_alarms += 1
            tally.alarms.append(f"{trial.knob}={trial.value:.6g} ({trial.kind}, {where}): {sorted(failed)[0]}")


def _position_key(knob: str, index: int) -> str:
    # twin.meter.<module>.<name> -> twin.positions.<index>.<module>.<name>
    return knob.replace("twin.meter.", f"twin.positions.{index}.", 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--knob", default=None, help="only knobs whose name contains this text")
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    meter = load_bench(ONE).meter
    if load_bench(SIX).meter != meter:
        sys.exit("benches/twin.yaml and benches/twin-rack.yaml carry different meter types: values would differ")
    all_trials, no_boundary, text_knobs = trials(meter, args.knob)
    tallies: dict[tuple[str, str], Tally] = defaultdict(Tally)
    errors: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        jobs: list[tuple[str, Path, list[str], list[tuple[Trial, str | None]], Path]] = []
        for seed in range(1, args.seeds + 1):
            for i, trial in enumerate(all_trials):
                overrides = [f"{trial.knob}={trial.value:.6g}", f"twin.seed={seed}"]
                jobs.append(("one position", ONE, overrides, [(trial, None)], out / f"one-s{seed}-{i:03d}"))
            groups: dict[tuple[tuple[str, ...], bool], list[Trial]] = defaultdict(list)
            for trial in all_trials:
                groups[(trial.files, bool(trial.must_catch))].append(trial)
            for g, ((files, _), members) in enumerate(sorted(groups.items())):
                for c in range(0, len(members), PER_RUN):
                    chunk = members[c:c + PER_RUN]
                    placed = [(t, (k + seed) % RACK_SIZE) for k, t in enumerate(chunk)]
                    overrides = [f"{_position_key(t.knob, p)}={t.value:.6g}" for t, p in placed]
                    overrides.append(f"twin.seed={seed}")
                    healthy = [p for p in range(RACK_SIZE) if p not in {q for _, q in placed}]
                    judged: list[tuple[Trial, str | None]] = [(t, f"P{p + 1}") for t, p in placed]
                    sentinel = Trial("(healthy neighbour)", chunk[0].plan, files, 0.0, "healthy", ())
                    judged += [(sentinel, f"P{p + 1}") for p in healthy]
                    jobs.append(("six positions", SIX, overrides, judged, out / f"six-s{seed}-{g:03d}-{c:03d}"))
        print(f"plan_power: {len(all_trials)} trials x {args.seeds} seeds; {len(jobs)} rig runs, {args.jobs} at a time",
              flush=True)

        def execute(job: tuple[str, Path, list[str], list[tuple[Trial, str | None]], Path]) -> None:
            bench_name, bench, overrides, judged, reports = job
            files = judged[0][0].files
            try:
                results = run_plans(files, str(bench), overrides, reports)
            except RuntimeError as exc:
                errors.append(f"{bench_name} {' '.join(overrides)}: {exc}")
                return
            for trial, label in judged:
                failed = _functions(results, label, ("failed", "error"))
                where = f"{bench_name}{'' if label is None else ' ' + label}, {overrides[-1]}"
                _judge(tallies[(trial.plan, bench_name)], trial, failed, where)

        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(execute, jobs))
    for knob in text_knobs:
        print(f"TEXT KNOB   {knob}: a choice of words, not a magnitude; not tried here (its plan's own tests set it)")
    return report(tallies, no_boundary, errors, args.out)


def report(tallies: dict[tuple[str, str], Tally], no_boundary: list[str], errors: list[str], out: Path | None) -> int:
    """Print the table and the misses; 0 when every target holds."""
    ok = not errors
    print(f"{'plan':<24} {'bench':<14} {'caught at 1.1x':>15} {'false alarms at 0.8x':>21} "
          f"{'healthy neighbours failed':>26}")
    for (plan, bench), t in sorted(tallies.items()):
        neighbours = f"{t.neighbour_alarms}/{t.neighbours}" if t.neighbours else "-"
        print(f"{plan:<24} {bench:<14} {t.caught:>7}/{t.tried_high:<7} {t.false_alarms:>10}/{t.tried_low:<10} "
              f"{neighbours:>26}")
        ok = ok and t.caught == t.tried_high and t.false_alarms == 0 and t.neighbour_alarms == 0
    for t in tallies.values():
        for miss in t.missed:
            print(f"MISSED      {miss}")
        for alarm in t.alarms:
            print(f"FALSE ALARM {alarm}")
    for knob in no_boundary:
        print(f"NO BOUNDARY {knob}: tried at the catalogue's outside/inside values, not at 1.1x/0.8x")
        ok = False
    for error in errors:
        print(f"RUN ERROR   {error}")
    print("targets (100 % caught at 1.1x, no false alarm at 0.8x):", "met" if ok else "NOT met")
    if out is not None:
        summary = {f"{p} | {b}": vars(t) for (p, b), t in sorted(tallies.items())}
        (out / "summary.json").write_text(json.dumps({"tallies": summary, "no_boundary": no_boundary,
                                                      "errors": errors, "targets_met": ok}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
