"""`rig run`: run (or resume) test plans under pytest with the rig's plugin, into reports/<run-id>/.

The command asks; the run lifecycle (rig.run) does: run.json and the resume pin before pytest, the seal,
reports/latest, the whole-run documents of a resume and the exit code after it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from rig.cli.common import (
    bench_option,
    console,
    fail,
    load,
    main,
    new_run_id,
    resolve_plans,
    run_id_of,
    set_option,
)
from rig.config import DEFAULT_BENCH, ConfigError, parse_ambient, read_text_capped
from rig.pin import run_pin
from rig.plans import plans_dir
from rig.run.exits import EXIT_INTERRUPTED


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
              help="continue an interrupted run (its id, or `latest`): only items that did not complete run "
                   "again, into the same run id, journal and reports (plans, bench and overrides are the run's own)")
@click.option("--accept-expired-calibration", "accept_expired", default=None, metavar="REASON",
              help="run although the reference standard's calibration has expired; the certificate states REASON")
@click.option("--operator-answers", type=click.Path(dir_okay=False, exists=True), default=None,
              help="YAML file of prepared operator answers by topic (unattended nightly runs on a bench)")
@click.option("--ambient", default=None, metavar="TEMP_C,RH_PCT",
              help="ambient temperature and relative humidity for the certificate (else the operator is asked)")
@click.option("--accept-changed", default=None, metavar="REASON",
              help="with --resume: resume although the bench file, overrides, plans, answers file or rig version "
                   "changed since the run's first session; every certificate of the run states REASON")
@click.option("--place", default=None, metavar="NAME",
              help="labgrid place to hold for the run (its coordinator: the bench file's place:, else LG_COORDINATOR); "
                   "its resources fill the bench file's place:NAME values; released on every ending")
@click.option("--wait", "wait_place", is_flag=True, default=False,
              help="with a place: wait while another run holds it (a labgrid reservation), rather than fail")
@click.option("--panel", is_flag=True, expose_value=False,
              callback=lambda ctx, _, value: _remember(ctx, "panel", value),
              help="serve the live operator panel on 127.0.0.1 (its address is printed at the start): lamps, steps, "
                   "times, records, and the operator's questions with buttons (the terminal asks them too)")
@click.option("--panel-port", type=click.IntRange(0, 65535), default=0, show_default=True, expose_value=False,
              callback=lambda ctx, _, value: _remember(ctx, "panel_port", value),
              help="with --panel: the panel's port (0: any free port)")
def run(plans: tuple[str, ...], bench_file: str | None, overrides: tuple[str, ...], reports_dir: str,
        resume_id: str | None, accept_expired: str | None, ambient: str | None,
        operator_answers: str | None, accept_changed: str | None, place: str | None,
        wait_place: bool) -> None:
    """Run test plans (default: all) and write reports/<run-id>/ (report.html, junit.xml, results.json).

    Arguments after `--` go to pytest unchanged, e.g. `rig run testplans/smoke -- -k pulses`.
    `rig run --resume RUN_ID` finishes a run that was interrupted or killed.
    """
    from rig.endings import STOP
    from rig.run.resume import RunInputError, new_request, resume_request

    STOP.install()  # from here on a stop signal is recorded and obeyed safely (exit 130), never "Aborted!"
    plan_args = [p for p in plans if not p.startswith("-")]
    pytest_extra = [p for p in plans if p.startswith("-")] + click.get_current_context().meta.get("pytest_args", [])
    try:
        if resume_id is not None:
            if plan_args or bench_file or overrides or pytest_extra:
                raise RunInputError("--resume runs the plans, bench file and overrides of the original run; give "
                                    "only the run id (and --reports)")
            if (Path(reports_dir) / resume_id).is_dir():  # `latest` names the newest run folder's run
                resume_id = run_id_of(Path(reports_dir) / resume_id)
            asked = resume_request(Path(reports_dir) / resume_id, resume_id)
        else:
            if accept_changed is not None:
                raise RunInputError("--accept-changed goes with --resume RUN_ID (a new run has nothing to change)")
            asked = new_request(new_run_id(), plans=plan_args, bench_file=bench_file, overrides=overrides,
                                pytest_extra=pytest_extra, operator_answers=operator_answers)
    except RunInputError as exc:
        raise fail(str(exc)) from None
    # A new run reads its files as given; a resume those run.json names (by absolute path).
    run_bench = asked["bench_file"] if resume_id is not None else bench_file
    with on_place(place, wait_place, run_bench, tuple(asked["overrides"]), asked["run_id"]):
        _run(asked, Path(reports_dir), bench_file=run_bench,
             resumed=resume_id is not None, accept_expired=accept_expired, ambient=ambient,
             operator_answers=operator_answers or asked.get("operator_answers"), accept_changed=accept_changed)


@contextlib.contextmanager
def on_place(name: str | None, wait: bool, bench_file: str | None, overrides: tuple[str, ...],
              run_id: str) -> Iterator[None]:
    """Hold the labgrid place (--place, else the bench file's place.name) around the run; no place: nothing."""
    from rig.config.place import PlaceConfig
    from rig.endings import STOP
    from rig.lab.places import held_place, place_of_bench
    from rig.lab.resources import PlaceError

    try:
        place = place_of_bench(bench_file, overrides)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    if name is not None or wait:
        place = (place or PlaceConfig()).model_copy(update={k: v for k, v in (("name", name), ("wait", wait)) if v})
    if place is None or place.name is None:
        if wait:
            raise fail("--wait waits for a labgrid place: give --place NAME (or place.name in the bench file)")
        yield
        return
    try:
        with held_place(place, run_id, console.print, STOP.interruptible):
            yield
    except PlaceError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:  # a stop signal while waiting for the place: its reservation is cancelled
        console.print(f"rig run: interrupted; place {place.name} not held any more")
        raise SystemExit(EXIT_INTERRUPTED) from None


def _run(asked: dict[str, Any], reports: Path, *, bench_file: str | None, resumed: bool, accept_expired: str | None,
         ambient: str | None, operator_answers: str | None, accept_changed: str | None) -> None:
    """Check the inputs, write run.json, run pytest, conclude: exits with the run's exit code."""
    import pytest

    from rig.run.folder import conclude, link_latest, seal
    from rig.run.resume import RunInputError, check_pin, write_run_file

    run_id, overrides = asked["run_id"], tuple(asked["overrides"])
    run_dir = reports / run_id
    config = load(bench_file, overrides)
    _check_inputs(ambient, operator_answers)  # before the run folder exists: a bad input leaves nothing behind
    pin = run_pin(bench_file=Path(bench_file).resolve() if bench_file else DEFAULT_BENCH, overrides=overrides,
                  plans=asked["plans"], pytest_extra=asked["pytest_extra"],
                  operator_answers=Path(operator_answers).resolve() if operator_answers else None)
    try:
        accepted = check_pin(run_dir, run_id, config.results_db, pin, accept_changed, console.print) if resumed \
            else None
    except RunInputError as exc:
        raise fail(str(exc)) from None
    write_run_file(run_dir, asked)
    session_tag = f".s{len(asked['resumes'])}" if resumed else ""
    args = _pytest_args(asked, run_dir, session_tag, resumed=resumed, accept_expired=accept_expired, ambient=ambient,
                        operator_answers=operator_answers, pin=pin, accepted=accepted, bench_file=bench_file)
    console.print(f"rig {'resuming' if resumed else 'run'} {run_id}: bench [bold]{config.name}[/bold], meter "
                  f"{config.meter.nameplate}, {len(config.positions)} position(s)")
    try:
        status = int(pytest.main(args))
    except KeyboardInterrupt:  # cut before the plugin took over: nothing was opened yet
        status = int(pytest.ExitCode.INTERRUPTED)
    # Whatever ends this command, the session's files are sealed after the last report is written.
    click.get_current_context().call_on_close(lambda: seal(run_dir, console.print))
    link_latest(reports, run_dir)
    raise SystemExit(conclude(run_dir, status, console.print, resumed=resumed, db=config.results_db))


def _pytest_args(asked: dict[str, Any], run_dir: Path, session_tag: str, *, resumed: bool,
                 accept_expired: str | None, ambient: str | None, operator_answers: str | None,
                 pin: dict[str, Any], accepted: dict[str, Any] | None, bench_file: str | None) -> list[str]:
    """pytest's command line for one session of the run."""
    args = [
        *resolve_plans(tuple(asked["plans"])),
        # Node ids start with testplans/ wherever the package is installed (rig mutate relies on it).
        f"--rootdir={plans_dir().parent}",
        # The progress plugin prints a line per point: pytest's own `[100%]` would trail the last one.
        "-p", "fixtures.plugin", "-p", "fixtures.progress", "--rig-progress", "-o", "console_output_style=classic",
        # pytest marks the package of a pytest11 plugin (all of meter-hil-rig) for assert rewriting; this command
        # has imported rig, drivers and testplans already, and their asserts need no rewriting.
        "-W", "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning",
        "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:labgrid", "-q", "--no-header",
        f"--rig-run-dir={run_dir}", f"--rig-run-id={asked['run_id']}",
        f"--html={run_dir / f'report{session_tag}.html'}", "--self-contained-html",
        f"--junitxml={run_dir / f'junit{session_tag}.xml'}",
        "-o", "junit_family=xunit2",
    ]
    options = {"--rig-resume": resumed, "--rig-accept-expired-calibration": accept_expired,
               "--rig-ambient": ambient, "--rig-operator-answers": operator_answers,
               "--rig-pin": json.dumps(pin), "--rig-accept-changed": json.dumps(accepted) if accepted else None,
               "--bench": bench_file}
    for option, value in options.items():
        if value is True:
            args.append(option)
        elif value:
            args.append(f"{option}={value}")
    args += [f"--set={o}" for o in asked["overrides"]]
    meta = click.get_current_context().meta
    if meta.get("rig_panel"):
        args.append(f"--rig-panel={meta.get('rig_panel_port', 0)}")
    return args + list(asked["pytest_extra"])


def _remember(ctx: click.Context, name: str, value: Any) -> Any:
    """The panel options reach pytest's arguments through the context (they change nothing else of a run)."""
    ctx.meta[f"rig_{name}"] = value
    return value


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
        raise fail(str(exc)) from None
    except RecursionError:
        raise fail(f"operator answers file {operator_answers} is nested too deeply to be a mapping of topics to "
                   "answers") from None
