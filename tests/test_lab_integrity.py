"""Tamper evidence: records chained by SM3, runs signed with SM2 (a bench key by reference, or a
throwaway key on the twin), instrument traffic kept with its hash; `rig verify` names what was altered.
Key material never appears in the run folder, the journal, the reports or the output."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from drivers.crypto import sm2_generate_keypair
from drivers.transport import LoggedTransport, ScriptedTransport, TrafficLog
from rig.cli import main
from rig.integrity import genesis, key_fingerprint, record_digest
from rig.results import Journal

RIG = [sys.executable, "-m", "rig.cli"]
PRIVATE_HEX = "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8"  # test key, not a real one


def signed_smoke_run(base: Path, private_hex: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """(run folder, process) of a smoke run on the twin signed with a bench key given by reference (a key file)."""
    key_file = base / "bench-signing.hex"
    key_file.write_text(private_hex + "\n")
    reports = base / "reports"
    proc = subprocess.run([*RIG, "run", "testplans/smoke", "--reports", str(reports),
                           "--set", f"keys.signing.file={key_file}"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return (reports / "latest").resolve(), proc


@pytest.fixture(scope="module")
def signed_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A smoke run on the twin signed with a bench key given by reference (a key file)."""
    folder, proc = signed_smoke_run(tmp_path_factory.mktemp("signed"), PRIVATE_HEX)
    return {"folder": folder, "run_id": folder.name, "proc": proc}


@pytest.fixture
def copy(signed_run: dict[str, Any], tmp_path: Path) -> Path:
    """A private copy of the signed run's folder to tamper with."""
    target = tmp_path / signed_run["run_id"]
    shutil.copytree(signed_run["folder"], target)
    return target


def verify(*args: str) -> Any:
    return CliRunner().invoke(main, ["verify", *args])


def public_key() -> str:
    from drivers.crypto import sm2_keypair_from_private

    return sm2_keypair_from_private(PRIVATE_HEX).public_hex


def test_untouched_run_is_consistent_and_verified_only_with_its_key_pinned(copy: Path, tmp_path: Path) -> None:
    unpinned = verify(str(copy))
    assert unpinned.exit_code == 3, unpinned.output
    assert "consistent, signer NOT pinned: proves the files agree with each other, not who wrote them" \
        in unpinned.stdout
    assert "verified" not in unpinned.stdout, "a signature by a key nobody pinned proves no origin"
    assert "SM2 signature valid, bench key" in unpinned.stdout and "(NOT pinned)" in unpinned.stdout
    assert "traffic.log: SM3 matches" in unpinned.stdout
    assert "file(s) match their sealed SM3: junit.xml, report.html, results.json, run.json" in unpinned.stdout
    pinned = verify(str(copy), "--expect-key", public_key())
    assert pinned.exit_code == 0, pinned.output
    assert pinned.stdout.splitlines()[0].endswith("verified, nothing altered, signed by pinned key(s)")
    stranger = verify(str(copy), "--expect-key", sm2_generate_keypair().public_hex)
    assert stranger.exit_code == 1 and "not one of --expect-key" in stranger.stdout
    garbled = verify(str(copy), "--expect-key", "xyz")
    assert garbled.exit_code == 2 and "128 hex digits" in garbled.stderr


