"""`rig panel`: the live operator panel for a run from its journal (a run in progress in another process, a
finished run, or the newest run of a lab database). `rig run --panel` serves a run's own panel, where its
questions are answered too."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import click

from rig.cli.common import console, db_option, fail, locate, main, reports_option


@main.command("panel")
@click.argument("run", required=False)
@reports_option
@db_option
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="the panel's port on 127.0.0.1 (0: any free port)")
def panel(run: str | None, reports_dir: str, db: str | None, port: int) -> None:
    """Serve the live panel of RUN (a run id, `latest` or a results folder) from its journal until Ctrl-C.

    Without RUN: the newest run of the lab database (--db URL, else RIG_DB), moving on to each new run as it
    starts. Questions of a running run are answered on its own panel (`rig run --panel`) or its terminal.
    """
    from rig.panel import PanelError, PanelServer, PanelState
    from rig.panel.follow import JournalFollower
    from rig.results import Journal, JournalError

    folder: Path | None = None
    if run is not None:
        journal, run_id, folder = locate(run, reports_dir, db)
        following: str | None = run_id
    else:
        url = db or os.environ.get("RIG_DB")
        if not url:
            raise fail("give a run id or folder, or the lab database to follow (--db URL or RIG_DB)")
        try:
            journal = Journal(url, create=False)
        except JournalError as exc:
            raise fail(str(exc)) from None
        following = None
    state = PanelState(title=f"lab database {journal.shown_url}" if following is None else f"run {following}",
                       run_id=following or "", positions=[], live=False)
    follower = JournalFollower(journal, state, following, elsewhere=_own_panel(folder))
    follower.start()
    server = PanelServer(state, port)
    try:
        address = server.start()
    except PanelError as exc:
        follower.stop()
        raise fail(str(exc)) from None
    what = f"run {following}" if following else f"the newest run of {journal.shown_url}"
    console.print(f"panel: {address}  (following {what}; Ctrl-C to stop)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        console.print("panel stopped")
    finally:
        follower.stop()
        server.stop(flush_s=0.5)
        journal.close()


def _own_panel(folder: Path | None) -> str | None:
    """The address of the run's own panel (`rig run --panel` leaves it in the run folder while it serves)."""
    from rig.panel import PANEL_FILE

    if folder is None:
        return None
    try:
        url = json.loads((folder / PANEL_FILE).read_text()).get("url")
    except (OSError, ValueError, AttributeError):
        return None
    return url if isinstance(url, str) else None
