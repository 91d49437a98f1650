"""A run's signed manifest and `rig verify` (composition layer): was anything altered after it was
recorded, and where (which record, which attachment, which item outcome, which metadata)?

What is checked, from the journal (and the run folder when there is one):
- every record against its SM3 chain hash (content and link to the previous record);
- every session's SM2 signature over its manifest, and the manifest's claims against the journal now
  (record count and chain head, item outcomes, attachment hashes, run and session metadata);
- every attachment file against its recorded SM3; results.json record by record against the journal.
Anything the signatures do not cover (a session killed before it could sign) is reported as unverified.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from drivers.crypto import sm3
from rig.integrity import (
    MANIFEST_FORMAT,
    RECORD_FIELDS,
    RunSigner,
    body_from_json,
    canonical_bytes,
    canonical_json,
    genesis,
    key_fingerprint,
    record_digest,
    signature_valid,
)
from rig.results import INTERRUPTED, Journal, SessionRow, StoredRecord, run_verdict

Level = Literal["altered", "unverified"]


@dataclass(frozen=True)
class Finding:
    """One problem: `altered` (content differs from what was recorded or signed) or `unverified`."""

    level: Level
    where: str
    message: str

    def text(self) -> str:
        """`ALTERED journal record 12: ...`."""
        return f"{self.level.upper()} {self.where}: {self.message}"


@dataclass
class Verification:
    """The outcome of `verify_run`: findings, and what was checked and found intact."""

    run_id: str
    findings: list[Finding] = field(default_factory=list)
    intact: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was found altered or unverified."""
        return not self.findings

    @property
    def altered(self) -> bool:
        """True when something was altered."""
        return any(f.level == "altered" for f in self.findings)

    def add(self, level: Level, where: str, message: str) -> None:
        """Add a finding."""
        self.findings.append(Finding(level, where, message))

    def text(self) -> str:
        """The report `rig verify` prints."""
        lines = [f"run {self.run_id}: " + ("verified, nothing altered" if self.ok else
                                           "ALTERED" if self.altered else "NOT FULLY VERIFIED")]
        lines += [f"  ok   {line}" for line in self.intact]
        lines += [f"  {f.text()}" for f in self.findings]
        return "\n".join(lines)


def _name(stored: StoredRecord) -> str:
    r = stored.record
    where = f" {r.position}" if r.position else ""
    return f"record {stored.seq} ({r.test}{where}, {r.quantity!r})"


def file_digest(path: Path) -> tuple[str, int]:
    """(SM3 hex, size in bytes) of a file."""
    data = path.read_bytes()
    return sm3(data).hex(), len(data)


# --------------------------------------------------------------------------------- the manifest


def build_manifest(journal: Journal, run_id: str, session: int, *, public_key: str, key_kind: str) -> dict[str, Any]:
    """What session `session` vouches for, from the journal as it is now."""
    run = journal.run(run_id)
    stored = journal.stored_records(run_id)
    return {
        "format": MANIFEST_FORMAT,
        "run_id": run_id,
        "session": session,
        "run": {"started_utc": run.started_utc, "bench": run.bench, "meta_sm3": sm3(canonical_bytes(run.meta)).hex()},
        "sessions": [_session_claim(s) for s in journal.sessions(run_id) if s.session <= session],
        "records": {"count": len(stored), "head": stored[-1].hash if stored else genesis(run_id)},
        "items": [[i.session, i.nodeid, i.outcome] for i in journal.items(run_id) if i.session <= session],
        "attachments": [[a.name, a.session, a.sm3, a.size_bytes] for a in journal.attachments(run_id)],
        "key": {"public": public_key, "kind": key_kind},
    }


def _session_claim(s: SessionRow) -> dict[str, Any]:
    return {"session": s.session, "started_utc": s.started_utc, "finished_utc": s.finished_utc,
            "verdict": s.verdict, "exit_status": s.exit_status, "meta_sm3": sm3(canonical_bytes(s.meta)).hex()}


