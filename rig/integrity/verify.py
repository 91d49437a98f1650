"""`rig verify` (composition layer): was anything of a run altered after it was recorded, where, and who vouches
for it. Reads the journal (and the run folder) once and runs every check of CHECKS (rig.integrity.checks).
"""

from __future__ import annotations

from pathlib import Path

from rig.integrity.checks import CHECKS, Evidence
from rig.integrity.report import Pins, Verification
from rig.results import Journal


def verify_run(journal: Journal, run_id: str, folder: Path | None = None, *, expect_key: str | None = None,
               pins: Pins | None = None) -> Verification:
    """Check a run against every claim of CHECKS (JournalError when the run is not in the journal)."""
    ctx = Evidence(journal=journal, run_id=run_id, folder=folder,
               pins=pins if pins is not None else Pins.of(expect_key), run=journal.run(run_id),
               stored=journal.stored_records(run_id), sessions=journal.sessions(run_id),
               items=journal.items(run_id), attachments=journal.attachments(run_id),
               seals={s.session: s for s in journal.seals(run_id)})
    result = Verification(run_id)
    for check in CHECKS:
        if check.needs_folder and folder is None:
            result.notes.append(f"not checked without the run folder: {check.claim}")
            continue
        before = len(result.findings)
        try:
            intact = check.run(ctx, result)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            # Only a document someone wrote by hand (and signed, or not) gets here: fail closed, naming it.
            result.add("altered", "a signed or written document", f"malformed, so {check.claim!r} could not be "
                                                                   f"checked ({type(exc).__name__}: {exc})")
            continue
        if intact and len(result.findings) == before:
            result.intact.append(intact)
    return result
