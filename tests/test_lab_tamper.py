"""Tamper matrix: one real two-session run (a smoke run signed with a bench key, then a resume that writes the
whole-run reports and the certificate), copied once per edit. Each edit changes what a reader of the run
relies on: every file of the run folder, every results.json field, every journal column, deletions,
reorderings, a rechained journal, a run re-signed with another key while the bench key is pinned.
`rig verify` must catch every one and name it; the test prints caught/total."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_lab_integrity import RIG, signed_smoke_run

from drivers.crypto import sm2_generate_keypair, sm2_keypair_from_private
from rig.cli import main
from rig.integrity import RunSigner, canonical_json, record_digest
from rig.integrity.seal import JOURNAL_FILES, seal_session, sign_session
from rig.results import Journal, metadata, results_document

PRIVATE_HEX = "5c1bd4e0d6e4d7a7a51d3b3bd0b1d5f0e3a9c6f8b2d4e1f0a3c5e7d9b1f3a5c7"  # test key, not a real one
PUBLIC_HEX = sm2_keypair_from_private(PRIVATE_HEX).public_hex

# Journal columns no report shows and whose change misleads nobody, each with the reason.
NOT_SHOWN = {
    ("records", "id"): "storage order only: records are ordered, chained and reported by seq",
    ("attachments", "id"): "storage order only: an attachment is found by its name",
    ("items", "id"): "the completion order: edited by the reorder edit below, not as a value",
}
# What a finding must name for an edit of each table's columns.
NAMES = {"runs": "journal run", "run_sessions": "session", "records": "journal record", "items": "journal item",
         "attachments": "attachment", "run_seals": "session 1"}
# results.json fields that are facts of the moment it was written (only the sealed file hash covers them), and
# fields whose edit is found by what they point at.
RESULTS_NAMES = {"finished_utc": "file results.json", "journal": "file results.json", "run_id": "no run",
                 "records": "results.json record", "superseded_records": "results.json record"}


@dataclass(frozen=True)
class Edit:
    """One way to mislead a reader: what it does to a copy of the run, and what verify must name."""

    kind: str
    apply: Callable[[Path], None]
    names: str


@pytest.fixture(scope="module")
def signed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder, _proc = signed_smoke_run(tmp_path_factory.mktemp("tamper"), PRIVATE_HEX)
    again = subprocess.run([*RIG, "run", "--resume", folder.name, "--reports", str(folder.parent)],
                           capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (folder / "certificate.html").is_file()
    return folder


def verify(folder: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["verify", str(folder), "--expect-key", PUBLIC_HEX, *args])


# ------------------------------------------------------------------------------------ edits


def _sql(folder: Path, statement: str, *params: Any) -> None:
    with sqlite3.connect(folder / "journal.sqlite") as conn:
        conn.execute(statement, params)


def _leaf_changed(value: Any) -> Any:
    """`value` with its first leaf changed (a JSON text stays JSON)."""
    if isinstance(value, dict) and value:
        first = next(iter(value))
        return value | {first: _leaf_changed(value[first])}
    if isinstance(value, list):
        return [_leaf_changed(value[0]), *value[1:]] if value else [{"added": True}]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + (1 if isinstance(value, int) else 0.5)
    if isinstance(value, str):
        return _text_changed(value)
    return "edited"


def _text_changed(text: str) -> str:
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict | list):
        return json.dumps(_leaf_changed(parsed))
    if text and all(c in "0123456789abcdef" for c in text):
        return text[:-1] + ("0" if text[-1] != "0" else "1")  # a hash, key or signature: one digit off
    return text + " (edited)"


def _edit_column(table: str, column: str, folder: Path) -> None:
    with sqlite3.connect(folder / "journal.sqlite") as conn:
        row = conn.execute(f"SELECT rowid, {column} FROM {table} WHERE {column} IS NOT NULL "
                           "ORDER BY rowid DESC LIMIT 1").fetchone()
        if row is None:  # never filled in this run (e.g. an item's message): fill it in
            row = (conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0], None)
        changed = _leaf_changed(row[1]) if row[1] is not None else "approved (edited)"
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (changed, row[0]))


def _edit_results(change: Callable[[dict[str, Any]], None], folder: Path) -> None:
    path = folder / "results.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document, indent=2))


def _edit_file(name: str, folder: Path) -> None:
    path = folder / name
    data = path.read_bytes()
    path.write_bytes(data.replace(b"pass", b"PASS", 1) if b"pass" in data else data + b"\n")


def _rechain_from(folder: Path, seq: int, value: float) -> None:
    """Edit record `seq`'s value and recompute every chain hash from it on, as someone who knows the chain would."""
    journal = Journal.in_folder(folder, create=False)
    stored = journal.stored_records(folder.name)
    journal.close()
    previous = stored[seq - 2].hash
    for s in stored[seq - 1:]:
        body = s.body() | ({"value": value} if s.seq == seq else {})
        previous = record_digest(previous, body)
        _sql(folder, "UPDATE records SET value = ?, hash = ? WHERE seq = ?", body["value"], previous, s.seq)


