"""The `rig` command line: run (and resume) plans, serve the twin, list knobs, check a bench, and the lab
commands on finished runs: report (certificate), verify (tamper evidence), keys (pinned bench keys), history.

Exit codes: 0 all passed, 1 a test failed (verify: something altered or not covered; 3 consistent but a
signer not pinned), 2 bad usage, bench file,
database or run id, 3 (run) nothing failed but the bench could not measure some points, 4 (run) stopped
by the operator step (a position not confirmed mounted and wired, or a question nobody answered: nothing
failed, the run is incomplete), 130 interrupted.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel, ConfigDict, ValidationError
from rich.console import Console

from drivers.errors import RigError
from rig.config import (
    DEFAULT_BENCH,
    BenchConfig,
    ConfigError,
    MeterKnobs,
    dump_bench,
    load_bench,
    parse_ambient,
    read_text_capped,
)
from rig.pin import pin_differences, run_pin
from rig.plans import plans_dir

console = Console(stderr=True, highlight=False, soft_wrap=True)
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_BENCH_FAULT = 3  # nothing failed for a meter, but the bench could not measure some points (resume them)
EXIT_OPERATOR = 4  # stopped: the operator said no or did not answer; incomplete, not a meter failure

bench_option = click.option("--bench", "bench_file", type=click.Path(dir_okay=False), default=None,
                            help="bench file (default: the embedded twin, benches/twin.yaml)")
set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                          help="dotted override, e.g. twin.meter.metering.gain_error_pct=1.2 (repeatable)")


def _load(bench_file: str | None, overrides: tuple[str, ...]) -> BenchConfig:
    try:
        return load_bench(bench_file, overrides)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(EXIT_USAGE) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Meter HIL rig: test plans for smart electricity meters, on a bench or on the software twin."""


# ------------------------------------------------------------------------------------- run


def resolve_plans(plans: tuple[str, ...]) -> list[str]:
    """Plan paths as given (relative to here), else relative to the installed `testplans` package."""
    package_dir = plans_dir()
    if not plans:
        return [str(package_dir)]
    resolved = []
    for plan in plans:
        path_part, sep, selector = plan.partition("::")
        candidates = [Path(path_part), package_dir.parent / path_part, package_dir / path_part]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            console.print(f"[red]error:[/red] no test plan at {path_part!r} (looked in . and {package_dir})")
            raise SystemExit(EXIT_USAGE)
        resolved.append(str(found) + sep + selector)
    return resolved


def new_run_id() -> str:
    """Sortable, unique: `20261125-114500-ab12cd`."""
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


RUN_FILE = "run.json"  # what `rig run` was asked, so that `--resume` can ask the same


