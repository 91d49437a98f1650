"""The claims `rig verify` checks, as a table (CHECKS): one row per claim a reader relies on, in order (later
checks use what earlier ones established, e.g. which manifests carry a valid signature).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.crypto import sm3
from rig.integrity.chain import RECORD_FIELDS, body_from_json, genesis, record_digest
from rig.integrity.compare import ABSENT, compare_rows, diff
from rig.integrity.report import Pins, Verification
from rig.integrity.seal import claims, closing_claim, file_digest, folder_files
from rig.integrity.sign import ADDENDUM_FORMAT, MANIFEST_FORMAT, key_fingerprint, signature_valid
from rig.results import (
    INTERRUPTED,
    Attachment,
    ItemOutcome,
    Journal,
    RunRow,
    SealRow,
    SessionRow,
    StoredRecord,
    effective_records,
    results_document,
)

# results.json fields that are facts of the moment it was written, not of the journal: the sealed file hash
# covers them; records are checked against their chain hashes.
_NOT_FROM_JOURNAL = frozenset({"finished_utc", "journal", "refused_because", "stopped_because", "stopped_by"})
_RECORD_LISTS = ("records", "superseded_records")
# A certificate is derived from the journal alone: one issued later into the run folder is not the sealed one.
_REISSUED = {"certificate": " (or re-issued there by `rig report`: issue it with --out elsewhere, or re-issue it "
                            "to trust it)"}


@dataclass
class Evidence:
    """Everything verify reads, read once, and what the checks establish for the checks after them."""

    journal: Journal
    run_id: str
    folder: Path | None
    pins: Pins
    run: RunRow
    stored: list[StoredRecord]
    sessions: list[SessionRow]
    items: list[ItemOutcome]
    attachments: list[Attachment]
    seals: dict[int, SealRow]
    signed: dict[int, dict[str, Any]] = field(default_factory=dict)  # session -> manifest with a valid signature
    addendum: dict[str, Any] | None = None  # the latest signed session's valid addendum
    results: dict[str, Any] | None = None  # results.json, when it is the latest and can be compared field by field

    def session_row(self, number: int) -> SessionRow | None:
        return next((s for s in self.sessions if s.session == number), None)


@dataclass(frozen=True)
class Check:
    """One claim a reader relies on, and the function that tests it (returns the `ok` line, or None)."""

    claim: str
    run: Callable[[Evidence, Verification], str | None]
    needs_folder: bool = False



def _name(stored: StoredRecord) -> str:
    r = stored.record
    where = f" {r.position}" if r.position else ""
    return f"record {stored.seq} ({r.test}{where}, {r.quantity!r})"



# ---- the checks, in order (later ones use what earlier ones established)


def _check_chain(ctx: Evidence, out: Verification) -> str | None:
    previous = genesis(ctx.run_id)
    for expected_seq, s in enumerate(ctx.stored, start=1):
        if s.seq != expected_seq:
            out.add("altered", f"journal record {expected_seq}",
                    f"missing: the chain jumps from record {expected_seq - 1} to {s.seq} (records were deleted)")
        elif record_digest(previous, s.body()) != s.hash:
            out.add("altered", f"journal {_name(s)}", "content does not match its SM3 chain hash: altered after it "
                                                      "was recorded (or the previous record's hash was rewritten)")
        previous = s.hash
    return f"{len(ctx.stored)} journal record(s): SM3 chain intact"


def _manifest_problem(ctx: Evidence, s: SessionRow) -> tuple[str, dict[str, Any] | None]:
    """(what is wrong with session `s`'s signature, or "" and its manifest)."""
    assert s.manifest is not None and s.signature is not None and s.public_key is not None
    if not signature_valid(s.public_key, s.manifest, s.signature):
        return "does not verify: the signed manifest, signature or public key was altered", None
    manifest = json.loads(s.manifest)
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        return f"the manifest is not a {MANIFEST_FORMAT} manifest", None
    if manifest.get("run_id") != ctx.run_id or manifest.get("session") != s.session:
        return "the manifest belongs to another run or session", None
    if manifest.get("key") != {"public": s.public_key, "kind": s.key_kind}:
        return (f"key kind {s.key_kind!r} differs from the signed {manifest.get('key', {}).get('kind')!r} "
                "(or the key columns were swapped)"), None
    return "", manifest


def _check_signatures(ctx: Evidence, out: Verification) -> str | None:
    lines = []
    for s in ctx.sessions:
        where = f"signature of session {s.session}"
        columns = (s.manifest, s.signature, s.public_key)
        if all(c is None for c in columns):
            if s.finished_utc is not None:
                out.add("uncovered", f"session {s.session}", "finished but carries no signature (it was removed, "
                                                             "or signing failed)")
            continue
        if any(c is None for c in columns):
            out.add("altered", where, "incomplete: its manifest, signature or public key was removed")
            continue
        problem, manifest = _manifest_problem(ctx, s)
        if manifest is None:
            out.add("altered", where, problem)
            continue
        ctx.signed[s.session] = manifest
        assert s.public_key is not None
        pinned, why = ctx.pins.judge(ctx.run.bench, s.public_key)
        fingerprint = key_fingerprint(s.public_key)
        if pinned is False:
            out.add("altered", where, f"made with key {fingerprint}, {why}")
        elif pinned is None:
            out.unpinned.append(fingerprint)
        lines.append(f"session {s.session}: SM2 signature valid, {s.key_kind} key {fingerprint} "
                     f"({'pinned' if pinned else 'NOT pinned'})")
    return "; ".join(lines) or None


def _check_claims(ctx: Evidence, out: Verification) -> str | None:
    summary = None
    for number, manifest in ctx.signed.items():
        now = claims(ctx.run, ctx.sessions, ctx.items, ctx.attachments, number)
        for path, change in diff(manifest.get("run"), now["run"], "journal run", "signed:"):
            out.add("altered", path, change)
        compare_rows(out, "journal session", manifest.get("sessions", []), now["sessions"],
                      lambda r: str(r.get("session")))
        compare_rows(out, "journal item", manifest.get("items", []), now["items"],
                      lambda r: f"{r.get('nodeid')} (session {r.get('session')})")
        signed_names = {a.get("name") for a in manifest.get("attachments", [])}
        compare_rows(out, "journal attachment", manifest.get("attachments", []),
                      [a for a in now["attachments"] if a["name"] in signed_names], lambda r: str(r.get("name")))
        summary = (f"run header, {len(now['sessions'])} session(s), {len(now['items'])} item(s) and "
                   f"{len(signed_names)} attachment hash(es): every column as signed")
    return summary


def _check_heads(ctx: Evidence, out: Verification) -> str | None:
    by_seq = {s.seq: s for s in ctx.stored}
    for number, manifest in ctx.signed.items():
        count, head = int(manifest["records"]["count"]), manifest["records"]["head"]
        last = by_seq.get(count)
        if count and (last is None or last.hash != head):
            out.add("altered", "journal records",
                    f"record {count}'s chain hash differs from the head session {number} signed: records up to it "
                    "were rewritten (and rechained) or removed")
        elif not count and ctx.stored and ctx.stored[0].session <= number:
            out.add("altered", "journal records", f"session {number} signed no records, the journal holds some of it")
    counts = [int(m["records"]["count"]) for m in ctx.signed.values()]
    return f"chain head of {max(counts)} record(s) as signed" if counts else None


def _check_coverage(ctx: Evidence, out: Verification) -> str | None:
    if not ctx.signed:
        out.add("uncovered", "run", "no session signed it (killed before it finished? resume it to sign)")
        return None
    last = max(ctx.signed)
    reach = max(int(m["records"]["count"]) for m in ctx.signed.values())
    unsigned = [s for s in ctx.stored if s.seq > reach]
    if unsigned:
        out.add("uncovered", f"journal records {unsigned[0].seq}..{unsigned[-1].seq}",
                f"taken after the last signature (session {last}): the session that took them did not finish "
                "(resume the run to sign them)")
    late_items = [i for i in ctx.items if i.session > last]
    if late_items:
        out.add("uncovered", "journal items", f"{len(late_items)} item outcome(s) of unsigned sessions")
    signed_names = {a.get("name") for m in ctx.signed.values() for a in m.get("attachments", [])}
    late = [a.name for a in ctx.attachments if a.name not in signed_names]
    if late:
        out.add("uncovered", f"attachment hashes of {', '.join(late)}", "recorded after the last signature")
    return None


def _addendum_problem(ctx: Evidence, seal: SealRow) -> tuple[str, dict[str, Any] | None]:
    row = ctx.session_row(seal.session)
    assert row is not None and row.public_key is not None and row.manifest is not None
    if not signature_valid(row.public_key, seal.addendum, seal.signature):
        return "does not verify with the session's key: the addendum or its signature was altered", None
    addendum = json.loads(seal.addendum)
    if not isinstance(addendum, dict) or addendum.get("format") != ADDENDUM_FORMAT:
        return f"not a {ADDENDUM_FORMAT} addendum", None
    if (addendum.get("run_id"), addendum.get("session")) != (ctx.run_id, seal.session) or \
            addendum.get("manifest_sm3") != sm3(row.manifest.encode("utf-8")).hex():
        return "belongs to another run, session or manifest", None
    return "", addendum


def _check_addendum(ctx: Evidence, out: Verification) -> str | None:
    if not ctx.signed:
        return None
    last = max(ctx.signed)
    for orphan in [n for n in ctx.seals if n > last]:
        out.add("altered", f"addendum of session {orphan}", "sealed, but its session's signed manifest is gone (the "
                                                            "session or its signature was deleted)")
    seal = ctx.seals.get(last)
    if seal is None:
        out.add("uncovered", "run folder", f"not sealed after session {last} signed (stopped before `rig run` "
                                           "wrote its last report, or run without `rig run`): its reports and the "
                                           "run's verdict column are covered by no signature")
        return None
    problem, addendum = _addendum_problem(ctx, seal)
    if addendum is None:
        out.add("altered", f"addendum of session {last}", problem)
        return None
    ctx.addendum = addendum
    for path, change in diff(addendum.get("run"), closing_claim(ctx.run), "journal run", "sealed:"):
        out.add("altered", path, change)
    return (f"session {last}'s addendum: signature valid; run verdict and finish as sealed; "
            f"{len(addendum.get('files', []))} file hash(es)")


def _check_files(ctx: Evidence, out: Verification) -> str | None:
    if ctx.addendum is None or ctx.folder is None:
        return None
    sealed = {f["name"]: f for f in ctx.addendum.get("files", [])}
    attached = {a.name for a in ctx.attachments}  # checked against their journal hash below
    present = folder_files(ctx.folder)
    matched = []
    for name, claim in sealed.items():
        if name in attached:
            continue
        if name not in present:
            out.add("altered", f"file {name}", "missing from the run folder (it was sealed after the run)")
            continue
        digest, size = file_digest(present[name])
        if (digest, size) != (claim["sm3"], claim["size_bytes"]):
            out.add("altered", f"file {name}", f"SM3 {digest[:16]}.. ({size} bytes) differs from the sealed "
                                               f"{claim['sm3'][:16]}.. ({claim['size_bytes']} bytes): altered after "
                                               "the run" + _REISSUED.get(Path(name).stem, ""))
        else:
            matched.append(name)
    for name in present:
        if name not in sealed and name not in attached:
            out.add("uncovered", f"file {name}", "covered by no signature: added to the run folder after it was "
                                                 "sealed" + _REISSUED.get(Path(name).stem, ""))
    return f"{len(matched)} run-folder file(s) match their sealed SM3: {', '.join(matched)}" if matched else None


def _check_attachment_files(ctx: Evidence, out: Verification) -> str | None:
    assert ctx.folder is not None
    for att in ctx.attachments:
        path = ctx.folder / att.name
        if not path.is_file():
            out.add("altered", f"attachment {att.name}", "missing from the run folder")
            continue
        digest, size = file_digest(path)
        if digest != att.sm3 or size != att.size_bytes:
            out.add("altered", f"attachment {att.name}",
                    f"SM3 {digest[:16]}.. ({size} bytes) differs from the recorded {att.sm3[:16]}.. "
                    f"({att.size_bytes} bytes): altered after the run")
        else:
            out.intact.append(f"attachment {att.name}: SM3 matches ({size} bytes)")
    return None


def _read_results(ctx: Evidence, out: Verification) -> dict[str, Any] | None:
    assert ctx.folder is not None
    path = ctx.folder / "results.json"
    if not path.is_file():
        out.add("uncovered", "results.json", "not in the run folder (the last session was killed?)")
        return None
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        out.add("altered", "results.json", f"is not valid JSON any more ({exc})")
        return None
    if not isinstance(data, dict) or data.get("run_id") != ctx.run_id:
        out.add("altered", "results.json", f"belongs to run {data.get('run_id') if isinstance(data, dict) else '?'}"
                                           f", not {ctx.run_id}")
        return None
    return data


def _check_results_record(ctx: Evidence, out: Verification, rec: Any) -> int | None:
    """One record of results.json against the journal's chain; its seq when it is in the journal."""
    by_seq = {s.seq: s for s in ctx.stored}
    seq = rec.get("seq") if isinstance(rec, dict) else None
    if not isinstance(seq, int) or seq not in by_seq:
        out.add("altered", "results.json record", f"{rec.get('quantity') if isinstance(rec, dict) else rec!r}"
                                                  f" (seq {seq}) is not in the journal")
        return None
    journal_rec = by_seq[seq]
    previous = by_seq[seq - 1].hash if seq - 1 in by_seq else genesis(ctx.run_id)
    body = body_from_json(ctx.run_id, rec)
    if record_digest(previous, body) != journal_rec.hash or rec.get("hash") != journal_rec.hash:
        out.add("altered", f"results.json {_name(journal_rec)}", _differences(body, journal_rec))
    elif record_digest(previous, journal_rec.body()) != journal_rec.hash:
        # The journal's row was edited; results.json still holds what was recorded.
        out.intact.append(f"results.json holds record {seq} as recorded; the journal's "
                          + _differences(body, journal_rec).replace("differs from the journal: ", "edit: "))
    return seq


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    return value if isinstance(value, list) else []


def _check_results_records(ctx: Evidence, out: Verification) -> str | None:
    data = _read_results(ctx, out)
    if data is None:
        return None
    listed = [rec for key in _RECORD_LISTS for rec in _list(data, key)]
    seen = [seq for rec in listed if (seq := _check_results_record(ctx, out, rec)) is not None]
    numbers = [n for s in _list(data, "sessions") if isinstance(s, dict) and isinstance(n := s.get("session"), int)]
    if ctx.sessions and (not numbers or max(numbers) < ctx.sessions[-1].session):
        out.add("uncovered", "results.json", "was written before the journal's last session (killed?); "
                                             "`rig run --resume` rewrites it")
        return None
    effective, superseded = effective_records(ctx.journal, ctx.run_id)
    for s in [*effective, *superseded]:
        if s.seq not in seen:
            out.add("altered", f"results.json {_name(s)}", "missing (removed from results.json)")
    if [s.seq for s in [*effective, *superseded]] == sorted(seen) and seen != sorted(seen):
        out.add("altered", "results.json records", "in another order than they were taken")
    ctx.results = data
    return f"results.json: {len(seen)} record(s) match the journal's chain hashes"


def _check_results_fields(ctx: Evidence, out: Verification) -> str | None:
    data = ctx.results
    if data is None:
        return None
    completed = {i.nodeid for i in ctx.items}
    # An item still running when the session ended is shown as interrupted; the journal only knows it did not
    # complete. An item that did complete is never shown as interrupted.
    open_items = [nodeid for t in _list(data, "tests") if isinstance(t, dict) and t.get("outcome") == INTERRUPTED
                  and isinstance(nodeid := t.get("test"), str) and nodeid not in completed]
    expected = results_document(ctx.journal, ctx.run_id, open_items=open_items)
    compared = [k for k in [*expected, *(k for k in data if k not in expected)]
                if k not in _NOT_FROM_JOURNAL and k not in _RECORD_LISTS]
    for key in compared:
        for path, change in diff(expected.get(key, ABSENT), data.get(key, ABSENT), key, "the journal gives"):
            out.add("altered", f"results.json {path}", change)
    return f"results.json: {len(compared)} other field(s) as the journal gives them (verdict, tests, instruments, ...)"


def _differences(body: dict[str, Any], journal_rec: StoredRecord) -> str:
    theirs = journal_rec.body()
    changed = [f"{key} {body.get(key)!r} (journal: {theirs.get(key)!r})" for key in RECORD_FIELDS
               if body.get(key) != theirs.get(key) and key != "run_id"]
    return ("differs from the journal: " + "; ".join(changed)) if changed else "hash differs from the journal"


CHECKS: tuple[Check, ...] = (
    Check("every journal record is as it was taken (SM3 chain)", _check_chain),
    Check("each session's manifest is signed by its key, and the key is pinned when the lab pinned one",
          _check_signatures),
    Check("every column of the run header, sessions, items and attachment hashes is as signed", _check_claims),
    Check("the records up to each signed chain head are the ones signed (no rewrite, rechain or removal)",
          _check_heads),
    Check("every record, item and attachment hash is covered by a signature", _check_coverage),
    Check("the run's verdict and finish are as sealed after the last report was written", _check_addendum),
    Check("every run-folder file is the one sealed, and no file was added", _check_files, needs_folder=True),
    Check("every attachment is the file whose hash the journal holds", _check_attachment_files, needs_folder=True),
    Check("results.json's records are the journal's (chain hashes), none removed or reordered",
          _check_results_records, needs_folder=True),
    Check("every other results.json field is what the journal gives", _check_results_fields, needs_folder=True),
)