def test_a_lab_pins_its_bench_key_in_its_database(copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = f"sqlite:///{tmp_path / 'lab.sqlite'}"
    runner = CliRunner()
    nothing = runner.invoke(main, ["keys", "list", "--db", lab])
    assert nothing.exit_code == 0 and "no bench keys pinned" in nothing.stderr
    pinned = runner.invoke(main, ["keys", "pin", "--from-run", str(copy), "--db", lab, "--note", "bench A custodian"])
    assert pinned.exit_code == 0, pinned.output
    fingerprint = key_fingerprint(public_key())
    assert f"bench twin: key {fingerprint} pinned" in pinned.stderr
    listed = runner.invoke(main, ["keys", "list", "--db", lab])
    assert f"twin\t{fingerprint}\t{public_key()}" in listed.stdout and "bench A custodian" in listed.stdout
    monkeypatch.setenv("RIG_DB", lab)  # the lab database: the run's own journal stays the folder's
    assert verify(str(copy)).exit_code == 0
    # Another key pinned for the bench instead: the run no longer verifies.
    with sqlite3.connect(tmp_path / "lab.sqlite") as conn:
        conn.execute("UPDATE bench_keys SET public_key = ?", (sm2_generate_keypair().public_hex,))
    refused = verify(str(copy))
    assert refused.exit_code == 1 and "not one of bench twin's pinned keys" in refused.stdout
    no_db = runner.invoke(main, ["keys", "list"], env={"RIG_DB": ""})
    assert no_db.exit_code == 2 and "--db" in no_db.stderr


def _sql(folder: Path, statement: str, *params: Any) -> None:
    with sqlite3.connect(folder / "journal.sqlite") as conn:
        conn.execute(statement, params)


def test_editing_a_value_in_the_journal_is_found_and_named(copy: Path) -> None:
    _sql(copy, "UPDATE records SET value = value + 0.5 WHERE seq = 3")
    result = verify(str(copy))
    assert result.exit_code == 1
    assert "ALTERED journal record 3 (testplans/smoke/test_bench.py::test_source_reaches_set_point" in result.stdout
    assert "ALTERED journal record 4" not in result.stdout, "only the edited record is named"
    assert "ALTERED results.json" not in result.stdout, "results.json still holds the recorded value"
    assert "results.json holds record 3 as recorded" in result.stdout


def test_editing_a_value_in_results_json_is_found_and_named(copy: Path) -> None:
    results = json.loads((copy / "results.json").read_text())
    edited = results["records"][1]
    edited["value"] = 0.5
    (copy / "results.json").write_text(json.dumps(results, indent=2))
    result = verify(str(copy))
    assert result.exit_code == 1
    assert f"ALTERED results.json record {edited['seq']} ({edited['test']}" in result.stdout
    assert "value 0.5 (journal:" in result.stdout
    assert "journal record(s): SM3 chain intact" in result.stdout, "the journal itself is intact"


def test_editing_the_traffic_attachment_is_found_and_named(copy: Path) -> None:
    traffic = copy / "traffic.log"
    traffic.write_text(traffic.read_text().replace("SOUR:VOLT 220.000", "SOUR:VOLT 230.000", 1))
    result = verify(str(copy))
    assert result.exit_code == 1
    assert "ALTERED attachment traffic.log: SM3" in result.stdout
    assert "records" not in [line.split()[1] for line in result.stdout.splitlines() if "ALTERED" in line]


def test_flipping_an_item_outcome_is_found(copy: Path) -> None:
    _sql(copy, "UPDATE items SET outcome = 'failed' WHERE nodeid LIKE '%test_meter_emits_pulses%'")
    result = verify(str(copy))
    assert result.exit_code == 1
    assert "ALTERED journal item testplans/smoke/test_bench.py::test_meter_emits_pulses[P1]" in result.stdout


def test_rewriting_a_record_with_a_fresh_hash_is_caught(copy: Path) -> None:
    """Someone who knows the chain recomputes the edited record's hash: the next link and the signature catch it."""
    journal = Journal.in_folder(copy, create=False)
    run_id = copy.name
    stored = journal.stored_records(run_id)
    journal.close()
    target = stored[2]
    body = target.body() | {"value": 999.0}
    forged = record_digest(stored[1].hash, body)
    _sql(copy, "UPDATE records SET value = 999.0, hash = ? WHERE seq = 3", forged)
    result = verify(str(copy))
    assert result.exit_code == 1
    assert "ALTERED journal record 4" in result.stdout, "record 4 no longer chains to record 3"
    assert "differs from the head" not in result.stdout, "the head record is intact: only the link to it broke"
    assert "ALTERED results.json record 3" in result.stdout


def test_rechaining_every_record_after_an_edit_is_caught_at_the_signed_head(copy: Path) -> None:
    """Someone recomputes every hash from the edited record on: the chain is whole, the signed head is not."""
    journal = Journal.in_folder(copy, create=False)
    stored = journal.stored_records(copy.name)
    journal.close()
    previous = stored[1].hash
    for s in stored[2:]:
        body = s.body() | ({"value": 999.0} if s.seq == 3 else {})
        previous = record_digest(previous, body)
        _sql(copy, "UPDATE records SET value = ?, hash = ? WHERE seq = ?", body["value"], previous, s.seq)
    result = verify(str(copy))
    assert result.exit_code == 1
    assert "SM3 chain intact" in result.stdout, "every link was recomputed"
    assert f"ALTERED journal records: record {len(stored)}'s chain hash differs from the head session 0 signed" \
        in result.stdout


def test_a_deleted_record_is_found(copy: Path) -> None:
    _sql(copy, "DELETE FROM records WHERE seq = 2")
    result = verify(str(copy))
    assert result.exit_code == 1
    assert "ALTERED journal record 2: missing" in result.stdout


def test_key_material_never_leaves_the_key_file(signed_run: dict[str, Any]) -> None:
    needles = [PRIVATE_HEX.encode(), PRIVATE_HEX.upper().encode(), bytes.fromhex(PRIVATE_HEX)]
    for path in signed_run["folder"].rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(n in data for n in needles), f"key material in {path.name}"
    proc = signed_run["proc"]
    assert PRIVATE_HEX not in proc.stdout + proc.stderr
    meta = json.loads((signed_run["folder"] / "results.json").read_text())
    assert meta["sessions"][0]["key_kind"] == "bench"


def test_the_twin_signs_with_a_throwaway_key_stored_with_the_run(tmp_path: Path) -> None:
    from rig.integrity import throwaway_signer
    from rig.integrity.seal import seal_session, sign_session
    from rig.integrity.verify import verify_run
    from rig.results import Record

    journal = Journal(f"sqlite:///{tmp_path / 'j.sqlite'}")
    journal.start_run("r1", "twin", {"bench": {"name": "twin"}})
    session = journal.start_session("r1", {})
    journal.add("r1", Record("t::a", "P1", "q", 1.0, "V", 0.0, 2.0, "pass", 0.0), session)
    signer = throwaway_signer()
    sign_session(journal, "r1", session, signer)
    (row,) = journal.sessions("r1")
    assert row.public_key == signer.public_hex and row.key_kind == "throwaway"
    assert "not sealed after session 0 signed" in verify_run(journal, "r1").text(), "reports come after the manifest"
    seal_session(journal, "r1", session, tmp_path, signer)
    checked = verify_run(journal, "r1")
    assert "throwaway key" in checked.text() and checked.ok and not checked.pinned and checked.exit_code == 3
    assert genesis("r1") != genesis("r2"), "the chain is bound to its run id"


def test_logged_transport_changes_nothing_and_logs_everything(tmp_path: Path) -> None:
    path = tmp_path / "traffic.log"
    log = TrafficLog(path.open("w"), secrets=[bytes.fromhex(PRIVATE_HEX)])
    inner = ScriptedTransport([("*IDN?", "ACME,X,1,2"), ("OUTP OFF", None), (f"KEY {PRIVATE_HEX}", None),
                               ("BAD?", "x")], resource="TCPIP::1.2.3.4::5025::SOCKET")
    transport = LoggedTransport(inner, log)
    log.attach_clock(lambda: 12.5)
    transport.open()
    assert transport.query("*IDN?") == "ACME,X,1,2"
    transport.write("OUTP OFF")
    transport.write(f"KEY {PRIVATE_HEX}")
    with pytest.raises(AssertionError):
        transport.query("NOT IN SCRIPT")
    transport.close()
    log.data("ASRL/dev/ttyUSB0::INSTR", ">", b"\x68" + bytes.fromhex(PRIVATE_HEX) + b"\x16")
    log.close()
    assert inner.sent == ["*IDN?", "OUTP OFF", f"KEY {PRIVATE_HEX}", "NOT IN SCRIPT"], "messages pass unchanged"
    lines = path.read_text().splitlines()
    assert [line.split(" ", 4)[3:] for line in lines[1:4]] == [[">", "*IDN?"], ["<", "ACME,X,1,2"], [">", "OUTP OFF"]]
    assert lines[1].startswith("12.500000 ") and "TCPIP::1.2.3.4::5025::SOCKET" in lines[1]
    assert PRIVATE_HEX not in path.read_text() and "<redacted" in lines[4]
    assert lines[-3].split(" ", 4)[3] == "!", "a failed exchange is logged too"
    assert lines[-1].endswith("<redacted: the message held key material>"), "byte streams are redacted too"


def test_verify_bad_input_exits_2_naming_it(tmp_path: Path) -> None:
    missing = verify("no-such-run", "--reports", str(tmp_path))
    assert missing.exit_code == 2 and "no journal" in missing.stderr
    corrupt = tmp_path / "corrupt-run"
    corrupt.mkdir()
    (corrupt / "journal.sqlite").write_bytes(b"this is not a database" * 100)
    broken = verify(str(corrupt))
    assert broken.exit_code == 2 and "journal.sqlite" in broken.stderr
    wrong = verify("some-run", "--db", "sqlite:///" + str(tmp_path / "nothing.sqlite"))
    assert wrong.exit_code == 2 and "no results journal" in wrong.stderr
    for result in (missing, broken, wrong):
        assert result.exception is None or isinstance(result.exception, SystemExit)