class _PytestArgs(click.Command):
    """`rig run PLAN -- ARGS`: everything after `--` goes to pytest as it is (click would take `-k EXPR`'s
    EXPR for another plan)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta["pytest_args"] = args[cut + 1:]
            args = args[:cut]
        return super().parse_args(ctx, args)


@main.command(cls=_PytestArgs, context_settings={"ignore_unknown_options": True})
@click.argument("plans", nargs=-1)
@bench_option
@set_option
@click.option("--reports", "reports_dir", type=click.Path(file_okay=False), default="reports", show_default=True,
              help="folder that receives reports/<run-id>/")
@click.option("--resume", "resume_id", default=None, metavar="RUN_ID",
              help="continue an interrupted run: only items that did not complete run again, into the same "
                   "run id, journal and reports (plans, bench and overrides are the run's own)")
@click.option("--accept-expired-calibration", "accept_expired", default=None, metavar="REASON",
              help="run although the reference standard's calibration has expired; the certificate states REASON")
@click.option("--operator-answers", type=click.Path(dir_okay=False, exists=True), default=None,
              help="YAML file of prepared operator answers by topic (unattended nightly runs on a bench)")
@click.option("--ambient", default=None, metavar="TEMP_C,RH_PCT",
              help="ambient temperature and relative humidity for the certificate (else the operator is asked)")
@click.option("--accept-changed", default=None, metavar="REASON",
              help="with --resume: resume although the bench file, overrides, plans, answers file or rig version "
                   "changed since the run's first session; every certificate of the run states REASON")
def run(plans: tuple[str, ...], bench_file: str | None, overrides: tuple[str, ...], reports_dir: str,
        resume_id: str | None, accept_expired: str | None, ambient: str | None,
        operator_answers: str | None, accept_changed: str | None) -> None:
    """Run test plans (default: all) and write reports/<run-id>/ (report.html, junit.xml, results.json).

    Arguments after `--` go to pytest unchanged, e.g. `rig run testplans/smoke -- -k pulses`.
    `rig run --resume RUN_ID` finishes a run that was interrupted or killed.
    """
    import pytest

    from rig.endings import STOP

    STOP.install()  # from here on a stop signal is recorded and obeyed safely (exit 130), never "Aborted!"
    plan_args = [p for p in plans if not p.startswith("-")]
    pytest_extra = [p for p in plans if p.startswith("-")] + click.get_current_context().meta.get("pytest_args", [])
    session_tag = ""
    if resume_id is not None:
        if plan_args or bench_file or overrides or pytest_extra:
            console.print("[red]error:[/red] --resume runs the plans, bench file and overrides of the original run; "
                          "give only the run id (and --reports)")
            raise SystemExit(EXIT_USAGE)
        run_id = resume_id
        run_dir = Path(reports_dir) / run_id
        asked = _read_run_file(run_dir, run_id)
        plan_args, bench_file, overrides = asked["plans"], asked["bench_file"], tuple(asked["overrides"])
        pytest_extra = asked["pytest_extra"]
        operator_answers = operator_answers or asked.get("operator_answers")
        asked["resumes"].append({"started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
        session_tag = f".s{len(asked['resumes'])}"
    else:
        if accept_changed is not None:
            console.print("[red]error:[/red] --accept-changed goes with --resume RUN_ID (a new run has nothing to "
                          "change)")
            raise SystemExit(EXIT_USAGE)
        run_id = new_run_id()
        run_dir = Path(reports_dir) / run_id
        asked = {"run_id": run_id, "plans": plan_args,
                 "bench_file": str(Path(bench_file).resolve()) if bench_file else None,
                 "overrides": list(overrides), "pytest_extra": pytest_extra, "resumes": [],
                 "operator_answers": str(Path(operator_answers).resolve()) if operator_answers else None}
    config = _load(bench_file, overrides)
    _check_inputs(ambient, operator_answers)  # before the run folder exists: a bad input leaves nothing behind
    pin = run_pin(bench_file=Path(bench_file).resolve() if bench_file else DEFAULT_BENCH, overrides=overrides,
                  plans=plan_args, pytest_extra=pytest_extra,
                  operator_answers=Path(operator_answers).resolve() if operator_answers else None)
    accepted = _resume_pin(run_dir, run_id, config.results_db, pin, accept_changed) if resume_id else None
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RUN_FILE).write_text(json.dumps(asked, indent=2))
    args = [
        *resolve_plans(tuple(plan_args)),
        # Node ids start with testplans/ wherever the package is installed (rig mutate relies on it).
        f"--rootdir={plans_dir().parent}",
        "-p", "fixtures.plugin", "-p", "fixtures.progress", "--rig-progress",
        "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q", "--no-header",
        f"--rig-run-dir={run_dir}", f"--rig-run-id={run_id}",
        f"--html={run_dir / f'report{session_tag}.html'}", "--self-contained-html",
        f"--junitxml={run_dir / f'junit{session_tag}.xml'}",
        "-o", "junit_family=xunit2",
    ]
    if resume_id is not None:
        args.append("--rig-resume")
    if accept_expired:
        args.append(f"--rig-accept-expired-calibration={accept_expired}")
    if ambient:
        args.append(f"--rig-ambient={ambient}")
    if operator_answers:
        args.append(f"--rig-operator-answers={operator_answers}")
    args.append(f"--rig-pin={json.dumps(pin)}")
    if accepted:
        args.append(f"--rig-accept-changed={json.dumps(accepted)}")
    if bench_file:
        args.append(f"--bench={bench_file}")
    args += [f"--set={o}" for o in overrides]
    args += pytest_extra
    verb = "resuming" if resume_id else "run"
    console.print(f"rig {verb} {run_id}: bench [bold]{config.name}[/bold], meter {config.meter.nameplate}, "
                  f"{len(config.positions)} position(s)")
    try:
        code = int(pytest.main(args))
    except KeyboardInterrupt:  # cut before the plugin took over: nothing was opened yet
        code = int(pytest.ExitCode.INTERRUPTED)
    # Whatever ends this command, the session's files are sealed after the last report is written.
    click.get_current_context().call_on_close(lambda: _seal(run_dir))
    _link_latest(Path(reports_dir), run_dir)
    if STOP.interrupted:
        if resume_id is not None:  # a signal after every item completed: the whole-run reports still follow
            _finish_resume(run_dir, code, config.results_db)
        console.print(f"[yellow]interrupted[/yellow] by {', '.join(STOP.received)}; source driven safe; "
                      f"if an item did not complete, finish the run with: rig run --resume {run_id}")
        raise SystemExit(EXIT_INTERRUPTED)
    stopped = _operator_stop(run_dir)
    if stopped:
        console.print(f"[yellow]stopped:[/yellow] {stopped}")
        raise SystemExit(EXIT_OPERATOR)
    refused = _refusal(run_dir)
    if refused:
        console.print(f"[red]refused:[/red] {refused}")
        raise SystemExit(EXIT_USAGE)
    if resume_id is not None:
        code = _finish_resume(run_dir, code, config.results_db)
    else:
        console.print(f"report: {run_dir / 'report.html'}  results: {run_dir / 'results.json'}")
    raise SystemExit(_bench_faults(run_dir, _exit_code(code), resumed=resume_id is not None))


def _bench_faults(run_dir: Path, exit_code: int, *, resumed: bool) -> int:
    """After a run with bench faults: junit.xml from the journal (bench-fault points are errors of type
    bench-fault, not meter failures), what to do next, and exit 3 when only the bench failed."""
    from rig.results import BENCH_FAULT, whole_run_junit

    try:
        document = json.loads((run_dir / "results.json").read_text())
    except (OSError, ValueError):
        return exit_code
    faults = int(document.get("bench_faults") or 0)
    if not faults:
        return exit_code
    if not resumed:
        (run_dir / "junit.xml").write_text(whole_run_junit(document))
    stopped = document.get("stopped_because")
    console.print(f"[yellow]bench faults:[/yellow] {faults} point(s) not measured because an instrument or link "
                  f"failed{'; the run stopped: ' + stopped if stopped else ''}; measure them again with "
                  f"rig run --resume {document.get('run_id')}")
    if document.get("verdict") == BENCH_FAULT and exit_code == EXIT_FAILED:
        return EXIT_BENCH_FAULT
    return exit_code


def _refusal(run_dir: Path) -> str | None:
    """Why the plugin refused to start the run (expired calibration, bench not reachable), if it did."""
    try:
        reason = json.loads((run_dir / "results.json").read_text()).get("refused_because")
    except (OSError, ValueError, AttributeError):
        return None
    return str(reason) if reason else None


def _operator_stop(run_dir: Path) -> str | None:
    """Why the operator step stopped the run (fixtures.gate), if it did."""
    try:
        document = json.loads((run_dir / "results.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("stopped_by") != "operator":
        return None
    return str(document.get("stopped_because") or "stopped by the operator step")


class RunFile(BaseModel):
    """run.json: what `rig run` was asked, so that `--resume` asks the same (types checked, extra keys kept)."""

    model_config = ConfigDict(extra="allow", strict=True)

    run_id: str
    plans: list[str]
    bench_file: str | None
    overrides: list[str]
    pytest_extra: list[str]
    operator_answers: str | None = None
    resumes: list[dict[str, Any]] = []


def _read_run_file(run_dir: Path, run_id: str) -> dict[str, Any]:
    path = run_dir / RUN_FILE
    try:
        asked = RunFile.model_validate(json.loads(path.read_text())).model_dump()
        if asked["run_id"] != run_id:
            raise ValueError(f"it belongs to run {asked['run_id']}")
        return asked
    except FileNotFoundError:
        console.print(f"[red]error:[/red] cannot resume {run_id!r}: no {path} (is the run id right, and --reports?)")
    except ValidationError as exc:
        wrong = "; ".join(f"'{'.'.join(str(p) for p in e['loc']) or '(top level)'}': {e['msg']}" for e in exc.errors())
        console.print(f"[red]error:[/red] cannot resume {run_id!r}: {path} is damaged ({wrong})")
    except (OSError, ValueError) as exc:
        console.print(f"[red]error:[/red] cannot resume {run_id!r}: {path} is unreadable or damaged ({exc})")
    raise SystemExit(EXIT_USAGE)


def _check_inputs(ambient: str | None, operator_answers: str | None) -> None:
    """--ambient and the answers file, checked before anything is created; exit 2 naming what is wrong."""
    from rig.operator import OperatorError, load_answers

    try:
        if ambient:
            parse_ambient(ambient)
        if operator_answers:
            read_text_capped(Path(operator_answers), "operator answers file")  # /dev/zero: an error, not a hang
            load_answers(Path(operator_answers))
    except (ConfigError, OperatorError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(EXIT_USAGE) from None
    except RecursionError:
        console.print(f"[red]error:[/red] operator answers file {operator_answers} is nested too deeply to be "
                      "a mapping of topics to answers")
        raise SystemExit(EXIT_USAGE) from None


def _resume_pin(run_dir: Path, run_id: str, db: str | None, pin: dict[str, Any],
                accept_changed: str | None) -> dict[str, Any] | None:
    """Compare what this resume is asked with the first session's pin: exit 2 naming each difference,
    unless accepted with a reason (then the acceptance, for the session's metadata and the certificate)."""
    from rig.results import Journal, JournalError

    url = db or os.environ.get("RIG_DB")
    try:
        journal = Journal(url, create=False) if url else Journal.in_folder(run_dir, create=False)
        try:
            sessions = journal.sessions(run_id)
        finally:
            journal.close()
    except JournalError:
        return None  # no journal or no run: the plugin refuses, naming what is missing
    if not sessions:
        return None
    first = sessions[0].meta.get("pin")
    if not isinstance(first, dict):
        console.print(f"[yellow]warning:[/yellow] run {run_id}'s first session holds no pin (an older rig): "
                      "changes to its bench file, overrides and answers file cannot be checked")
        return None
    changes = pin_differences(first, pin)
    if not changes:
        return None
    if accept_changed is None:
        console.print(f"[red]error:[/red] cannot resume {run_id}: changed since its first session: "
                      f"{'; '.join(changes)}. Undo the change, or resume with --accept-changed \"REASON\" "
                      "(every certificate of the run will state it)")
        raise SystemExit(EXIT_USAGE)
    console.print(f"[yellow]accepted changes[/yellow] ({accept_changed}): {'; '.join(changes)}")
    return {"reason": accept_changed, "differences": changes}


def _seal(run_dir: Path, *, final: bool = True) -> None:
    """Sign the hash of every file of the run folder with the session's key (rig.verify.seal_folder)."""
    from rig.verify import seal_folder

    try:
        seal_folder(run_dir, final=final)
    except (RigError, OSError) as exc:
        console.print(f"[red]error:[/red] could not seal the reports of {run_dir.name}: {exc}; "
                      "`rig verify` will report them as covered by no signature")


def _finish_resume(run_dir: Path, pytest_code: int, db: str | None) -> int:
    """After a resume: whole-run junit.xml and certificate.html; the exit code of the whole run."""
    from rig.results import whole_run_junit

    results_file = run_dir / "results.json"
    if pytest_code not in (0, 1, 5) or not results_file.is_file():
        return pytest_code
    document = json.loads(results_file.read_text())
    first_junit = run_dir / "junit.xml"
    if first_junit.is_file() and not (run_dir / "junit.s0.xml").exists():
        first_junit.rename(run_dir / "junit.s0.xml")
    first_junit.write_text(whole_run_junit(document))
    _seal(run_dir, final=False)  # the certificate states the verification at issue: seal what is written so far
    try:
        journal, run_id, folder = _locate(str(run_dir), None, db)
        from rig.certificate import certificate_data, render_html

        (run_dir / "certificate.html").write_text(render_html(certificate_data(journal, run_id, folder)))
    except SystemExit:
        pass
    console.print(f"whole run: {document['verdict']}; results: {results_file}  junit: {first_junit}  "
                  f"certificate: {run_dir / 'certificate.html'}")
    return {"pass": 0, "fail": 1, "interrupted": 2, "bench-fault": 1}.get(str(document["verdict"]), 4)


def _exit_code(pytest_code: int) -> int:
    return {0: EXIT_OK, 1: EXIT_FAILED, 2: EXIT_INTERRUPTED, 5: EXIT_USAGE}.get(pytest_code, EXIT_USAGE)


# ------------------------------------------------------------------- finished runs: where they are


def _locate(run: str, reports_dir: str | None, db: str | None) -> tuple[Any, str, Path | None]:
    """(journal, run id, run folder or None) for a run id or a results folder; exit 2 naming what is missing.

    The journal is --db, else the folder's journal.sqlite, else RIG_DB.
    """
    from rig.results import Journal, JournalError

    given = Path(run)
    folder: Path | None
    if given.is_dir():
        folder = given
        run_id = _run_id_of(folder)
    else:
        if "/" in run or os.sep in run:
            console.print(f"[red]error:[/red] no results folder {run}")
            raise SystemExit(EXIT_USAGE)
        run_id = run
        candidate = Path(reports_dir or "reports") / run
        folder = candidate if candidate.is_dir() else None
    try:
        if db:
            journal = Journal(db, create=False)
        elif folder is not None and (folder / "journal.sqlite").is_file():
            journal = Journal.in_folder(folder, create=False)
        elif os.environ.get("RIG_DB"):
            journal = Journal(os.environ["RIG_DB"], create=False)
        else:
            where = f"in {folder}" if folder is not None else f"for run {run_id!r} under {reports_dir or 'reports'}/"
            console.print(f"[red]error:[/red] no journal {where}; give --db URL (or set RIG_DB) when the run "
                          "was journaled to a lab database")
            raise SystemExit(EXIT_USAGE)
        journal.run(run_id)
    except JournalError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(EXIT_USAGE) from None
    return journal, run_id, folder


def _run_id_of(folder: Path) -> str:
    for name, key in (("results.json", "run_id"), (RUN_FILE, "run_id")):
        path = folder / name
        if path.is_file():
            try:
                value = json.loads(path.read_text()).get(key)
            except (ValueError, AttributeError, OSError):
                continue
            if isinstance(value, str) and value:
                return value
    return folder.resolve().name


db_option = click.option("--db", default=None, metavar="URL",
                         help="results database (SQLAlchemy URL); default: the run folder's journal, else RIG_DB")
reports_option = click.option("--reports", "reports_dir", type=click.Path(file_okay=False), default="reports",
                              show_default=True, help="folder holding the run folders")


# ----------------------------------------------------------------------------------- report


@main.command()
@click.argument("run_ref", metavar="RUN_ID|FOLDER")
@click.option("--format", "fmt", type=click.Choice(["html", "pdf"]), default="html", show_default=True)
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="where to write it (default: certificate.<format> in the run folder)")
@reports_option
@db_option
def report(run_ref: str, fmt: str, out_file: str | None, reports_dir: str, db: str | None) -> None:
    """Write a run's certificate: per meter, identity, bench and traceability, every test, verdict."""
    from rig.certificate import certificate_data, render_html, render_pdf

    journal, run_id, folder = _locate(run_ref, reports_dir, db)
    data = certificate_data(journal, run_id, folder)
    target = Path(out_file) if out_file else (folder or Path(reports_dir) / run_id) / f"certificate.{fmt}"
    _write_out(target, render_html(data).encode("utf-8") if fmt == "html" else render_pdf(data), "--out")
    console.print(f"certificate {data.number}: {target} (overall verdict: {data.overall_verdict})")
    raise SystemExit(EXIT_OK)