def sign_session(journal: Journal, run_id: str, session: int, signer: RunSigner) -> None:
    """Build, sign and store session `session`'s manifest."""
    manifest = build_manifest(journal, run_id, session, public_key=signer.public_hex, key_kind=signer.kind)
    journal.sign_session(run_id, session, public_key=signer.public_hex, key_kind=signer.kind,
                         manifest=canonical_json(manifest), signature=signer.sign(manifest))


def hash_attachments(journal: Journal, run_id: str, session: int, folder: Path, names: Iterable[str],
                     note: str | None = None) -> None:
    """Record the SM3 of each named run-folder file that has none yet."""
    known = {a.name for a in journal.attachments(run_id)}
    for name in names:
        path = folder / name
        if name not in known and path.is_file():
            digest, size = file_digest(path)
            journal.add_attachment(run_id, session, name, digest, size, note)


# ----------------------------------------------------------------------------------- verifying


def verify_run(journal: Journal, run_id: str, folder: Path | None = None, *,
               expect_key: str | None = None) -> Verification:
    """Check a run (JournalError when the run is not in the journal)."""
    result = Verification(run_id)
    run = journal.run(run_id)
    stored = journal.stored_records(run_id)
    sessions = journal.sessions(run_id)
    _check_chain(result, run_id, stored)
    signed_upto = _check_signatures(result, journal, run_id, run.meta, stored, sessions, expect_key)
    _check_unsigned(result, journal, run_id, stored, sessions, signed_upto)
    if folder is not None:
        _check_attachments(result, journal, run_id, folder)
        _check_results_json(result, journal, run_id, folder, stored)
    return result


def _check_chain(result: Verification, run_id: str, stored: Sequence[StoredRecord]) -> None:
    previous = genesis(run_id)
    broken = 0
    for expected_seq, s in enumerate(stored, start=1):
        if s.seq != expected_seq:
            result.add("altered", f"journal record {expected_seq}",
                       f"missing: the chain jumps from record {expected_seq - 1} to {s.seq} (records were deleted)")
            broken += 1
            previous = s.hash
            continue
        if record_digest(previous, s.body()) != s.hash:
            result.add("altered", f"journal {_name(s)}",
                       "content does not match its SM3 chain hash: altered after it was recorded "
                       "(or the previous record's hash was rewritten)")
            broken += 1
        previous = s.hash
    if not broken:
        result.intact.append(f"{len(stored)} journal record(s): SM3 chain intact")


