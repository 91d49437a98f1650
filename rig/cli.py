"""The `rig` command line: run plans, serve the twin, list knobs, check a bench.

Exit codes: 0 all passed, 1 a test failed, 2 bad usage or bench file, 130 interrupted.
"""

from __future__ import annotations

import datetime as dt
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import click
from rich.console import Console

import testplans
from drivers.errors import RigError
from rig.config import BenchConfig, ConfigError, MeterKnobs, dump_bench, load_bench

console = Console(stderr=True, highlight=False, soft_wrap=True)
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

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
    package_dir = Path(testplans.__file__).resolve().parent
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


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("plans", nargs=-1)
@bench_option
@set_option
@click.option("--reports", "reports_dir", type=click.Path(file_okay=False), default="reports", show_default=True,
              help="folder that receives reports/<run-id>/")
def run(plans: tuple[str, ...], bench_file: str | None, overrides: tuple[str, ...], reports_dir: str) -> None:
    """Run test plans (default: all) and write reports/<run-id>/ (report.html, junit.xml, results.json).

    Arguments after `--` go to pytest unchanged, e.g. `rig run testplans/smoke -- -k pulses`.
    """
    import pytest

    plan_args = [p for p in plans if not p.startswith("-")]
    pytest_extra = [p for p in plans if p.startswith("-")]
    config = _load(bench_file, overrides)
    run_id = new_run_id()
    run_dir = Path(reports_dir) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    args = [
        *resolve_plans(tuple(plan_args)),
        # Node ids start with testplans/ wherever the package is installed (rig mutate relies on it).
        f"--rootdir={Path(testplans.__file__).resolve().parent.parent}",
        "-p", "fixtures.plugin", "-p", "fixtures.progress", "--rig-progress",
        "-p", "no:cacheprovider", "-q", "--no-header",
        f"--rig-run-dir={run_dir}", f"--rig-run-id={run_id}",
        f"--html={run_dir / 'report.html'}", "--self-contained-html",
        f"--junitxml={run_dir / 'junit.xml'}",
        "-o", "junit_family=xunit2",
    ]
    if bench_file:
        args.append(f"--bench={bench_file}")
    args += [f"--set={o}" for o in overrides]
    args += pytest_extra
    console.print(f"rig run {run_id}: bench [bold]{config.name}[/bold], meter {config.meter.nameplate}, "
                  f"{len(config.positions)} position(s)")
    code = pytest.main(args)
    _link_latest(Path(reports_dir), run_dir)
    console.print(f"report: {run_dir / 'report.html'}  results: {run_dir / 'results.json'}")
    raise SystemExit(_exit_code(int(code)))


def _exit_code(pytest_code: int) -> int:
    return {0: EXIT_OK, 1: EXIT_FAILED, 2: EXIT_INTERRUPTED, 5: EXIT_USAGE}.get(pytest_code, EXIT_USAGE)


def _link_latest(reports: Path, run_dir: Path) -> None:
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
def twin_serve(bench_file: str | None, overrides: tuple[str, ...], out_file: str | None) -> None:
    """Run the twin in this process and print a bench YAML whose resources point at its ports."""
    from rig.twin.runtime import Twin

    config = _load(bench_file, overrides)
    served = Twin(config)
    served.start(control=True)
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