# ----------------------------------------------------------------------------------- verify


PUBLIC_KEY_PATTERN = r"(04)?[0-9a-fA-F]{128}"


def _public_key(value: str | None, what: str) -> str | None:
    import re

    if value is not None and not re.fullmatch(PUBLIC_KEY_PATTERN, value):
        console.print(f"[red]error:[/red] {what} must be the SM2 public key: 128 hex digits x||y (04 prefix allowed)")
        raise SystemExit(EXIT_USAGE)
    return value


def _lab_db(db: str | None, *, required: bool) -> Any:
    """The lab database holding the pinned bench keys: --db, else RIG_DB (never a run folder's own journal)."""
    from rig.results import Journal, JournalError

    url = db or os.environ.get("RIG_DB") or None
    if url is None:
        if required:
            console.print("[red]error:[/red] bench keys are pinned in the lab database: give --db URL or set RIG_DB")
            raise SystemExit(EXIT_USAGE)
        return None
    try:
        return Journal(url, create=required)
    except JournalError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(EXIT_USAGE) from None


@main.command()
@click.argument("run_ref", metavar="RUN_ID|FOLDER")
@click.option("--expect-key", default=None, metavar="PUBLIC_HEX",
              help="the bench's SM2 public key (128 hex digits): fail unless the run was signed with it")