def forge(folder: Path) -> None:
    """Edit a value, rechain, rewrite results.json, re-sign every session and re-seal the folder with a new key
    (labelled a bench key): everything agrees with everything else."""
    _rechain_from(folder, 3, 219.0)
    signer = RunSigner(sm2_generate_keypair(), "bench", "forged")
    journal = Journal.in_folder(folder, create=False)
    run_id = folder.name
    sessions = [s.session for s in journal.sessions(run_id)]
    for session in sessions:
        sign_session(journal, run_id, session, signer)
    document = json.loads((folder / "results.json").read_text())
    forged = results_document(journal, run_id) | {k: document[k] for k in ("finished_utc", "journal")}
    (folder / "results.json").write_text(json.dumps(forged, indent=2))
    seal_session(journal, run_id, sessions[-1], folder, signer)
    journal.close()


def _swap_items(folder: Path) -> None:
    with sqlite3.connect(folder / "journal.sqlite") as conn:
        (a, b) = [r[0] for r in conn.execute("SELECT id FROM items ORDER BY id LIMIT 2")]
        conn.execute("UPDATE items SET id = -1 WHERE id = ?", (a,))
        conn.execute("UPDATE items SET id = ? WHERE id = ?", (a, b))
        conn.execute("UPDATE items SET id = ? WHERE id = -1", (b,))


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        target = document
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
    return change


def _results_edits(document: dict[str, Any]) -> Iterator[Edit]:
    for key in document:  # every field, each with its first leaf changed
        yield Edit(f"results.json {key}", partial(_edit_results, lambda d, k=key: d.update({k: _leaf_changed(d[k])})),
                   RESULTS_NAMES.get(key, f"results.json {key}"))
    reference = next(i for i, inst in enumerate(document["instruments"]) if inst["role"] == "reference")
    failed_test = next(i for i, t in enumerate(document["tests"]) if t["outcome"] == "passed")
    named = [
        ("calibration due date", ["instruments", reference, "calibration_due"], "2030-01-01",
         "instruments[reference].calibration_due"),
        ("meter type", ["meter_type", "accuracy_class"], "0.5S", "meter_type.accuracy_class"),
        ("bench faults", ["bench_faults"], 3, "results.json bench_faults"),
        ("outcome made interrupted", ["tests", failed_test, "outcome"], "interrupted", ".outcome: 'interrupted'"),
        ("outcome made failed", ["tests", failed_test, "outcome"], "failed", ".outcome: 'failed'"),
        ("verdict", ["verdict"], "fail", "results.json verdict"),
        ("record value", ["records", 2, "value"], 230.0, "value 230.0"),
        ("record verdict", ["records", 2, "verdict"], "fail", "verdict 'fail'"),
        ("session signed", ["sessions", 0, "key_kind"], "throwaway", "sessions[0].key_kind"),
    ]
    for kind, path, value, names in named:
        yield Edit(f"results.json {kind}", partial(_edit_results, _set(path, value)), names)
    yield Edit("results.json test entry removed", partial(_edit_results, lambda d: d["tests"].pop(1)),
               "results.json tests[")
    yield Edit("results.json record removed", partial(_edit_results, lambda d: d["records"].pop(1)),
               "missing (removed from results.json)")
    yield Edit("results.json records reordered", partial(_edit_results, lambda d: d["records"].reverse()),
               "results.json records: in another order")
    yield Edit("results.json tests reordered", partial(_edit_results, lambda d: d["tests"].reverse()),
               "results.json tests: the same entries in another order")


def _journal_edits() -> Iterator[Edit]:
    for table in metadata.sorted_tables:
        for column in table.columns:
            if (table.name, column.name) not in NOT_SHOWN:
                names = "no run" if (table.name, column.name) == ("runs", "run_id") else NAMES[table.name]
                yield Edit(f"journal {table.name}.{column.name}", partial(_edit_column, table.name, column.name),
                           names)
    deletions = [
        ("a record", "DELETE FROM records WHERE seq = 2", "journal record 2: missing"),
        ("the last record", "DELETE FROM records WHERE seq = (SELECT max(seq) FROM records)", "journal records"),
        ("an item", "DELETE FROM items WHERE id = (SELECT min(id) FROM items)", "missing: deleted after"),
        ("the attachment hash", "DELETE FROM attachments", "attachment"),
        ("the last session", "DELETE FROM run_sessions WHERE session = 1", "session 1"),
        ("the last session's signature",
         "UPDATE run_sessions SET manifest = NULL, signature = NULL, public_key = NULL WHERE session = 1",
         "session 1"),
        ("the seal", "DELETE FROM run_seals", "not sealed after session 1"),
    ]
    for kind, statement, names in deletions:
        yield Edit(f"journal: deleted {kind}", partial(_sql_edit, statement), names)
    yield Edit("journal items reordered", _swap_items, "journal items: in another order than signed")
    yield Edit("journal rechained after an edit", partial(_rechain_from, seq=3, value=219.0),
               "differs from the head session")
    yield Edit("re-signed with a new key (the bench key pinned)", forge, "not one of --expect-key")