def _check_signatures(result: Verification, journal: Journal, run_id: str, run_meta: Any,
                      stored: Sequence[StoredRecord], sessions: Sequence[SessionRow],
                      expect_key: str | None) -> dict[str, int]:
    """Check every signed session; return how far the signatures reach (records, last session)."""
    reach = {"records": 0, "session": -1}
    by_seq = {s.seq: s for s in stored}
    journal_items = journal.items(run_id)
    journal_attachments = {a.name: a for a in journal.attachments(run_id)}
    sessions_by_number = {s.session: s for s in sessions}
    for session in sessions:
        where = f"signature of session {session.session}"
        if session.manifest is None or session.signature is None or session.public_key is None:
            continue
        if not signature_valid(session.public_key, session.manifest, session.signature):
            result.add("altered", where, "does not verify: the signed manifest, signature or public key was altered")
            continue
        fingerprint = key_fingerprint(session.public_key)
        if expect_key is not None and session.public_key.lower() != expect_key.lower().removeprefix("04"):
            result.add("altered", where, f"made with key {fingerprint}, not the expected key "
                                         f"{key_fingerprint(expect_key.lower().removeprefix('04'))}")
            continue
        manifest = json.loads(session.manifest)
        before = len(result.findings)
        if manifest.get("format") != MANIFEST_FORMAT or manifest.get("run_id") != run_id \
                or manifest.get("session") != session.session:
            result.add("altered", where, "the manifest belongs to another run or session")
            continue
        if manifest["run"]["meta_sm3"] != sm3(canonical_bytes(run_meta)).hex():
            result.add("altered", "journal run metadata",
                       f"bench, meter type or positions differ from what session {session.session} signed")
        for claim in manifest["sessions"]:
            row = sessions_by_number.get(claim["session"])
            if row is None or _session_claim(row) != claim:
                result.add("altered", f"journal session {claim['session']}",
                           "metadata (instruments, calibration, conditions) or verdict differs from what "
                           f"session {session.session} signed")
        count, head = int(manifest["records"]["count"]), manifest["records"]["head"]
        last = by_seq.get(count)
        if count and (last is None or last.hash != head):
            result.add("altered", "journal records",
                       f"record {count}'s chain hash differs from the head session {session.session} signed: "
                       "records up to it were rewritten or removed")
        signed_items = {(s, n): o for s, n, o in manifest["items"]}
        now_items = {(i.session, i.nodeid): i.outcome for i in journal_items if i.session <= session.session}
        for key in sorted(set(signed_items) | set(now_items)):
            if signed_items.get(key) != now_items.get(key):
                result.add("altered", f"journal item {key[1]} (session {key[0]})",
                           f"outcome {now_items.get(key)!r} differs from the signed {signed_items.get(key)!r}")
        for name, _att_session, digest, size in manifest["attachments"]:
            row_att = journal_attachments.get(name)
            if row_att is None or row_att.sm3 != digest or row_att.size_bytes != size:
                result.add("altered", f"journal attachment hash of {name}",
                           f"differs from the one session {session.session} signed")
        if len(result.findings) == before:
            kind = "bench key" if session.key_kind == "bench" else "throwaway key (proves integrity, not origin)"
            result.intact.append(f"session {session.session}: SM2 signature valid, {kind} {fingerprint}; "
                                 f"covers {count} record(s), {len(signed_items)} item(s), "
                                 f"{len(manifest['attachments'])} attachment hash(es)")
        reach = {"records": max(reach["records"], count), "session": max(reach["session"], session.session),
                 "attachments": len(manifest["attachments"])}
    return reach


def _check_unsigned(result: Verification, journal: Journal, run_id: str, stored: Sequence[StoredRecord],
                    sessions: Sequence[SessionRow], reach: dict[str, int]) -> None:
    if not any(s.signature for s in sessions):
        result.add("unverified", "run", "no session signed it (killed before it finished? resume it to sign)")
        return
    unsigned = [s for s in stored if s.seq > reach["records"]]
    if unsigned:
        result.add("unverified", f"journal records {unsigned[0].seq}..{unsigned[-1].seq}",
                   f"taken after the last signature (session {reach['session']}): not covered; the session that "
                   "took them did not finish (resume the run to sign them)")
    late_items = [i for i in journal.items(run_id) if i.session > reach["session"]]
    if late_items:
        result.add("unverified", "journal items", f"{len(late_items)} item outcome(s) of unsigned sessions")
    attachments = journal.attachments(run_id)
    if len(attachments) > reach.get("attachments", 0):
        names = ", ".join(a.name for a in attachments[reach.get("attachments", 0):])
        result.add("unverified", f"attachment hashes of {names}", "recorded after the last signature")


def _check_attachments(result: Verification, journal: Journal, run_id: str, folder: Path) -> None:
    recorded = journal.attachments(run_id)
    for att in recorded:
        path = folder / att.name
        if not path.is_file():
            result.add("altered", f"attachment {att.name}", "missing from the run folder")
            continue
        digest, size = file_digest(path)
        if digest != att.sm3 or size != att.size_bytes:
            result.add("altered", f"attachment {att.name}",
                       f"SM3 {digest[:16]}.. ({size} bytes) differs from the recorded {att.sm3[:16]}.. "
                       f"({att.size_bytes} bytes): altered after the run")
        else:
            result.intact.append(f"attachment {att.name}: SM3 matches ({size} bytes)")
    known = {a.name for a in recorded}
    for path in sorted(folder.glob("traffic*.log")):
        if path.name not in known:
            result.add("unverified", f"attachment {path.name}", "has no recorded hash")