@reports_option
@db_option
def verify(run_ref: str, expect_key: str | None, reports_dir: str, db: str | None) -> None:
    """Check a run for alterations: SM3 record chain, SM2 signatures and who made them, every run-folder file,
    results.json field by field.

    Exit 0 nothing altered, everything covered by a signature, and every signer pinned (--expect-key, or the
    bench's keys pinned in the lab database: --db or RIG_DB); 3 the same but a signer is not pinned (the files
    agree with each other; who wrote them is not proven); 1 something altered or not covered; 2 bad input.
    """
    from rig.results import JournalError
    from rig.verify import Pins, verify_run

    _public_key(expect_key, "--expect-key")
    journal, run_id, folder = _locate(run_ref, reports_dir, db)
    lab = _lab_db(db, required=False)
    try:
        pins = Pins.of(expect_key, lab.pinned_keys() if lab is not None else ())
    except JournalError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(EXIT_USAGE) from None
    result = verify_run(journal, run_id, folder, pins=pins)
    click.echo(result.text())
    raise SystemExit(result.exit_code)


@main.group("keys")
def keys_group() -> None:
    """The bench keys a lab pins in its database: `rig verify` fails a run of that bench signed by another key."""


@keys_group.command("pin")
@click.argument("bench", required=False)
@click.argument("public_hex", required=False)
@click.option("--from-run", "from_run", default=None, metavar="RUN_ID|FOLDER",
              help="pin the bench key that signed this run (one you know was made on the bench)")
