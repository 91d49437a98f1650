"""What a session signs (composition layer): its manifest (every column of the run header and of its sessions,
items and attachment hashes; the record count and chain head) when the runner finishes, then its addendum once
`rig run` has written every report (the SM3 of every run-folder file; the run's closing columns). Built from the
journal, signed with the session's key (rig.integrity.sign) and stored in the journal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.crypto import sm3
from rig.integrity.chain import canonical_json, genesis
from rig.integrity.sign import ADDENDUM_FORMAT, MANIFEST_FORMAT, RunSigner
from rig.results import Attachment, ItemOutcome, Journal, RunRow, SessionRow

# The journal's own files: covered record by record by the chain and the manifests, not by a file hash.
JOURNAL_FILES = frozenset({"journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm", "journal.sqlite-journal"})
# Session columns that hold the signature itself (the manifest cannot contain them).
_SIGNATURE_COLUMNS = ("public_key", "key_kind", "manifest", "signature")
# Run columns written after the manifest is signed (finish_run): the addendum seals them.
_CLOSING_COLUMNS = ("finished_utc", "verdict")


def file_digest(path: Path) -> tuple[str, int]:
    """(SM3 hex, size in bytes) of a file."""
    data = path.read_bytes()
    return sm3(data).hex(), len(data)


def folder_files(folder: Path) -> dict[str, Path]:
    """Every file of a run folder but the journal's own, by its path relative to the folder."""
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in JOURNAL_FILES}


# ------------------------------------------------------------------------------ what is signed


def _run_claim(run: RunRow) -> dict[str, Any]:
    claim = dataclasses.asdict(run)
    for column in _CLOSING_COLUMNS:
        claim.pop(column)
    return claim


def closing_claim(run: RunRow) -> dict[str, Any]:
    return {column: getattr(run, column) for column in _CLOSING_COLUMNS}


def _session_claim(s: SessionRow) -> dict[str, Any]:
    claim = dataclasses.asdict(s)
    for column in _SIGNATURE_COLUMNS:
        claim.pop(column)
    return claim


def claims(run: RunRow, sessions: Sequence[SessionRow], items: Sequence[ItemOutcome],
            attachments: Sequence[Attachment], upto: int) -> dict[str, Any]:
    """Every journal row session `upto` vouches for, each with every column (records: count and head apart)."""
    return {
        "run": _run_claim(run),
        "sessions": [_session_claim(s) for s in sessions if s.session <= upto],
        "items": [dataclasses.asdict(i) for i in items if i.session <= upto],
        "attachments": [dataclasses.asdict(a) for a in attachments],
    }


def build_manifest(journal: Journal, run_id: str, session: int, *, public_key: str, key_kind: str) -> dict[str, Any]:
    """What session `session` vouches for, from the journal as it is now."""
    stored = journal.stored_records(run_id)
    vouched = claims(journal.run(run_id), journal.sessions(run_id), journal.items(run_id),
                     journal.attachments(run_id), session)
    return {
        "format": MANIFEST_FORMAT,
        "run_id": run_id,
        "session": session,
        **vouched,
        "records": {"count": len(stored), "head": stored[-1].hash if stored else genesis(run_id)},
        "key": {"public": public_key, "kind": key_kind},
    }


def sign_session(journal: Journal, run_id: str, session: int, signer: RunSigner) -> None:
    """Build, sign and store session `session`'s manifest."""
    manifest = build_manifest(journal, run_id, session, public_key=signer.public_hex, key_kind=signer.kind)
    journal.sign_session(run_id, session, public_key=signer.public_hex, key_kind=signer.kind,
                         manifest=canonical_json(manifest), signature=signer.sign(manifest))


def build_addendum(journal: Journal, run_id: str, session: int, folder: Path) -> dict[str, Any]:
    """What session `session` vouches for once every report is written: the folder's files, the run's close."""
    row = next((s for s in journal.sessions(run_id) if s.session == session), None)
    manifest = row.manifest if row is not None and row.manifest is not None else ""
    files = []
    for name, path in folder_files(folder).items():
        digest, size = file_digest(path)
        files.append({"name": name, "sm3": digest, "size_bytes": size})
    return {"format": ADDENDUM_FORMAT, "run_id": run_id, "session": session,
            "manifest_sm3": sm3(manifest.encode("utf-8")).hex(), "run": closing_claim(journal.run(run_id)),
            "files": files}


def seal_session(journal: Journal, run_id: str, session: int, folder: Path, signer: RunSigner) -> int:
    """Sign and store (or replace) session `session`'s addendum; the number of files it covers."""
    addendum = build_addendum(journal, run_id, session, folder)
    journal.seal_session(run_id, session, addendum=canonical_json(addendum), signature=signer.sign(addendum))
    return len(addendum["files"])


@dataclass(frozen=True)
class _Held:
    journal: Journal
    run_id: str
    session: int
    signer: RunSigner


# Sessions that signed their manifest and wait for `rig run` to write the last report: the key stays in this
# process's memory only, until seal_folder(final=True).
_held: dict[Path, _Held] = {}


def hold_for_seal(folder: Path, journal: Journal, run_id: str, session: int, signer: RunSigner) -> None:
    """Keep a session's signer until `seal_folder` seals the folder's files (written after the manifest)."""
    _held.clear()  # one pytest session at a time: an unsealed earlier one (run without `rig run`) stays unsealed
    _held[folder.resolve()] = _Held(journal, run_id, session, signer)


def seal_folder(folder: Path, *, final: bool = True) -> int | None:
    """Seal the held session of `folder` (None when none is held); `final` forgets its key afterwards."""
    held = _held.pop(folder.resolve(), None) if final else _held.get(folder.resolve())
    if held is None:
        return None
    return seal_session(held.journal, held.run_id, held.session, folder, held.signer)


def hash_attachments(journal: Journal, run_id: str, session: int, folder: Path, names: Iterable[str],
                     note: str | None = None) -> None:
    """Record the SM3 of each named run-folder file that has none yet."""
    known = {a.name for a in journal.attachments(run_id)}
    for name in names:
        path = folder / name
        if name not in known and path.is_file():
            digest, size = file_digest(path)
            journal.add_attachment(run_id, session, name, digest, size, note)
