"""Marginal-defect power of the plans (run: `python benchmarks/plan_power.py`).

For every knob of the defect catalogue (`rig.plans.mutation_catalogue`, every plans package's entries):

- a numeric knob with a `boundary` (the knob value at which its plan's limit is just reached) is tried at
  1.1x the boundary (a defect the plan must catch) and at 0.8x (a meter within its limit: any failure is a
  false alarm); for a knob that deviates from a `nominal` (a threshold), 1.1x and 0.8x of the deviation;
- an on/off knob is tried on (must be caught) and off (the healthy meter: must pass);
- a knob whose any amount is a defect (its within-limit value is 0, the healthy meter: a glitch rate, energy lost)
  is tried at 1.1x its boundary (the plan's resolution) and at 0 (the healthy meter);
- a knob that takes whole-number settings (an exponent, a period in minutes, a harmonic order: an int in the twin's
  knobs) is tried at the catalogue's outside / inside values and listed as DISCRETE;
- a numeric knob without a boundary is tried at the catalogue's outside / inside values and listed as such.

Each value runs over `--seeds` twin seeds (default 5) on two benches:

- one position (benches/twin.yaml): one `rig run` per knob, value and seed;
- six positions (benches/twin-rack.yaml), the defect on one position: knobs whose plans are the same files are
  put on different positions of one run (at most five; the sixth stays healthy as a sentinel), rotated by seed,
  and judged per position. A failure on a healthy position counts as a false alarm of that run.

Plans that need an instrument the default twin benches lack run on benches that have it (BENCHES_FOR: the
climate plans on the chamber benches). Only the test functions that must catch a knob are run (`catches` of its
catalogue entry), at 1.1x and at 0.8x alike. On/off knobs are tried only with `--flags` (they are not marginal:
`rig mutate` covers them). Every judged trial is appended to judged.jsonl in `--out` as it finishes, and
`--report DIR` prints the table again from a (finished or partial) run's judged.jsonl; `--resume` with the same
`--out` runs only the runs that left no results there (a run that fails to start is retried once a minute later).
The printout gives, per plan,
caught/tried at 1.1x, false alarms/tried at 0.8x and failed/tried healthy neighbours for each bench.
Targets: 100 % caught at 1.1x, no false alarm at 0.8x, and every numeric knob has a boundary (otherwise 1.1x
is not what was tried). Exit 0 when all hold, 1 otherwise. `--knob TEXT` (repeatable) limits the run to knobs
containing TEXT; `--report OLD NEW` merges folders, a knob judged in NEW replacing its trials in OLD;
`--jobs N` runs N `rig run` processes at a time; `--out DIR` keeps every run's results (and writes summary.json
there).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
import tempfile
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rig.config import BENCHES_DIR, MeterKnobs, load_bench
from rig.mutate import run_plans
from rig.plans import mutation_catalogue

ONE = BENCHES_DIR / "twin.yaml"
SIX = BENCHES_DIR / "twin-rack.yaml"
CHAMBER = (BENCHES_DIR / "twin-chamber.yaml", BENCHES_DIR / "twin-chamber-rack.yaml")
# Plans that need an instrument the default twin benches lack, and the (one, six) benches that have it.
BENCHES_FOR = {"testplans/temperature": CHAMBER, "testplans/rtc": CHAMBER}
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
    kind: str  # "1.1x" / "0.8x" / "0 (healthy)" for a boundary, "on" / "off" for a flag, "outside" / "inside" otherwise
    must_catch: tuple[str, ...]
    one: Path = ONE  # the benches it runs on
    six: Path = SIX


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


def _is_whole_number_knob(knob: str) -> bool:
    """The knob is an int in the twin's knobs (a setting, not a magnitude: 1.1x of it means nothing)."""
    value: Any = MeterKnobs()
    for part in knob.removeprefix("twin.meter.").split("."):
        value = getattr(value, part, None)
    return isinstance(value, int) and not isinstance(value, bool)


def trials(only: Sequence[str] | None, *, flags: bool = False) -> tuple[list[Trial], list[str], list[str], list[str]]:
    """Two trials per catalogue entry; the knobs tried at catalogue values (no boundary); the discrete knobs; the
    knobs given as text."""
    out: list[Trial] = []
    no_boundary: list[str] = []
    discrete: list[str] = []
    text_knobs: list[str] = []
    for m in mutation_catalogue():
        if only and not any(text in m.knob for text in only):
            continue
        plan = _plan(m.catches[0])
        one, six = BENCHES_FOR.get(plan, (ONE, SIX))
        meter = load_bench(one).meter
        value_at = getattr(m, "value_at", None)
        outside, inside = m.outside(meter), m.inside(meter)  # type: ignore[attr-defined]
        if isinstance(outside, str) or isinstance(inside, str):
            text_knobs.append(m.knob)
            continue
        if value_at is not None and value_at(meter, HIGH) is not None:
            low = (0.0, "0 (healthy)") if inside == 0.0 and getattr(m, "nominal", None) is None else (
                value_at(meter, LOW), "0.8x")
            pairs = [(value_at(meter, HIGH), "1.1x"), low]
        elif (outside, inside) == (1.0, 0.0):
            if not flags:
                continue
            pairs = [(1.0, "on"), (0.0, "off")]
        elif _is_whole_number_knob(m.knob):
            discrete.append(m.knob)
            pairs = [(outside, "outside"), (inside, "inside")]
        else:
            no_boundary.append(m.knob)
            pairs = [(outside, "outside"), (inside, "inside")]
        functions = tuple(sorted(set(m.catches)))
        for (value, kind), high in zip(pairs, (True, False), strict=True):
            out.append(Trial(m.knob, plan, functions, value, kind, tuple(m.catches) if high else (), one, six))
    return out, no_boundary, discrete, text_knobs


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