@click.option("--note", default=None, help="why, e.g. the key's custodian or the bench's serial number")
@reports_option
@db_option
def keys_pin(bench: str | None, public_hex: str | None, from_run: str | None, note: str | None, reports_dir: str,
             db: str | None) -> None:
    """Pin BENCH's SM2 public key (PUBLIC_HEX, or the one that signed --from-run) in the lab database."""
    from rig.integrity import key_fingerprint, normalise_public_key

    lab = _lab_db(db, required=True)
    if from_run is not None:
        bench, public_hex = _key_of_run(from_run, reports_dir, db, bench)
    if bench is None or public_hex is None:
        console.print("[red]error:[/red] give BENCH and PUBLIC_HEX, or --from-run RUN_ID")
        raise SystemExit(EXIT_USAGE)
    key = normalise_public_key(str(_public_key(public_hex, "PUBLIC_HEX")))
    added = lab.pin_key(bench, key, pinned_by=_whoami(), note=note)
    console.print(f"bench {bench}: key {key_fingerprint(key)} {'pinned' if added else 'was pinned already'} "
                  f"in {lab.shown_url}")
    raise SystemExit(EXIT_OK)


def _key_of_run(run_ref: str, reports_dir: str, db: str | None, bench: str | None) -> tuple[str, str]:
    folder = Path(run_ref) if Path(run_ref).is_dir() else Path(reports_dir) / run_ref
    # The run's own journal when its folder has one; else the lab database (where its runs are journaled).
    journal, run_id, _folder = _locate(run_ref, reports_dir, None if (folder / "journal.sqlite").is_file() else db)
    run = journal.run(run_id)
    keys = {s.public_key for s in journal.sessions(run_id) if s.signature and s.key_kind == "bench" and s.public_key}
    if len(keys) != 1:
        console.print(f"[red]error:[/red] run {run_id} was signed by {len(keys)} bench key(s), not one "
                      "(a run on the twin or a bench without keys.signing has only throwaway keys: nothing to pin)")
        raise SystemExit(EXIT_USAGE)
    if bench is not None and bench != run.bench:
        console.print(f"[red]error:[/red] run {run_id} was made on bench {run.bench!r}, not {bench!r}")
        raise SystemExit(EXIT_USAGE)
    return run.bench, keys.pop()


