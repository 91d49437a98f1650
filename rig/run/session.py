"""One session of a run: its identity, journal and metadata, and how it starts (a new run or a resume)."""

from __future__ import annotations

import getpass
import os
import platform
import socket
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from drivers.errors import RigError
from rig.bench import provider_for
from rig.config import BenchConfig, ConfigError
from rig.config.lab import lab_meta
from rig.integrity import SIGNING_KEY_NAME, IntegrityError, RunSigner, signer_from_private_hex, throwaway_signer
from rig.operator import Operator
from rig.pin import rig_version
from rig.results import Journal, JournalError, utc_now
from rig.run.bench import BenchLife
from rig.run.tally import Tally


class Refused(RigError):
    """The run refuses to go on (expired calibration, another bench on resume, bench not reachable)."""


def traffic_name(session: int) -> str:
    """The run-folder file holding a session's instrument traffic."""
    return "traffic.log" if session == 0 else f"traffic.s{session}.log"


def user() -> str:
    """Who runs this process ('unknown' when the system cannot say)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class RunSession:
    """What one session knows about its run (for records, the journal and results.json).

    The bench's life (`bench`) and the items' outcomes (`tally`) are kept apart; the reasons a session
    ends early (`refused`, `stopped_because`, `stopped_by`) end up in results.json.
    """

    def __init__(self, run_dir: Path | None, run_id: str | None, *, resume: bool,
                 ambient: dict[str, Any] | None = None) -> None:
        self.run_dir = run_dir
        self.run_id: str = run_id or uuid.uuid4().hex[:12]
        self.resume = resume
        self.ambient = ambient
        self.wall_start = time.monotonic()
        self.journal: Journal | None = None
        self.session = 0
        self.session_meta: dict[str, Any] = {}
        self.signer: RunSigner | None = None
        self.operator: Operator | None = None
        self.bench = BenchLife()
        self.tally = Tally()
        self.refused: str | None = None
        self.stopped_because: str | None = None
        self.stopped_by: str | None = None  # "operator": a person said no or did not answer

    def open_journal(self, url: str | None) -> Journal:
        """The run's journal: the bench's database URL, RIG_DB, or SQLite in the run folder."""
        if self.journal is None:
            url = url or os.environ.get("RIG_DB")
            if url:
                self.journal = Journal(url)
            elif self.run_dir is not None:
                if self.resume and not (self.run_dir / "journal.sqlite").is_file():
                    raise JournalError(f"cannot resume: {self.run_dir} has no journal.sqlite (if the run was "
                                       "journaled to a lab database, set RIG_DB or the bench's results_db)")
                self.journal = Journal.in_folder(self.run_dir)
            else:
                self.journal = Journal("sqlite://")
        return self.journal

    def bench_time_s(self) -> float:
        """Bench seconds since the bench opened (0 before)."""
        return self.bench.time_s()

    def start(self, bench: BenchConfig, *, plans: Sequence[str], argv: Sequence[str],
              pin: dict[str, Any] | None = None, accepted_changes: dict[str, Any] | None = None) -> None:
        """Start a session in the journal: a resume only of a run that exists and is not running."""
        journal = self.open_journal(bench.results_db)
        if self.resume:
            if not journal.has_run(self.run_id):
                raise JournalError(f"cannot resume: no run {self.run_id!r} in {journal.shown_url}")
            running = journal.running_session(self.run_id)
            if running is not None:
                raise JournalError(f"cannot resume run {self.run_id}: its session {running.session} is still "
                                   f"running (pid {running.pid} on {running.host})")
        journal.start_run(self.run_id, bench.name, run_meta(bench, plans))
        self.signer = signer_for(bench)
        self.session_meta = {
            "resume": self.resume,
            "started_by": user(),
            "host": socket.gethostname(),
            "argv": list(argv),
            "python": platform.python_version(),
            "rig_version": rig_version(),
            "signing_key": {"kind": self.signer.kind, "public": self.signer.public_hex,
                            "reference": self.signer.reference},
        }
        # The pin (hashes of the inputs) lets a resume refuse changed inputs; the signed manifest covers it.
        if pin is not None:
            self.session_meta["pin"] = pin
        if accepted_changes is not None:
            self.session_meta["accepted_changes"] = accepted_changes | {"by": user(), "utc": utc_now()}
        self.session = journal.start_session(self.run_id, self.session_meta)

    def save_meta(self) -> None:
        """The session's metadata as it is now, into the journal (a run with a folder only)."""
        if self.run_dir is not None and self.journal is not None:
            self.journal.update_session_meta(self.run_id, self.session, self.session_meta)


def run_meta(bench: BenchConfig, plans: Sequence[str]) -> dict[str, Any]:
    """What a report needs about the run that does not change between sessions."""
    return {
        "bench": {"name": bench.name, "description": bench.description,
                  "kind": provider_for(bench).kind},
        "meter_type": bench.meter.model_dump(mode="json") | {"nameplate": bench.meter.nameplate},
        "positions": [
            {"name": bench.position_name(i), "address": p.address, "pulse_channel": p.pulse_channel,
             "serial": p.serial}
            for i, p in enumerate(bench.positions)
        ],
        "safety": bench.safety.model_dump(mode="json"),
        "plans": [str(a) for a in plans],
        "lab": lab_meta(bench.lab, provider_for(bench).kind),
    }


def signer_for(bench: BenchConfig) -> RunSigner:
    """The bench's SM2 key (bench file `keys: signing:`), or a throwaway one (twin, or no key given)."""
    ref = bench.keys.get(SIGNING_KEY_NAME)
    if ref is None:
        return throwaway_signer()
    where = f"key file {ref.file}" if ref.file is not None else f"environment variable {ref.env}"
    try:
        return signer_from_private_hex(ref.read().hex(), f"keys.{SIGNING_KEY_NAME} ({where})")
    except IntegrityError as exc:
        raise ConfigError(str(exc)) from None
