"""What every `rig` command shares: the console, exit codes, the bench and folder options, and finding
a finished run (its journal and folder) from a run id or a folder."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from rig.config import BenchConfig, ConfigError, load_bench
from rig.plans import plans_dir
from rig.run.exits import EXIT_USAGE

console = Console(stderr=True, highlight=False, soft_wrap=True)

bench_option = click.option("--bench", "bench_file", type=click.Path(dir_okay=False), default=None,
                            help="bench file (default: the embedded twin, benches/twin.yaml)")
set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                          help="dotted override, e.g. twin.meter.metering.gain_error_pct=1.2 (repeatable)")
db_option = click.option("--db", default=None, metavar="URL",
                         help="results database (SQLAlchemy URL); default: the run folder's journal, else RIG_DB")
reports_option = click.option("--reports", "reports_dir", type=click.Path(file_okay=False), default="reports",
                              show_default=True, help="folder holding the run folders")


def fail(message: str) -> SystemExit:
    """Print one error line; the SystemExit (exit 2) to raise."""
    console.print(f"[red]error:[/red] {message}")
    return SystemExit(EXIT_USAGE)


def load(bench_file: str | None, overrides: tuple[str, ...]) -> BenchConfig:
    """The bench file with its overrides; exit 2 naming what is wrong."""
    try:
        return load_bench(bench_file, overrides)
    except ConfigError as exc:
        raise fail(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="meter-hil-rig", prog_name="rig", message="%(prog)s %(version)s")
def main() -> None:
    """Meter HIL rig: test plans for smart electricity meters, on a bench or on the software twin."""


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
            raise fail(f"no test plan at {path_part!r} (looked in . and {package_dir})")
        resolved.append(str(found) + sep + selector)
    return resolved


def new_run_id() -> str:
    """Sortable, unique: `20261125-114500-ab12cd`."""
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def write_out(target: Path, data: bytes, option: str) -> None:
    """Write an output file, creating its folder; exit 2 naming the option and why when that cannot be done."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    except OSError as exc:
        raise fail(f"{option} {target}: cannot write it ({exc.strerror or exc})") from None


def locate(run: str, reports_dir: str | None, db: str | None) -> tuple[Any, str, Path | None]:
    """(journal, run id, run folder or None) for a run id, `latest` or a results folder; exit 2 naming what is
    missing.

    The journal is --db, else the folder's journal.sqlite, else RIG_DB.
    """
    from rig.results import Journal, JournalError

    given = Path(run)
    folder: Path | None
    if given.is_dir():
        folder = given
        run_id = run_id_of(folder)
    else:
        if "/" in run or os.sep in run:
            raise fail(f"no results folder {run}")
        candidate = Path(reports_dir or "reports") / run
        folder = candidate if candidate.is_dir() else None
        # `latest` (reports/latest, a link to the newest run folder) or any folder name stands for its run.
        run_id = run_id_of(candidate) if folder is not None else run
    try:
        if db:
            journal = Journal(db, create=False)
        elif folder is not None and (folder / "journal.sqlite").is_file():
            journal = Journal.in_folder(folder, create=False)
        elif os.environ.get("RIG_DB"):
            journal = Journal(os.environ["RIG_DB"], create=False)
        else:
            where = f"in {folder}" if folder is not None else f"for run {run_id!r} under {reports_dir or 'reports'}/"
            raise fail(f"no journal {where}; give --db URL (or set RIG_DB) when the run was journaled to a lab "
                       "database")
        journal.run(run_id)
    except JournalError as exc:
        raise fail(str(exc)) from None
    return journal, run_id, folder


def run_id_of(folder: Path) -> str:
    """The run id a folder's results.json (or run.json) names; else the folder's name."""
    from rig.run.resume import RUN_FILE

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


PUBLIC_KEY_PATTERN = r"(04)?[0-9a-fA-F]{128}"


def public_key(value: str | None, what: str) -> str | None:
    """An SM2 public key as given (exit 2 when it is not one)."""
    if value is not None and not re.fullmatch(PUBLIC_KEY_PATTERN, value):
        raise fail(f"{what} must be the SM2 public key: 128 hex digits x||y (04 prefix allowed)")
    return value


def lab_db(db: str | None, *, required: bool) -> Any:
    """The lab database holding the pinned bench keys: --db, else RIG_DB (never a run folder's own journal)."""
    from rig.results import Journal, JournalError

    url = db or os.environ.get("RIG_DB") or None
    if url is None:
        if required:
            raise fail("bench keys are pinned in the lab database: give --db URL or set RIG_DB")
        return None
    try:
        return Journal(url, create=required)
    except JournalError as exc:
        raise fail(str(exc)) from None