def _whoami() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@keys_group.command("list")
@db_option
def keys_list(db: str | None) -> None:
    """The pinned bench keys of the lab database."""
    from rig.integrity import key_fingerprint

    lab = _lab_db(db, required=True)
    rows = lab.pinned_keys()
    for row in rows:
        click.echo(f"{row.bench}\t{key_fingerprint(row.public_key)}\t{row.public_key}\tpinned {row.pinned_utc} "
                   f"by {row.pinned_by}" + (f"\t{row.note}" if row.note else ""))
    if not rows:
        console.print(f"no bench keys pinned in {lab.shown_url}")
    raise SystemExit(EXIT_OK)


# ---------------------------------------------------------------------------------- history


@main.command()
@click.option("--meter", default=None, metavar="ADDR", help="only this meter address")
@click.option("--test", "test_id", default=None, metavar="ID", help="only tests whose node id contains ID")
@click.option("--quantity", default=None, metavar="TEXT", help="only quantities containing TEXT")
@click.option("--since", default=None, metavar="DATE", help="only records from DATE (YYYY-MM-DD) on")
@click.option("--db", "dbs", multiple=True, metavar="URL",
              help="results database(s) to read (repeatable); default: RIG_DB, else every run folder's journal")
@reports_option
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None,
              help="write a trend plot (PNG) of the selected points' values over time")
