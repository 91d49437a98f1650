"""The shared lab database on a real PostgreSQL server (`.ci/run` starts one and sets RIG_TEST_PG_URL):
two bench processes write it at once without conflict, `rig history` reads across them, and a run
journaled there verifies and gets its certificate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from rig.cli import main
from rig.results import Journal

RIG = [sys.executable, "-m", "rig.cli"]
ADMIN_URL = os.environ.get("RIG_TEST_PG_URL")

if not ADMIN_URL:
    if os.environ.get("CI"):
        pytest.fail("CI must provide a PostgreSQL server: .ci/run sets RIG_TEST_PG_URL", pytrace=False)
    pytest.skip("no PostgreSQL server: set RIG_TEST_PG_URL=postgresql+psycopg://USER@127.0.0.1:PORT/DB "
                "(`. .ci/postgres.sh && rig_pg_start` starts one)", allow_module_level=True)


@pytest.fixture(scope="module")
def lab_db() -> Iterator[str]:
    """A fresh database on the server for this module, dropped afterwards."""
    assert ADMIN_URL is not None
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"rig_lab_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def two_benches(lab_db: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    """`rig run` on two twins (two benches, different meters) started together against the same database."""
    base = tmp_path_factory.mktemp("pg")
    procs = {}
    for bench, address in (("lab-a", "000000000101"), ("lab-b", "000000000202")):
        procs[bench] = (subprocess.Popen(
            [*RIG, "run", "testplans/smoke", "--reports", str(base / bench), "--set", f"name={bench}",
             "--set", f"positions.0.address='{address}'"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "RIG_DB": lab_db}),
            address)
    out = {}
    for bench, (proc, address) in procs.items():
        _stdout, stderr = proc.communicate(timeout=180)
        out[bench] = {"code": proc.returncode, "stderr": stderr, "reports": base / bench, "address": address,
                      "folder": (base / bench / "latest").resolve()}
    return out


def test_two_bench_processes_write_one_database_at_once(two_benches: dict[str, dict[str, object]],
                                                        lab_db: str) -> None:
    for bench, run in two_benches.items():
        assert run["code"] == 0, f"{bench}: {str(run['stderr'])[-2000:]}"
        assert not (Path(str(run["folder"])) / "journal.sqlite").exists(), "journaled to PostgreSQL, not SQLite"
    journal = Journal(lab_db, create=False)
    try:
        runs = journal.runs()
        assert sorted(r.bench for r in runs) == ["lab-a", "lab-b"]
        for run in runs:
            stored = journal.stored_records(run.run_id)
            assert [s.seq for s in stored] == list(range(1, len(stored) + 1)) and len(stored) == 5
            results = json.loads((Path(str(two_benches[run.bench]["folder"])) / "results.json").read_text())
            assert [r["hash"] for r in results["records"]] == [s.hash for s in stored]
            assert results["journal"].startswith("postgresql+psycopg://")
    finally:
        journal.close()


def test_history_reads_across_both_benches(two_benches: dict[str, dict[str, object]], lab_db: str) -> None:
    result = CliRunner().invoke(main, ["history", "--db", lab_db, "--test", "test_meter_emits_pulses"])
    assert result.exit_code == 0, result.stderr
    assert "2 series, 2 run(s), 2 bench(es)" in result.stdout
    for run in two_benches.values():
        assert f"{run['address']} test_meter_emits_pulses: pulses in ten nominal periods" in result.stdout
    only_a = CliRunner().invoke(main, ["history", "--db", lab_db, "--meter", str(two_benches["lab-a"]["address"]),
                                       "--json"])
    data = json.loads(only_a.stdout)
    assert {p["bench"] for s in data["series"] for p in s["points"]} == {"lab-a"}


def test_runs_in_the_lab_database_verify_and_certify(two_benches: dict[str, dict[str, object]], lab_db: str,
                                                      tmp_path: Path) -> None:
    folder = Path(str(two_benches["lab-b"]["folder"]))
    verified = CliRunner().invoke(main, ["verify", str(folder), "--db", lab_db])
    assert verified.exit_code == 3, verified.stdout  # consistent; the twin's throwaway keys are never pinned
    assert "traffic.log: SM3 matches" in verified.stdout
    out = tmp_path / "cert.html"
    certified = CliRunner().invoke(main, ["report", folder.name, "--db", lab_db, "--out", str(out)])
    assert certified.exit_code == 0, certified.stderr
    assert "000000000202, bench position P1" in out.read_text() and "lab-b" in out.read_text()  # lab-b's meter
    with sa.create_engine(lab_db).begin() as conn:
        conn.execute(sa.text("UPDATE records SET value = value + 1 WHERE seq = 5 AND run_id = :r"),
                     {"r": folder.name})
    altered = CliRunner().invoke(main, ["verify", str(folder), "--db", lab_db])
    assert altered.exit_code == 1 and "ALTERED journal record 5" in altered.stdout
