"""Every security knob is caught by the security plans, the healthy twin passes them, and no key
material shows anywhere a run leaves something: run folder (report, results.json, journal, traffic log,
JUnit, run.json) and console output.

Two real `rig run` processes, started together: a knob rack (one position per knob set outside its spec,
plus a healthy one) running only each knob's catching tests, and the default one-position bench running
the whole plan. The keys looked for: the twin's master key, every meter key, and the session key of every
identity authentication found in the traffic logs (derived here from the emulation's definition)."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from drivers.crypto import pad_iso9797_m2, sm4_ecb_encrypt
from drivers.dlt645 import Dlt645Frame, FrameReader, Function
from rig.cli import iter_knobs
from rig.config import BENCHES_DIR, SecurityKnobs, load_bench
from rig.mutate import position_outcomes
from rig.twin.esam import twin_master_key
from testplans.mutations import MUTATIONS, SECURITY_MUTATIONS, Mutation

RACK = BENCHES_DIR / "twin-rack.yaml"
HEALTHY = "healthy"
SEED = 3


def _name(mutation: Mutation) -> str:
    return mutation.knob.rsplit(".", 1)[-1]


def _knob_bench(path: Path) -> list[tuple[str, Mutation | None]]:
    rows: list[tuple[str, Mutation | None]] = [(HEALTHY, None), *((_name(m), m) for m in SECURITY_MUTATIONS)]
    meter = load_bench(RACK).meter
    data = yaml.safe_load(RACK.read_text())
    data["name"] = "twin-security-knobs"
    data["positions"] = [{"name": name, "address": f"{i + 1:012d}", "serial": "twin", "pulse_channel": i + 1}
                         for i, (name, _) in enumerate(rows)]
    overrides = {i: {"security": {_name(m): bool(m.outside(meter))}} for i, (_, m) in enumerate(rows) if m}
    data["twin"] = {"seed": SEED, "reference": {"channels": len(rows)}, "positions": overrides}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return rows


def _selection(rows: list[tuple[str, Mutation | None]]) -> str:
    terms = []
    for name, mutation in rows:
        if mutation is None:
            terms.append(name)
        else:
            terms.append(f"({name} and ({' or '.join(c.split('::')[-1] for c in mutation.catches)}))")
    return " or ".join(terms)


def _rig_run(reports: Path, *args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", "testplans/security", "--reports", str(reports),
                           *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    folder = (reports / "latest").resolve()
    results: dict[str, Any] = json.loads((folder / "results.json").read_text())
    return {"results": results, "exit_code": proc.returncode, "folder": folder, "output": proc.stdout + proc.stderr}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("security-knobs")
    rows = _knob_bench(root / "knobs.yaml")
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        knobs = pool.submit(_rig_run, root / "knobs", "--bench", str(root / "knobs.yaml"), "--",
                            f"-k{_selection(rows)}")
        healthy = pool.submit(_rig_run, root / "healthy", "--set", f"twin.seed={SEED}")
        return {"rows": rows, "knobs": knobs.result(), "healthy": healthy.result()}


def _outcomes(results: dict[str, Any], position: str) -> dict[str, str]:
    # the knob rack has no BLE: tests/ble runs those items
    return position_outcomes(results, position, exclude_params=("ble",))


def test_every_security_knob_has_a_mutation_row_and_is_listed() -> None:
    knobs = {key for key, *_ in iter_knobs() if key.startswith("twin.meter.security.")}
    names = {"mac_not_checked", "replay_accepted", "session_never_expires", "lockout_disabled",
             "dispersion_not_checked", "deadline_not_checked", "weak_random"}
    assert knobs == {f"twin.meter.security.{name}" for name in names} == {
        f"twin.meter.security.{name}" for name in SecurityKnobs.model_fields}
    assert sorted(m.knob for m in SECURITY_MUTATIONS) == sorted(knobs)
    assert set(SECURITY_MUTATIONS) <= set(MUTATIONS)
    plans = Path(__file__).resolve().parents[2]
    for mutation in SECURITY_MUTATIONS:
        for test in mutation.catches:
            path, function = test.split("::")
            assert f"def {function}(" in (plans / path).read_text(), test


@pytest.mark.parametrize("mutation", SECURITY_MUTATIONS, ids=[_name(m) for m in SECURITY_MUTATIONS])
def test_knob_outside_fails_its_catching_tests(runs: dict[str, Any], mutation: Mutation) -> None:
    outcomes = _outcomes(runs["knobs"]["results"], _name(mutation))
    assert outcomes, "no test ran on the position"
    for test in mutation.catches:
        items = {k: v for k, v in outcomes.items() if k.startswith(test + "[")}
        assert items and "failed" in items.values(), (mutation.why, test, outcomes)


def test_healthy_twin_passes_the_whole_plan(runs: dict[str, Any]) -> None:
    healthy = _outcomes(runs["knobs"]["results"], HEALTHY)
    assert len(healthy) >= 19 and set(healthy.values()) == {"passed"}, healthy
    single = runs["healthy"]
    assert single["exit_code"] == 0, [t for t in single["results"]["tests"] if t["outcome"] != "passed"]
    assert len(single["results"]["tests"]) >= 19


def _session_keys(traffic: Path, master: bytes) -> tuple[set[bytes], int]:
    """Meter and session keys of every identity authentication answered in a traffic log."""
    readers: dict[tuple[str, str], FrameReader] = {}
    pending: dict[str, Dlt645Frame] = {}
    keys: set[bytes] = set()
    sessions = 0
    for line in traffic.read_text().splitlines():
        parts = line.split(" ", 4)
        if len(parts) < 5 or not parts[2].startswith("rfc2217://") or parts[3] not in "<>":
            continue
        reader = readers.setdefault((parts[2], parts[3]), FrameReader())
        for frame in reader.feed(bytes.fromhex(parts[4])):
            if not isinstance(frame, Dlt645Frame) or frame.function_code != Function.SECURITY:
                continue
            if not frame.is_reply and frame.data[:4] == bytes.fromhex("ff000007") and len(frame.data) == 32:
                pending[parts[2]] = frame
            elif frame.control == 0x83 and len(frame.data) == 16 and parts[2] in pending:
                request = pending.pop(parts[2])
                d, random1, random2 = request.data[24:32][::-1], request.data[16:24][::-1], frame.data[4:8][::-1]
                meter_key = sm4_ecb_encrypt(master, d + bytes(b ^ 0xFF for b in d))
                keys |= {meter_key, sm4_ecb_encrypt(meter_key, pad_iso9797_m2(random1 + random2))}
                sessions += 1
    return keys, sessions


def _shows(data: bytes, key: bytes) -> bool:
    lowered = data.lower()
    return key in data or key.hex().encode() in lowered or key.hex(" ").encode() in lowered


def test_no_key_material_in_run_folders_or_output(runs: dict[str, Any]) -> None:
    master = twin_master_key(SEED)
    total = 0
    for run in (runs["knobs"], runs["healthy"]):
        folder: Path = run["folder"]
        keys, sessions = _session_keys(folder / "traffic.log", master)
        total += sessions
        keys.add(master)
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert {"report.html", "results.json", "journal.sqlite", "traffic.log"} <= {p.name for p in files}
        for path in files:
            content = path.read_bytes()
            assert not any(_shows(content, key) for key in keys), f"key material in {path}"
        assert not any(_shows(run["output"].encode(), key) for key in keys), "key material in the console output"
    assert total >= 40, f"only {total} authentications found in the traffic logs: the check would prove little"


def test_the_leak_checks_find_planted_key_material(tmp_path: Path) -> None:
    """The checks above and the plan's own check can fail: planted keys are found."""
    from drivers.dlt645 import encode
    from drivers.security import EsamSession, SoftwareKeySource
    from testplans.security.helpers import key_material_found

    master = twin_master_key(SEED)
    keys = SoftwareKeySource(master)
    session = EsamSession("000000000001", keys)
    request = session.authentication_request()
    reply = Dlt645Frame.reply("000000000001", Function.SECURITY, request.frame.data[:4] + bytes(range(12)))
    session.handle_reply(request, reply, 0.0)
    url = "rfc2217://127.0.0.1:1"
    traffic = tmp_path / "traffic.log"
    traffic.write_text(f"1.0 T {url} > {encode(request.frame).hex(' ')}\n1.2 T {url} < {encode(reply).hex(' ')}\n")
    derived, sessions = _session_keys(traffic, master)
    assert sessions == 1 and all(keys.appears_in(key) for key in derived) and len(derived) == 2
    assert key_material_found(keys, [], tmp_path) == []
    for key in derived:
        leaked = tmp_path / "report.html"
        leaked.write_text(f"<td>{key.hex(' ').upper()}</td>")
        assert key_material_found(keys, [], tmp_path) == [str(leaked)] and _shows(leaked.read_bytes(), key)