@click.option("--horizon", default=5, show_default=True, type=click.IntRange(1, 1000),
              help="flag a trend projected to cross its limit within this many runs")
@click.option("--margin", default=80.0, show_default=True, type=click.FloatRange(1, 100),
              help="flag a last value beyond this % of its limit")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def history(meter: str | None, test_id: str | None, quantity: str | None, since: str | None, dbs: tuple[str, ...],
            reports_dir: str, plot_file: str | None, horizon: int, margin: float, as_json: bool) -> None:
    """Results across runs and benches, per meter and point; flags drift towards a limit before it fails."""
    import rig.history as hist
    from rig.results import Journal, JournalError

    since_utc = None
    if since:
        try:
            since_utc = dt.date.fromisoformat(since).isoformat()
        except ValueError:
            console.print(f"[red]error:[/red] --since {since!r} is not a date (YYYY-MM-DD)")
            raise SystemExit(EXIT_USAGE) from None
    urls = list(dbs) or ([os.environ["RIG_DB"]] if os.environ.get("RIG_DB") else [])
    try:
        if urls:
            journals = [Journal(url, create=False) for url in urls]
        else:
            found = sorted(Path(reports_dir).glob("*/journal.sqlite"))
            if not found:
                console.print(f"[red]error:[/red] no journals under {reports_dir}/ and no --db or RIG_DB given")
                raise SystemExit(EXIT_USAGE)
            journals = [Journal.in_folder(p.parent, create=False) for p in found]
        points = hist.collect(journals, meter=meter, test=test_id, quantity=quantity, since_utc=since_utc)
    except JournalError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(EXIT_USAGE) from None
    series = hist.group(points)
    flags = hist.assess(series, horizon_runs=horizon, margin=margin / 100.0)
    if as_json:
        click.echo(json.dumps(hist.to_json(series, flags), indent=2))
    else:
        click.echo(hist.table(series, flags))
    if plot_file:
        if not series:
            console.print("[red]error:[/red] nothing selected to plot")
            raise SystemExit(EXIT_USAGE)
        _write_out(Path(plot_file), hist.trend_png(series, flags), "--plot")
        console.print(f"trend plot: {plot_file}")
    raise SystemExit(EXIT_OK)