def _sql_edit(statement: str, folder: Path) -> None:
    _sql(folder, statement)


def _file_edits(folder: Path) -> Iterator[Edit]:
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name not in JOURNAL_FILES)
    for name in names:
        yield Edit(f"file {name} edited", partial(_edit_file, name), name)
        yield Edit(f"file {name} deleted", lambda f, n=name: (f / n).unlink(), name)
    yield Edit("file added to the run folder", lambda f: (f / "approval.txt").write_text("approved"),
               "file approval.txt")


def all_edits(folder: Path) -> list[Edit]:
    document = json.loads((folder / "results.json").read_text())
    return [*_file_edits(folder), *_results_edits(document), *_journal_edits()]


# ------------------------------------------------------------------------------------ tests


def test_the_untouched_run_verifies_with_its_pinned_key(signed_run: Path) -> None:
    result = verify(signed_run)
    assert result.exit_code == 0, result.output
    assert "certificate.html" in result.stdout and "report.s1.html" in result.stdout, "the resume's reports sealed"


def test_every_edit_a_reader_would_be_misled_by_is_caught_and_named(signed_run: Path, tmp_path: Path) -> None:
    edits = all_edits(signed_run)
    missed = []
    for number, edit in enumerate(edits):
        copy = tmp_path / str(number) / signed_run.name
        shutil.copytree(signed_run, copy)
        edit.apply(copy)
        result = verify(copy)
        said = result.stdout + result.stderr
        if result.exit_code not in (1, 2) or edit.names not in said or "verified" in said.splitlines()[0]:
            missed.append(f"{edit.kind}: exit {result.exit_code}, expected {edit.names!r} in:\n{said}")
        shutil.rmtree(copy.parent)
    caught = len(edits) - len(missed)
    print(f"\ntamper matrix: {caught}/{len(edits)} edits caught and named ({100 * caught / len(edits):.0f} %)")
    assert len(edits) >= 40
    assert not missed, "\n\n".join(missed)


def test_the_matrix_covers_every_file_field_and_column(signed_run: Path) -> None:
    kinds = {e.kind for e in all_edits(signed_run)}
    files = {p.name for p in signed_run.iterdir() if p.is_file() and p.name not in JOURNAL_FILES}
    assert {"certificate.html", "report.html", "junit.xml", "run.json", "results.json", "traffic.log"} <= files
    assert {f"file {name} edited" for name in files} <= kinds
    assert {f"results.json {key}" for key in json.loads((signed_run / "results.json").read_text())} <= kinds
    columns = {(t.name, c.name) for t in metadata.sorted_tables for c in t.columns}
    assert {f"journal {t}.{c}" for t, c in columns - set(NOT_SHOWN)} <= kinds


def test_a_forged_run_is_consistent_but_never_called_verified_without_a_pin(signed_run: Path, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / signed_run.name
    shutil.copytree(signed_run, copy)
    forge(copy)
    unpinned = CliRunner().invoke(main, ["verify", str(copy)])
    assert unpinned.exit_code == 3, unpinned.output
    assert "consistent, signer NOT pinned: proves the files agree with each other, not who wrote them" \
        in unpinned.stdout
    assert "verified" not in unpinned.stdout
    lab = f"sqlite:///{tmp_path / 'lab.sqlite'}"
    pinned = CliRunner().invoke(main, ["keys", "pin", "twin", PUBLIC_HEX, "--db", lab])
    assert pinned.exit_code == 0, pinned.output
    monkeypatch.setenv("RIG_DB", lab)
    caught = CliRunner().invoke(main, ["verify", str(copy)])
    assert caught.exit_code == 1 and "not one of bench twin's pinned keys" in caught.stdout
    assert CliRunner().invoke(main, ["verify", str(signed_run)]).exit_code == 0, "the real run passes the same pin"


def test_a_hand_made_manifest_signed_by_its_maker_fails_closed(signed_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / signed_run.name
    shutil.copytree(signed_run, copy)
    with sqlite3.connect(copy / "journal.sqlite") as conn:
        (text,) = conn.execute("SELECT manifest FROM run_sessions WHERE session = 1").fetchone()
        manifest = json.loads(text)
        del manifest["records"]  # no record count or chain head: nothing to check the records against
        signer = RunSigner(sm2_generate_keypair(), "bench", "hand-made")
        manifest["key"]["public"] = signer.public_hex
        conn.execute("UPDATE run_sessions SET manifest = ?, signature = ?, public_key = ? WHERE session = 1",
                     (canonical_json(manifest), signer.sign(manifest), signer.public_hex))
    result = CliRunner().invoke(main, ["verify", str(copy)])
    assert result.exit_code == 1, result.output
    assert "ALTERED a signed or written document: malformed" in result.stdout
    assert result.exception is None or isinstance(result.exception, SystemExit)