def _judge(tally: Tally, row: dict[str, Any]) -> None:
    """Count one judged trial (a judged.jsonl row) into its plan's tally."""
    failed, where, what = set(row["failed"]), row["where"], f"{row['knob']}={row['value']:.6g} ({row['kind']}"
    if row["kind"] == "healthy":
        tally.neighbours += 1
        if failed:
            tally.neighbour_alarms += 1
            tally.alarms.append(f"healthy neighbour ({where}): {sorted(failed)[0]}")
    elif row["must_catch"]:
        tally.tried_high += 1
        if failed & set(row["must_catch"]):
            tally.caught += 1
        else:
            skipped = f"; skipped: {', '.join(sorted(row['skipped']))}" if row.get("skipped") else ""
            tally.missed.append(f"{what}, {where}{skipped})")
    else:
        tally.tried_low += 1
        if failed:
            tally.false_alarms += 1
            tally.alarms.append(f"{what}, {where}): {sorted(failed)[0]}")


def _merge_key(row: dict[str, Any]) -> tuple[str, str]:
    return ("plan", row["plan"]) if row["kind"] == "healthy" else ("knob", row["knob"])


def _merged(folders: Sequence[Path]) -> list[dict[str, Any]]:
    """The judged trials of several benchmark folders; a knob judged in a later folder drops its earlier trials."""
    rows: list[dict[str, Any]] = []
    for folder in folders:
        journal = folder / "judged.jsonl"
        if not journal.is_file():
            sys.exit(f"{folder}: no judged.jsonl (not a plan_power --out folder)")
        new = [json.loads(line) for line in journal.read_text().splitlines() if line]
        # A trial is its knob's; a healthy neighbour is its plan's (every rack run of the plan has them).
        redone = {_merge_key(row) for row in new}
        rows = [row for row in rows if _merge_key(row) not in redone] + new
    return rows


def _tallies(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], Tally]:
    tallies: dict[tuple[str, str], Tally] = defaultdict(Tally)
    for row in rows:
        _judge(tallies[(row["plan"], row["bench"])], row)
    return tallies


def _position_key(knob: str, index: int) -> str:
    # twin.meter.<module>.<name> -> twin.positions.<index>.<module>.<name>
    return knob.replace("twin.meter.", f"twin.positions.{index}.", 1)


def _jobs(all_trials: Sequence[Trial], seeds: int, out: Path) -> list[Job]:
    """The rig runs, seed by seed (a partial run has every knob at the first seeds)."""
    jobs: list[Job] = []
    for seed in range(1, seeds + 1):
        for i, trial in enumerate(all_trials):
            overrides = [f"{trial.knob}={trial.value:.6g}", f"twin.seed={seed}"]
            jobs.append(("one position", trial.one, overrides, [(trial, None)], out / f"one-s{seed}-{i:03d}"))
        # Knobs of one plan share a rack run (the union of their tests runs on every position).
        groups: dict[tuple[str, Path, bool], list[Trial]] = defaultdict(list)
        for trial in all_trials:
            groups[(trial.plan, trial.six, bool(trial.must_catch))].append(trial)
        for g, ((_, six, _), members) in enumerate(sorted(groups.items())):
            for c in range(0, len(members), PER_RUN):
                chunk = members[c:c + PER_RUN]
                files = tuple(sorted({f for t in chunk for f in t.files}))
                placed = [(t, (k + seed) % RACK_SIZE) for k, t in enumerate(chunk)]
                overrides = [f"{_position_key(t.knob, p)}={t.value:.6g}" for t, p in placed]
                overrides.append(f"twin.seed={seed}")
                healthy = [p for p in range(RACK_SIZE) if p not in {q for _, q in placed}]
                judged: list[tuple[Trial, str | None]] = [(t, f"P{p + 1}") for t, p in placed]
                sentinel = Trial("(healthy neighbour)", chunk[0].plan, files, 0.0, "healthy", ())
                judged += [(sentinel, f"P{p + 1}") for p in healthy]
                jobs.append(("six positions", six, overrides, judged, out / f"six-s{seed}-{g:03d}-{c:03d}"))
    return jobs