def _check_results_json(result: Verification, journal: Journal, run_id: str, folder: Path,
                        stored: Sequence[StoredRecord]) -> None:
    path = folder / "results.json"
    if not path.is_file():
        result.add("unverified", "results.json", "not in the run folder (the last session was killed?)")
        return
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        result.add("altered", "results.json", f"is not valid JSON any more ({exc})")
        return
    if not isinstance(data, dict) or data.get("run_id") != run_id:
        result.add("altered", "results.json", f"belongs to run {data.get('run_id') if isinstance(data, dict) else '?'}"
                                              f", not {run_id}")
        return
    before = len(result.findings)
    by_seq = {s.seq: s for s in stored}
    listed = [*data.get("records", []), *data.get("superseded_records", [])]
    seen: set[int] = set()
    for rec in listed:
        seq = rec.get("seq") if isinstance(rec, dict) else None
        if not isinstance(seq, int) or seq not in by_seq:
            result.add("altered", "results.json record", f"{rec.get('quantity') if isinstance(rec, dict) else rec!r}"
                                                         f" (seq {seq}) is not in the journal")
            continue
        seen.add(seq)
        journal_rec = by_seq[seq]
        previous = by_seq[seq - 1].hash if seq > 1 and seq - 1 in by_seq else genesis(run_id)
        body = body_from_json(run_id, rec)
        if record_digest(previous, body) != journal_rec.hash or rec.get("hash") != journal_rec.hash:
            result.add("altered", f"results.json {_name(journal_rec)}", _differences(body, journal_rec))
        elif record_digest(previous, journal_rec.body()) != journal_rec.hash:
            # The journal's row was edited; results.json still holds what was recorded.
            result.intact.append(f"results.json holds record {seq} as recorded; the journal's "
                                 + _differences(body, journal_rec).replace("differs from the journal: ", "edit: "))
    sessions_in_file = [s.get("session") for s in data.get("sessions", []) if isinstance(s, dict)]
    journal_sessions = journal.sessions(run_id)
    numbers = [n for n in sessions_in_file if isinstance(n, int)]
    stale = bool(journal_sessions) and (not numbers or max(numbers) < journal_sessions[-1].session)
    if stale:
        result.add("unverified", "results.json", "was written before the journal's last session (killed?); "
                                                 "`rig run --resume` rewrites it")
    else:
        effective, superseded = journal.effective_records(run_id)
        for s in [*effective, *superseded]:
            if s.seq not in seen:
                result.add("altered", f"results.json {_name(s)}", "missing (removed from results.json)")
        items = {(i.session, i.nodeid): i.outcome for i in journal.items(run_id)}
        for test in data.get("tests", []):
            key = (test.get("session"), test.get("test"))
            if test.get("outcome") != INTERRUPTED and items.get(key) != test.get("outcome"):
                result.add("altered", f"results.json test {test.get('test')}",
                           f"outcome {test.get('outcome')!r} differs from the journal ({items.get(key)!r})")
        last = journal_sessions[-1] if journal_sessions else None
        verdict = run_verdict(journal.items(run_id), effective, last_session=last.verdict if last else None)
        if data.get("verdict") != verdict:
            result.add("altered", "results.json verdict", f"{data.get('verdict')!r}, the journal gives {verdict!r}")
    if len(result.findings) == before:
        result.intact.append(f"results.json: {len(seen)} record(s) and the verdict match the journal's chain hashes")


def _differences(body: dict[str, Any], journal_rec: StoredRecord) -> str:
    theirs = journal_rec.body()
    changed = [f"{key} {body.get(key)!r} (journal: {theirs.get(key)!r})" for key in RECORD_FIELDS
               if body.get(key) != theirs.get(key) and key != "run_id"]
    return ("differs from the journal: " + "; ".join(changed)) if changed else "hash differs from the journal"
