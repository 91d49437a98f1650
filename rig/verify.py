"""A run's signed manifest and addendum, and `rig verify` (composition layer): was anything altered after it
was recorded, where, and who vouches for it.

What a session signs: its manifest (every column of the run header and of its sessions, items and attachment
hashes; the record count and chain head) when pytest finishes, then its addendum once `rig run` has written
every report (the SM3 of every run-folder file; the run's closing columns). `rig verify` runs CHECKS, one row
per claim a reader relies on. A key stored with the run (throwaway, or a bench key nobody pinned) proves that
the files agree with each other, not who wrote them: only a pinned key (`--expect-key`, or the lab database's
bench_keys) ties a run to its bench.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from drivers.crypto import sm3
from rig.integrity import (
    ADDENDUM_FORMAT,
    MANIFEST_FORMAT,
    RECORD_FIELDS,
    RunSigner,
    body_from_json,
    canonical_json,
    genesis,
    key_fingerprint,
    normalise_public_key,
    record_digest,
    signature_valid,
)
from rig.results import (
    INTERRUPTED,
    Attachment,
    ItemOutcome,
    Journal,
    PinnedKey,
    RunRow,
    SealRow,
    SessionRow,
    StoredRecord,
    results_document,
)

Level = Literal["altered", "uncovered"]

# The journal's own files: covered record by record by the chain and the manifests, not by a file hash.
JOURNAL_FILES = frozenset({"journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm", "journal.sqlite-journal"})
# Session columns that hold the signature itself (the manifest cannot contain them).
_SIGNATURE_COLUMNS = ("public_key", "key_kind", "manifest", "signature")
# Run columns written after the manifest is signed (finish_run): the addendum seals them.
_CLOSING_COLUMNS = ("finished_utc", "verdict")
# results.json fields that are facts of the moment it was written, not of the journal: the sealed file hash
# covers them; records are checked against their chain hashes.
_NOT_FROM_JOURNAL = frozenset({"finished_utc", "journal", "refused_because", "stopped_because", "stopped_by"})
_RECORD_LISTS = ("records", "superseded_records")
# How rows of a list are told apart when a list in a document or manifest is compared row by row.
_ROW_KEYS = ("test", "seq", "session", "name", "role")
_ABSENT = object()
# A certificate is derived from the journal alone: one issued later into the run folder is not the sealed one.
_REISSUED = {"certificate": " (or re-issued there by `rig report`: issue it with --out elsewhere, or re-issue it "
                            "to trust it)"}

UNPINNED_TEXT = "consistent, signer NOT pinned: proves the files agree with each other, not who wrote them"


@dataclass(frozen=True)
class Finding:
    """One problem: `altered` (differs from what was recorded, signed or sealed) or `uncovered` (no signature
    vouches for it)."""

    level: Level
    where: str
    message: str

    def text(self) -> str:
        """`ALTERED journal record 12: ...`."""
        return f"{self.level.upper()} {self.where}: {self.message}"


@dataclass
class Verification:
    """The outcome of `verify_run`: findings, what was checked and found intact, and who signed."""

    run_id: str
    findings: list[Finding] = field(default_factory=list)
    intact: list[str] = field(default_factory=list)
    unpinned: list[str] = field(default_factory=list)  # fingerprints of valid signatures by keys nobody pinned
    notes: list[str] = field(default_factory=list)  # what was not checked, and why

    @property
    def ok(self) -> bool:
        """True when nothing was found altered or uncovered (whoever signed)."""
        return not self.findings

    @property
    def altered(self) -> bool:
        """True when something was altered."""
        return any(f.level == "altered" for f in self.findings)

    @property
    def pinned(self) -> bool:
        """True when consistent and every signature is by a pinned key."""
        return self.ok and not self.unpinned

    @property
    def exit_code(self) -> int:
        """0 consistent and signed by pinned keys, 3 consistent but a signer is not pinned, 1 otherwise."""
        return 0 if self.pinned else 3 if self.ok else 1

    def add(self, level: Level, where: str, message: str) -> None:
        """Add a finding (once: several manifests may vouch for the same row)."""
        finding = Finding(level, where, message)
        if finding not in self.findings:
            self.findings.append(finding)

    def headline(self) -> str:
        """The first line: ALTERED, NOT COVERED, consistent but unpinned, or verified."""
        if self.altered:
            return "ALTERED"
        if self.findings:
            return "NOT COVERED: parts of the run are covered by no signature"
        if self.unpinned:
            keys = ", ".join(dict.fromkeys(self.unpinned))
            return (f"{UNPINNED_TEXT} (key {keys}; a lab pins its bench keys with `rig keys pin` or "
                    "`rig verify --expect-key`)")
        return "verified, nothing altered, signed by pinned key(s)" + (" (journal only: no run folder given)"
                                                                        if self.notes else "")

    def text(self) -> str:
        """The report `rig verify` prints."""
        lines = [f"run {self.run_id}: {self.headline()}"]
        lines += [f"  ok   {line}" for line in self.intact]
        lines += [f"  note {line}" for line in self.notes]
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


def _closing_claim(run: RunRow) -> dict[str, Any]:
    return {column: getattr(run, column) for column in _CLOSING_COLUMNS}


def _session_claim(s: SessionRow) -> dict[str, Any]:
    claim = dataclasses.asdict(s)
    for column in _SIGNATURE_COLUMNS:
        claim.pop(column)
    return claim


def _claims(run: RunRow, sessions: Sequence[SessionRow], items: Sequence[ItemOutcome],
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
    claims = _claims(journal.run(run_id), journal.sessions(run_id), journal.items(run_id),
                     journal.attachments(run_id), session)
    return {
        "format": MANIFEST_FORMAT,
        "run_id": run_id,
        "session": session,
        **claims,
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
            "manifest_sm3": sm3(manifest.encode("utf-8")).hex(), "run": _closing_claim(journal.run(run_id)),
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


# ------------------------------------------------------------------------------------ pinned keys


@dataclass(frozen=True)
class Pins:
    """Keys a lab vouches for: `expected` (--expect-key: every signature must be by one of them) and the lab
    database's bench_keys (a bench with pinned keys fails a run signed by any other key)."""

    expected: frozenset[str] = frozenset()
    by_bench: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, expect_key: str | None = None, pinned: Iterable[PinnedKey] = ()) -> Pins:
        """Pins from --expect-key and the rows of a lab database's bench_keys."""
        by_bench: dict[str, set[str]] = {}
        for row in pinned:
            by_bench.setdefault(row.bench, set()).add(normalise_public_key(row.public_key))
        expected = frozenset({normalise_public_key(expect_key)} if expect_key else set())
        return cls(expected, {bench: frozenset(keys) for bench, keys in by_bench.items()})

    def judge(self, bench: str, public_key: str) -> tuple[bool | None, str]:
        """(True pinned, None not pinned, False pinned keys exist and this is none of them; why)."""
        key = normalise_public_key(public_key)
        wanted = self.expected or self.by_bench.get(bench, frozenset())
        source = "--expect-key" if self.expected else f"bench {bench}'s pinned keys"
        if not wanted:
            return None, "not pinned"
        if key in wanted:
            return True, "pinned"
        return False, f"not one of {source} ({', '.join(sorted(key_fingerprint(k) for k in wanted))})"