Job = tuple[str, Path, list[str], list[tuple[Trial, str | None]], Path]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--knob", action="append", default=None,
                        help="only knobs whose name contains this text (repeat for several)")
    parser.add_argument("--flags", action="store_true", help="also try the on/off knobs (on and off)")
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--resume", action="store_true",
                        help="with --out: keep the runs already judged there and run only the rest (errors too)")
    parser.add_argument("--report", type=Path, nargs="+", default=None, metavar="DIR",
                        help="print the table from DIR/judged.jsonl of an earlier (or running) benchmark; no runs. "
                             "With several folders, a knob judged in a later one replaces its trials from the "
                             "earlier ones (a re-run of some knobs after a change)")
    args = parser.parse_args()
    all_trials, no_boundary, discrete, text_knobs = trials(args.knob, flags=args.flags)
    if args.report is not None:
        return report(_tallies(_merged(args.report)), no_boundary, discrete, [], None)
    for one, six in {(t.one, t.six) for t in all_trials}:
        if load_bench(one).meter.model_dump(exclude={"software_version", "software_checksum"}) != load_bench(
                six).meter.model_dump(exclude={"software_version", "software_checksum"}):
            sys.exit(f"{one.name} and {six.name} carry different meter types: the knob values would differ")
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    lock = threading.Lock()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        journal = out / "judged.jsonl"
        jobs = _jobs(all_trials, args.seeds, out)
        if args.resume and journal.exists():
            # A run that left results was judged; the others (errors, or never started) run now.
            rows += [json.loads(line) for line in journal.read_text().splitlines() if line]
            jobs = [job for job in jobs if not (job[4] / "latest" / "results.json").exists()]
        else:
            journal.write_text("")
        print(f"plan_power: {len(all_trials)} trials x {args.seeds} seeds; {len(jobs)} rig runs, {args.jobs} at a time",
              flush=True)
        done = [0]

        def execute(job: Job) -> None:
            bench_name, bench, overrides, judged, reports = job
            files = tuple(sorted({f for trial, _ in judged for f in trial.files}))
            try:
                try:
                    results = run_plans(files, str(bench), overrides, reports)
                except RuntimeError:  # the tree may be mid-edit (a shared working copy): once more, a minute later
                    threading.Event().wait(60.0)
                    results = run_plans(files, str(bench), overrides, reports)
            except (RuntimeError, OSError, ValueError, KeyError) as exc:  # one broken run must not lose the others
                with lock:
                    errors.append(f"{bench_name} {' '.join(overrides)}: {exc}")
                    done[0] += 1
                    print(f"[{done[0]}/{len(jobs)}] {bench_name} {' '.join(overrides)}: RUN ERROR {exc}", flush=True)
                return
            new = []
            for trial, label in judged:
                where = f"{bench_name}{'' if label is None else ' ' + label}, {overrides[-1]}"
                new.append({"plan": trial.plan, "bench": bench_name, "knob": trial.knob, "value": trial.value,
                            "kind": trial.kind, "must_catch": list(trial.must_catch), "where": where,
                            "failed": sorted(_functions(results, label, ("failed", "error"))),
                            "skipped": sorted(_functions(results, label, ("skipped", "bench-fault")))})
            with lock:
                rows.extend(new)
                with journal.open("a") as f:
                    f.writelines(json.dumps(row) + "\n" for row in new)
                done[0] += 1
                verdicts = ", ".join(f"{r['kind']}:{'FAIL' if r['failed'] else 'pass'}" for r in new)
                print(f"[{done[0]}/{len(jobs)}] {bench_name} {' '.join(overrides)}: {verdicts}", flush=True)

        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(execute, jobs))
        for knob in text_knobs:
            print(f"TEXT KNOB   {knob}: a choice of words, not a magnitude; not tried here (its plan's tests set it)")
        return report(_tallies(rows), no_boundary, discrete, errors, args.out)


def report(tallies: dict[tuple[str, str], Tally], no_boundary: list[str], discrete: list[str], errors: list[str],
           out: Path | None) -> int:
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
    for knob in discrete:
        print(f"DISCRETE    {knob}: whole-number settings, tried at the catalogue's outside/inside values")
    for knob in no_boundary:
        print(f"NO BOUNDARY {knob}: tried at the catalogue's outside/inside values, not at 1.1x/0.8x")
        ok = False
    for error in errors:
        print(f"RUN ERROR   {error}")
    print("targets (100 % caught at 1.1x, no false alarm at 0.8x):", "met" if ok else "NOT met")
    if out is not None:
        summary = {f"{p} | {b}": vars(t) for (p, b), t in sorted(tallies.items())}
        (out / "summary.json").write_text(json.dumps({"tallies": summary, "no_boundary": no_boundary,
                                                      "discrete": discrete, "errors": errors, "targets_met": ok},
                                                     indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
