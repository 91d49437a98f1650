"""The lab commands on finished runs: report (certificate), verify (tamper evidence), keys (pinned bench
keys), history (results across runs, drift towards a limit), export (CSV, LIMS JSON)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import click

from rig.cli.common import (
    console,
    db_option,
    fail,
    lab_db,
    locate,
    main,
    public_key,
    reports_option,
    write_out,
)
from rig.run.exits import EXIT_OK


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

    journal, run_id, folder = locate(run_ref, reports_dir, db)
    data = certificate_data(journal, run_id, folder)
    target = Path(out_file) if out_file else (folder or Path(reports_dir) / run_id) / f"certificate.{fmt}"
    write_out(target, render_html(data).encode("utf-8") if fmt == "html" else render_pdf(data), "--out")
    console.print(f"certificate {data.number}: {target} (overall verdict: {data.overall_verdict})")
    raise SystemExit(EXIT_OK)


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
    from rig.integrity.report import Pins
    from rig.integrity.verify import verify_run
    from rig.results import JournalError

    public_key(expect_key, "--expect-key")
    journal, run_id, folder = locate(run_ref, reports_dir, db)
    lab = lab_db(db, required=False)
    try:
        pins = Pins.of(expect_key, lab.pinned_keys() if lab is not None else ())
    except JournalError as exc:
        raise fail(str(exc)) from None
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
    from rig.run.session import user

    lab = lab_db(db, required=True)
    if from_run is not None:
        bench, public_hex = _key_of_run(from_run, reports_dir, db, bench)
    if bench is None or public_hex is None:
        raise fail("give BENCH and PUBLIC_HEX, or --from-run RUN_ID")
    key = normalise_public_key(str(public_key(public_hex, "PUBLIC_HEX")))
    added = lab.pin_key(bench, key, pinned_by=user(), note=note)
    console.print(f"bench {bench}: key {key_fingerprint(key)} {'pinned' if added else 'was pinned already'} "
                  f"in {lab.shown_url}")
    raise SystemExit(EXIT_OK)


def _key_of_run(run_ref: str, reports_dir: str, db: str | None, bench: str | None) -> tuple[str, str]:
    folder = Path(run_ref) if Path(run_ref).is_dir() else Path(reports_dir) / run_ref
    # The run's own journal when its folder has one; else the lab database (where its runs are journaled).
    journal, run_id, _folder = locate(run_ref, reports_dir, None if (folder / "journal.sqlite").is_file() else db)
    run = journal.run(run_id)
    keys = {s.public_key for s in journal.sessions(run_id) if s.signature and s.key_kind == "bench" and s.public_key}
    if len(keys) != 1:
        raise fail(f"run {run_id} was signed by {len(keys)} bench key(s), not one (a run on the twin or a bench "
                   "without keys.signing has only throwaway keys: nothing to pin)")
    if bench is not None and bench != run.bench:
        raise fail(f"run {run_id} was made on bench {run.bench!r}, not {bench!r}")
    return run.bench, keys.pop()


@keys_group.command("list")
@db_option
def keys_list(db: str | None) -> None:
    """The pinned bench keys of the lab database."""
    from rig.integrity import key_fingerprint

    lab = lab_db(db, required=True)
    rows = lab.pinned_keys()
    for row in rows:
        click.echo(f"{row.bench}\t{key_fingerprint(row.public_key)}\t{row.public_key}\tpinned {row.pinned_utc} "
                   f"by {row.pinned_by}" + (f"\t{row.note}" if row.note else ""))
    if not rows:
        console.print(f"no bench keys pinned in {lab.shown_url}")
    raise SystemExit(EXIT_OK)


@main.command()
@click.option("--bench", "bench_name", default=None, metavar="NAME", help="only runs on this bench")
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
def history(bench_name: str | None, meter: str | None, test_id: str | None, quantity: str | None, since: str | None,
            dbs: tuple[str, ...],
            reports_dir: str, plot_file: str | None, horizon: int, margin: float, as_json: bool) -> None:
    """Results across runs and benches, per bench, meter and point; flags drift towards a limit before it fails.

    Each run counts once (reports/latest is the newest run folder, not another run). The plot draws one panel
    per series over the runs' dates.
    """
    import rig.history as hist
    from rig.results import Journal, JournalError

    since_utc = None
    if since:
        try:
            since_utc = dt.date.fromisoformat(since).isoformat()
        except ValueError:
            raise fail(f"--since {since!r} is not a date (YYYY-MM-DD)") from None
    urls = list(dbs) or ([os.environ["RIG_DB"]] if os.environ.get("RIG_DB") else [])
    try:
        if urls:
            journals = [Journal(url, create=False) for url in urls]
        else:
            # reports/latest is a link to one of the run folders: each journal file is read once.
            found = sorted({p.resolve() for p in Path(reports_dir).glob("*/journal.sqlite")})
            if not found:
                raise fail(f"no journals under {reports_dir}/ and no --db or RIG_DB given")
            journals = [Journal.in_folder(p.parent, create=False) for p in found]
        points = hist.collect(journals, meter=meter, test=test_id, quantity=quantity, since_utc=since_utc)
    except JournalError as exc:
        raise fail(str(exc)) from None
    if bench_name is not None:
        points = [p for p in points if p.bench == bench_name]
    series = hist.group(points)
    flags = hist.assess(series, horizon_runs=horizon, margin=margin / 100.0)
    if as_json:
        click.echo(json.dumps(hist.to_json(series, flags), indent=2))
    else:
        click.echo(hist.table(series, flags))
    if plot_file:
        if not series:
            raise fail("nothing selected to plot")
        try:
            png = hist.trend_png(series, flags)
        except ValueError as exc:
            raise fail(f"--plot: {exc}") from None
        write_out(Path(plot_file), png, "--plot")
        console.print(f"trend plot: {plot_file}")
    raise SystemExit(EXIT_OK)


@main.command()
@click.argument("run_ref", metavar="RUN_ID|FOLDER")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="csv: one row per measured value; json: a LIMS import (samples = meters, with their results)")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default="-", show_default=True,
              help="file to write (- for stdout); the run folder itself holds only signed files")
@reports_option
@db_option
def export(run_ref: str, fmt: str, out_file: str, reports_dir: str, db: str | None) -> None:
    """Export a run's measurements (RUN_ID, `latest` or a folder) to CSV or a LIMS-friendly JSON."""
    from rig.export import to_csv, to_lims

    journal, run_id, _folder = locate(run_ref, reports_dir, db)
    text = to_csv(journal, run_id) if fmt == "csv" else json.dumps(to_lims(journal, run_id), indent=2) + "\n"
    if out_file == "-":
        click.echo(text, nl=False)
    else:
        write_out(Path(out_file), text.encode("utf-8"), "--out")
        console.print(f"{fmt} export of run {run_id}: {out_file}")
    raise SystemExit(EXIT_OK)