# ----------------------------------------------------------------------------------- verifying


@dataclass
class _Run:
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
    run: Callable[[_Run, Verification], str | None]
    needs_folder: bool = False


def verify_run(journal: Journal, run_id: str, folder: Path | None = None, *, expect_key: str | None = None,
               pins: Pins | None = None) -> Verification:
    """Check a run against every claim of CHECKS (JournalError when the run is not in the journal)."""
    ctx = _Run(journal=journal, run_id=run_id, folder=folder,
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


# ---- comparing documents


def _show(value: Any) -> str:
    return "absent" if value is _ABSENT else repr(value)


def _row_key(*lists: Sequence[Any]) -> str | None:
    """The field that tells the rows of each list apart, if they are objects with one."""
    if not all(rows and all(isinstance(r, dict) for r in rows) for rows in lists):
        return None
    for key in _ROW_KEYS:
        if all(len({canonical_json(r.get(key)) for r in rows}) == len(rows) and all(key in r for r in rows)
               for rows in lists):
            return key
    return None


def _diff(reference: Any, actual: Any, path: str, said: str) -> list[tuple[str, str]]:
    """(path, `actual (said reference)`) for every leaf of `actual` that differs from `reference`."""
    if isinstance(reference, dict) and isinstance(actual, dict):
        out: list[tuple[str, str]] = []
        for key in [*reference, *(k for k in actual if k not in reference)]:
            out += _diff(reference.get(key, _ABSENT), actual.get(key, _ABSENT), f"{path}.{key}", said)
        return out
    if isinstance(reference, list) and isinstance(actual, list):
        return _diff_lists(reference, actual, path, said)
    if canonical_json(reference if reference is not _ABSENT else "\0absent") == \
            canonical_json(actual if actual is not _ABSENT else "\0absent"):
        return []
    return [(path, f"{_show(actual)} ({said} {_show(reference)})")]


def _diff_lists(reference: list[Any], actual: list[Any], path: str, said: str) -> list[tuple[str, str]]:
    key = _row_key(reference, actual)
    if key is None:
        if len(reference) != len(actual):
            return [(path, f"{len(actual)} entries ({said} {len(reference)})")]
        return [d for i, (a, b) in enumerate(zip(reference, actual)) for d in _diff(a, b, f"{path}[{i}]", said)]
    ref = {canonical_json(r[key]): r for r in reference}
    act = {canonical_json(r[key]): r for r in actual}
    out = []
    for k in [*ref, *(k for k in act if k not in ref)]:
        out += _diff(ref.get(k, _ABSENT), act.get(k, _ABSENT), f"{path}[{json.loads(k)}]", said)
    if not out and list(ref) != list(act):
        out.append((path, "the same entries in another order"))
    return out


def _compare_rows(out: Verification, what: str, signed: Sequence[Mapping[str, Any]], now: Sequence[Mapping[str, Any]],
                  key: Callable[[Mapping[str, Any]], str]) -> None:
    """Journal rows against the rows a manifest signed: each differing row named with every differing column."""
    signed_by = {key(r): r for r in signed}
    now_by = {key(r): r for r in now}
    for name in [*signed_by, *(k for k in now_by if k not in signed_by)]:
        if name not in now_by:
            out.add("altered", f"{what} {name}", "missing: deleted after it was signed")
        elif name not in signed_by:
            out.add("altered", f"{what} {name}", "not in what was signed: added afterwards")
        else:
            changes = _diff(dict(signed_by[name]), dict(now_by[name]), "", "signed:")
            if changes:
                out.add("altered", f"{what} {name}", "; ".join(f"{p.lstrip('.')} {c}" for p, c in changes))
    if set(signed_by) == set(now_by) and list(signed_by) != list(now_by):
        out.add("altered", f"{what}s", "in another order than signed")


# ---- the checks, in order (later ones use what earlier ones established)


def _check_chain(ctx: _Run, out: Verification) -> str | None:
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


def _manifest_problem(ctx: _Run, s: SessionRow) -> tuple[str, dict[str, Any] | None]:
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


def _check_signatures(ctx: _Run, out: Verification) -> str | None:
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


def _check_claims(ctx: _Run, out: Verification) -> str | None:
    summary = None
    for number, manifest in ctx.signed.items():
        now = _claims(ctx.run, ctx.sessions, ctx.items, ctx.attachments, number)
        for path, change in _diff(manifest.get("run"), now["run"], "journal run", "signed:"):
            out.add("altered", path, change)
        _compare_rows(out, "journal session", manifest.get("sessions", []), now["sessions"],
                      lambda r: str(r.get("session")))
        _compare_rows(out, "journal item", manifest.get("items", []), now["items"],
                      lambda r: f"{r.get('nodeid')} (session {r.get('session')})")
        signed_names = {a.get("name") for a in manifest.get("attachments", [])}
        _compare_rows(out, "journal attachment", manifest.get("attachments", []),
                      [a for a in now["attachments"] if a["name"] in signed_names], lambda r: str(r.get("name")))
        summary = (f"run header, {len(now['sessions'])} session(s), {len(now['items'])} item(s) and "
                   f"{len(signed_names)} attachment hash(es): every column as signed")
    return summary


def _check_heads(ctx: _Run, out: Verification) -> str | None:
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


def _check_coverage(ctx: _Run, out: Verification) -> str | None:
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


def _addendum_problem(ctx: _Run, seal: SealRow) -> tuple[str, dict[str, Any] | None]:
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


def _check_addendum(ctx: _Run, out: Verification) -> str | None:
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
    for path, change in _diff(addendum.get("run"), _closing_claim(ctx.run), "journal run", "sealed:"):
        out.add("altered", path, change)
    return (f"session {last}'s addendum: signature valid; run verdict and finish as sealed; "
            f"{len(addendum.get('files', []))} file hash(es)")


def _check_files(ctx: _Run, out: Verification) -> str | None:
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


def _check_attachment_files(ctx: _Run, out: Verification) -> str | None:
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


def _read_results(ctx: _Run, out: Verification) -> dict[str, Any] | None:
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


def _check_results_record(ctx: _Run, out: Verification, rec: Any) -> int | None:
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


def _check_results_records(ctx: _Run, out: Verification) -> str | None:
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
    effective, superseded = ctx.journal.effective_records(ctx.run_id)
    for s in [*effective, *superseded]:
        if s.seq not in seen:
            out.add("altered", f"results.json {_name(s)}", "missing (removed from results.json)")
    if [s.seq for s in [*effective, *superseded]] == sorted(seen) and seen != sorted(seen):
        out.add("altered", "results.json records", "in another order than they were taken")
    ctx.results = data
    return f"results.json: {len(seen)} record(s) match the journal's chain hashes"


def _check_results_fields(ctx: _Run, out: Verification) -> str | None:
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
        for path, change in _diff(expected.get(key, _ABSENT), data.get(key, _ABSENT), key, "the journal gives"):
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