def _write_out(target: Path, data: bytes, option: str) -> None:
    """Write an output file, creating its folder; exit 2 naming the option and why when that cannot be done."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    except OSError as exc:
        console.print(f"[red]error:[/red] {option} {target}: cannot write it ({exc.strerror or exc})")
        raise SystemExit(EXIT_USAGE) from None


def _link_latest(reports: Path, run_dir: Path) -> None:
    """Point reports/latest at the run, unless it was refused or never started (latest keeps the last real run)."""
    if not (run_dir / "results.json").is_file() or _refusal(run_dir):
        return
    latest = reports / "latest"
    try:
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(run_dir.name, target_is_directory=True)
    except OSError:
        (reports / "LATEST").write_text(run_dir.name + "\n")


# ---------------------------------------------------------------------------------- mutate


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("plans", nargs=-1)
@bench_option
@set_option
@click.option("--reports", "reports_dir", type=click.Path(file_okay=False), default="reports", show_default=True)
@click.option("--jobs", type=click.IntRange(1, 8), default=2, show_default=True, help="twin runs at the same time")
def mutate(plans: tuple[str, ...], bench_file: str | None, overrides: tuple[str, ...], reports_dir: str,
           jobs: int) -> None:
    """Run the plans on the healthy twin and once per defect knob: which plan catches which defect.

    Writes reports/mutate-<id>/matrix.json and matrix.txt. Exit 1 when a knob is missed or the
    healthy twin fails a plan.
    """
    from rig.mutate import run_matrix

    config = _load(bench_file, overrides)
    if config.twin is None:
        console.print("[red]error:[/red] rig mutate needs a twin bench (the bench file has no 'twin:' section)")
        raise SystemExit(EXIT_USAGE)
    out_dir = Path(reports_dir) / f"mutate-{new_run_id()}"
    matrix = run_matrix(resolve_plans(plans), bench_file=bench_file, overrides=overrides, meter=config.meter,
                        out_dir=out_dir, jobs=jobs, console=console)
    click.echo(matrix.text())
    console.print(f"matrix: {out_dir / 'matrix.json'}")
    raise SystemExit(EXIT_OK if matrix.ok else EXIT_FAILED)


# ------------------------------------------------------------------------------------ twin


@main.group()
def twin() -> None:
    """The software twin: serve it on loopback ports, list its defect knobs."""


@twin.command("serve")
@bench_option
@set_option
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="also write the ready bench YAML to this file")
@click.option("--speed", type=click.FloatRange(min=0.0), default=1.0, show_default=True,
              help="bench seconds per wall second the twin's clock runs by itself (0: only when a client of "
                   "the control channel sleeps); a client's sleep still jumps ahead")
def twin_serve(bench_file: str | None, overrides: tuple[str, ...], out_file: str | None, speed: float) -> None:
    """Run the twin in this process and print a bench YAML whose resources point at its ports."""
    from rig.twin.runtime import Twin

    config = _load(bench_file, overrides)
    served = Twin(config)
    served.start(control=True)
    served.clock.pace(speed)  # a plain client (pyvisa, pyserial) sees a bench that runs by itself
    text = dump_bench(served.resolve(config, served=True))
    if out_file:
        Path(out_file).write_text(text)
    sys.stdout.write(f"# twin serving; stop with Ctrl-C. Use: rig run --bench <this file>\n{text}")
    sys.stdout.flush()
    stop = {"now": False}

    def _stop(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stop["now"]:
            signal.pause() if hasattr(signal, "pause") else None
    finally:
        served.clock.stop_pacing()
        served.stop()


def iter_knobs(model: type[Any] = MeterKnobs, prefix: str = "twin.meter") -> list[tuple[str, Any, str, str]]:
    """(key, default, description, what it breaks) for every knob of a meter, walking the model."""
    out: list[tuple[str, Any, str, str]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            out += iter_knobs(annotation, f"{prefix}.{name}")
        else:
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            out.append((f"{prefix}.{name}", field.default, field.description or "", str(extra.get("breaks", ""))))
    return out


@twin.command("knobs")
def twin_knobs() -> None:
    """List every defect knob, its healthy default, and what it breaks."""
    # Plain lines, so labs can grep and script it; twin.positions.<i>.<same path> overrides one position.
    for key, default, description, breaks in iter_knobs():
        click.echo(f"{key} = {default!r}\n    {description}\n    breaks: {breaks}")
    from rig.config import FAULT_KINDS

    click.echo("twin.faults.schedule = []\n    bench faults on the virtual clock: {kind, target, at_s, duration_s, "
               f"rate}}; kind: {', '.join(FAULT_KINDS)}\n    breaks: the bench, not the meter (README 'Bench faults')")


# ----------------------------------------------------------------------------------- bench


@main.group("bench")
def bench_group() -> None:
    """Bench files and instruments."""


@bench_group.command("check")
@bench_option
@set_option
def bench_check(bench_file: str | None, overrides: tuple[str, ...]) -> None:
    """Open every instrument and position; print identity, calibration and status."""
    from rig.bench import bench_session

    config = _load(bench_file, overrides)
    problems: list[str] = []
    try:
        with bench_session(config) as bench:
            console.print(f"source     {bench.source.resource}: {bench.source.identity()}")
            console.print(f"           output {'ON' if bench.source.output_enabled else 'off'}")
            calibration = bench.reference.calibration()
            expired = calibration.expired(dt.date.today())
            console.print(f"reference  {bench.reference.resource}: {bench.reference.identity()}")
            console.print(f"           calibration {calibration.certificate}, due {calibration.due}"
                          + (" [red]EXPIRED[/red]" if expired else ""))
            if expired:
                problems.append(f"reference calibration {calibration.certificate} expired on {calibration.due}")
            for position in bench.positions:
                state = position.calculator.state().value
                console.print(f"position   {position.name}: meter {position.address}, "
                              f"pulse channel {position.config.pulse_channel} ({state})")
    except RigError as exc:
        problems.append(str(exc))
    for problem in problems:
        console.print(f"[red]problem:[/red] {problem}")
    raise SystemExit(EXIT_USAGE if problems else EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
