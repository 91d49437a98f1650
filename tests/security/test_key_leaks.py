"""No key material shows anywhere a run leaves something: run folder (report, results.json, journal, traffic
log, JUnit, run.json) and console output, on the security knob rack and on the default bench running the whole
plan (both runs are the knob harness's: tests/conftest.py, family "security"; tests/test_knobs.py proves the
knobs caught). The keys looked for: the twin's master key, every meter key, and the session key of every
identity authentication found in the traffic logs (derived here from the emulation's definition)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drivers.crypto import pad_iso9797_m2, sm4_ecb_encrypt
from drivers.dlt645 import Dlt645Frame, FrameReader, Function
from rig.twin.esam import twin_master_key


def test_default_bench_passes_the_whole_security_plan(knob_runs: Any) -> None:
    single = knob_runs.get("security", "default")
    assert single.exit_code == 0, [t for t in single.tests if t["outcome"] != "passed"]
    assert len(single.tests) >= 19


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


def test_no_key_material_in_run_folders_or_output(knob_runs: Any) -> None:
    master = twin_master_key(knob_runs.families["security"].seed)
    total = 0
    for run in (knob_runs.get("security"), knob_runs.get("security", "default")):
        folder: Path = run.folder
        keys, sessions = _session_keys(folder / "traffic.log", master)
        total += sessions
        keys.add(master)
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert {"report.html", "results.json", "journal.sqlite", "traffic.log"} <= {p.name for p in files}
        for path in files:
            content = path.read_bytes()
            assert not any(_shows(content, key) for key in keys), f"key material in {path}"
        assert not any(_shows(run.output.encode(), key) for key in keys), "key material in the console output"
    assert total >= 40, f"only {total} authentications found in the traffic logs: the check would prove little"


def test_the_leak_checks_find_planted_key_material(tmp_path: Path) -> None:
    """The checks above and the plan's own check can fail: planted keys are found."""
    from drivers.dlt645 import encode
    from drivers.security import EsamSession, SoftwareKeySource
    from testplans.security.helpers import key_material_found

    master = twin_master_key(3)
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
