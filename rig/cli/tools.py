"""Commands on benches and the twin: mutate (which plan catches which defect), twin serve and knobs, bench
check."""

from __future__ import annotations

import datetime as dt
import signal
import sys
from pathlib import Path
from typing import Any

import click

from drivers.errors import RigError
from rig.cli.common import bench_option, console, fail, load, main, new_run_id, resolve_plans, set_option
from rig.config import MeterKnobs, dump_bench
from rig.run.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE


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

    config = load(bench_file, overrides)
    if config.twin is None:
        raise fail("rig mutate needs a twin bench (the bench file has no 'twin:' section)")
    out_dir = Path(reports_dir) / f"mutate-{new_run_id()}"
    matrix = run_matrix(resolve_plans(plans), bench_file=bench_file, overrides=overrides, meter=config.meter,
                        out_dir=out_dir, jobs=jobs, console=console)
    click.echo(matrix.text())
    console.print(f"matrix: {out_dir / 'matrix.json'}")
    raise SystemExit(EXIT_OK if matrix.ok else EXIT_FAILED)


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
@click.option("--place", default=None, metavar="NAME",
              help="export the instruments and meter ports as labgrid place NAME: writes a labgrid-exporter config "
                   "and a bench YAML whose resources say place:<name> (rig run --place NAME)")
@click.option("--exporter-config", type=click.Path(dir_okay=False), default=None,
              help="with --place: where the exporter config goes (default: labgrid-exporter-NAME.yaml)")
@click.option("--coordinator", default=None, metavar="HOST:PORT",
              help="with --place: the labgrid coordinator (else LG_COORDINATOR, else 127.0.0.1:20408)")
@click.option("--start-exporter", is_flag=True, default=False,
              help="with --place: also run labgrid-exporter for it while serving")
def twin_serve(bench_file: str | None, overrides: tuple[str, ...], out_file: str | None, speed: float,
               place: str | None, exporter_config: str | None, coordinator: str | None,
               start_exporter: bool) -> None:
    """Run the twin in this process and print a bench YAML whose resources point at its ports."""
    from rig.lab.exporter import serve_on_place
    from rig.lab.resources import PlaceError
    from rig.twin.runtime import Twin

    config = load(bench_file, overrides)
    served = Twin(config)
    served.start(control=True)
    served.clock.pace(speed)  # a plain client (pyvisa, pyserial) sees a bench that runs by itself
    resolved = served.resolve(config, served=True)
    text = dump_bench(resolved)
    exporter = None
    if place is not None:
        try:
            text, exporter, notes = serve_on_place(
                resolved, place, coordinator=coordinator, start=start_exporter,
                config_file=Path(exporter_config) if exporter_config else None)
        except PlaceError as exc:
            served.stop()
            raise fail(str(exc)) from None
        text = "\n".join(notes) + "\n" + text
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
        if exporter is not None:
            exporter.terminate()
            exporter.wait()
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
@click.option("--place", default=None, metavar="NAME",
              help="labgrid place to hold while checking (else the bench file's place.name, if any)")
def bench_check(bench_file: str | None, overrides: tuple[str, ...], place: str | None) -> None:
    """Open every instrument and position; print identity, calibration and status."""
    from rig.bench import bench_session
    from rig.cli.run_command import on_place

    # Held until the command ends, however it ends (click closes the context's resources).
    click.get_current_context().with_resource(on_place(place, False, bench_file, overrides, f"check-{new_run_id()}"))
    config = load(bench_file, overrides)
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
