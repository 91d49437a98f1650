"""What `rig run` was asked (run.json, so that `--resume` asks the same) and the resume pin check: a resume
whose inputs changed since the run's first session is refused, naming each change, unless accepted."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from drivers.errors import RigError
from rig.pin import pin_differences
from rig.results import Journal, JournalError

RUN_FILE = "run.json"  # what `rig run` was asked, so that `--resume` can ask the same


class RunInputError(RigError):
    """What `rig run` was asked cannot be done as asked (exit 2, one line naming why)."""


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


def new_request(run_id: str, *, plans: Sequence[str], bench_file: str | None, overrides: Sequence[str],
                pytest_extra: Sequence[str], operator_answers: str | None) -> dict[str, Any]:
    """run.json of a new run (files by absolute path: a resume may start in another folder)."""
    return {"run_id": run_id, "plans": list(plans),
            "bench_file": str(Path(bench_file).resolve()) if bench_file else None,
            "overrides": list(overrides), "pytest_extra": list(pytest_extra), "resumes": [],
            "operator_answers": str(Path(operator_answers).resolve()) if operator_answers else None}


def resume_request(run_dir: Path, run_id: str) -> dict[str, Any]:
    """run.json of the run to resume, with this resume added to its `resumes`."""
    asked = read_run_file(run_dir, run_id)
    asked["resumes"].append({"started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
    return asked


def read_run_file(run_dir: Path, run_id: str) -> dict[str, Any]:
    """run.json of `run_id`, checked; RunInputError naming what is wrong with it."""
    path = run_dir / RUN_FILE
    try:
        asked = RunFile.model_validate(json.loads(path.read_text())).model_dump()
        if asked["run_id"] != run_id:
            raise ValueError(f"it belongs to run {asked['run_id']}")
        return asked
    except FileNotFoundError:
        raise RunInputError(f"cannot resume {run_id!r}: no {path} (is the run id right, and --reports?)") from None
    except ValidationError as exc:
        wrong = "; ".join(f"'{'.'.join(str(p) for p in e['loc']) or '(top level)'}': {e['msg']}" for e in exc.errors())
        raise RunInputError(f"cannot resume {run_id!r}: {path} is damaged ({wrong})") from None
    except (OSError, ValueError) as exc:
        raise RunInputError(f"cannot resume {run_id!r}: {path} is unreadable or damaged ({exc})") from None


def write_run_file(run_dir: Path, asked: dict[str, Any]) -> None:
    """Create the run folder with its run.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RUN_FILE).write_text(json.dumps(asked, indent=2))


def check_pin(run_dir: Path, run_id: str, db: str | None, pin: dict[str, Any], accept_changed: str | None,
              say: Callable[[str], None]) -> dict[str, Any] | None:
    """Compare what this resume is asked with the first session's pin: RunInputError naming each difference,
    unless accepted with a reason (then the acceptance, for the session's metadata and the certificate)."""
    url = db or os.environ.get("RIG_DB")
    try:
        journal = Journal(url, create=False) if url else Journal.in_folder(run_dir, create=False)
        try:
            sessions = journal.sessions(run_id)
        finally:
            journal.close()
    except JournalError:
        return None  # no journal or no run: starting the session refuses, naming what is missing
    if not sessions:
        return None
    first = sessions[0].meta.get("pin")
    if not isinstance(first, dict):
        say(f"[yellow]warning:[/yellow] run {run_id}'s first session holds no pin (an older rig): "
            "changes to its bench file, overrides and answers file cannot be checked")
        return None
    changes = pin_differences(first, pin)
    if not changes:
        return None
    if accept_changed is None:
        raise RunInputError(f"cannot resume {run_id}: changed since its first session: {'; '.join(changes)}. Undo "
                            "the change, or resume with --accept-changed \"REASON\" (every certificate of the run "
                            "will state it)")
    say(f"[yellow]accepted changes[/yellow] ({accept_changed}): {'; '.join(changes)}")
    return {"reason": accept_changed, "differences": changes}
