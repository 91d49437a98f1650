"""The comms plans against an independent meter: the PyPI `dlt645` package's meter server on one end of a
socat pty pair, the rig on the other (reached through socat's symlink, as a lab names its adapters), the
source and reference the twin's, the bench clock the wall's (a real meter shares the bench).

The meter's address is set the standard way (lowest byte first on the wire). Framing, wake-up preambles,
the address read and write and password writes then conform; what does not is the meter's own doing
(it echoes an abbreviated address and refuses it, answers an undefined data identifier with 'other
error' instead of 'no such data', takes 0x32 rather than the standard's one-hot 0x20 as the word for
9600 bit/s, keeps no running clock), and every such failure must say so wherever a failure is read:
the console, JUnit, report.html and the certificate. Set high byte first (the package's own way), the
meter refuses standard requests and the rig explains the byte order the same way.

socat comes from apt (.ci/run installs it). Without it the test skips, except under CI=true, where it fails.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import shutil
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from drivers.dlt645 import Dlt645Frame, ErrorCode, Function, abnormal_error, encode_di
from drivers.serial_transport import LineSettings, carries_parity, is_pty
from rig.bench import bench_session
from rig.config import load_bench
from rig.procedures import LoadPoint, energise

dlt645 = pytest.importorskip("dlt645")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RIG = [sys.executable, "-m", "rig.cli"]
ADDRESS = "000000000001"
PASSWORD = "02000000"  # the bench file's default write password (level 02)
FORWARD_ENERGY = 0x00010000


def _socat() -> str:
    found = shutil.which("socat")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("socat is not installed: CI must run the independent-meter test (.ci/run installs socat)")
        pytest.skip("socat is not installed (apt-get install socat): the independent meter needs a pty pair")
    return found


@contextlib.contextmanager
def independent_meter(folder: Path, *, high_byte_first: bool = False) -> Iterator[Path]:
    """PyPI dlt645's meter served on one end of a socat pty pair; yields the rig's end (a symlink)."""
    meter_end, rig_end = folder / "ttyMeter", folder / "ttyRig"
    socat = subprocess.Popen([_socat(), f"pty,raw,echo=0,link={meter_end}", f"pty,raw,echo=0,link={rig_end}"],
                             stderr=subprocess.PIPE)
    server = None
    try:
        ready = threading.Event()
        for _ in range(200):
            if meter_end.exists() and rig_end.exists():
                break
            ready.wait(0.025)
        assert rig_end.exists(), "socat made no pty pair"
        server = dlt645.MeterServerService.new_rtu_server(port=str(meter_end), data_bits=8, stop_bits=1,
                                                          baud_rate=2400, parity="N", timeout=1.0)
        wire = bytes.fromhex(ADDRESS)
        server.set_address(wire if high_byte_first else wire[::-1])  # the package keeps wire order
        assert server.set_password(PASSWORD)
        server.set_00(0x00010000, 12.34)
        assert server.server.start(), "the PyPI meter server could not open its pty"
        yield rig_end
    finally:
        if server is not None:
            server.server.stop()
        socat.terminate()
        socat.wait(timeout=10)


def _bench_file(folder: Path, port: Path) -> Path:
    """The embedded bench with the twin's instruments, the meter at `port`, and the wall clock."""
    bench = yaml.safe_load((ROOT / "benches" / "twin.yaml").read_text())
    bench["clock"] = "wall"
    bench["positions"] = [{"address": ADDRESS, "serial": str(port), "pulse_channel": 1}]
    path = folder / "independent.yaml"
    path.write_text(yaml.safe_dump(bench))
    return path


def _run(folder: Path, bench: Path, selection: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    answers = folder / "answers.yaml"
    answers.write_text("meter.connected: yes\n")  # a person mounted it: the gate before energising asks
    reports = folder / "reports"
    proc = subprocess.run([*RIG, "run", "testplans/comms", "--bench", str(bench), "--reports", str(reports),
                           "--ambient", "23,45", "--operator-answers", str(answers), "--", "-k", selection],
                          capture_output=True, text=True, timeout=600, cwd=folder)
    return proc, (reports / "latest").resolve()


def _everywhere(proc: subprocess.CompletedProcess[str], run_dir: Path) -> dict[str, str]:
    """The texts where a reader meets a failure: console, JUnit, report.html, the certificate (rig report)."""
    report = subprocess.run([*RIG, "report", str(run_dir), "--out", str(run_dir / "certificate.html")],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    junit = ET.parse(run_dir / "junit.xml").getroot()
    junit_text = "\n".join(f"{f.get('message', '')}\n{f.text or ''}" for f in junit.iter()
                           if f.tag in ("failure", "error"))
    return {"console": proc.stdout + proc.stderr, "junit.xml": junit_text,
            # pytest-html keeps its rows as escaped HTML inside an escaped JSON attribute: unescape twice
            "report.html": html.unescape(html.unescape((run_dir / "report.html").read_text())),
            "certificate": html.unescape((run_dir / "certificate.html").read_text())}


def _failures(run_dir: Path) -> list[dict[str, Any]]:
    document = json.loads((run_dir / "results.json").read_text())
    return [r for r in document["records"] if r["verdict"] == "fail"]


# What the PyPI meter really does against DL/T 645-2007, as the rig must name it (one per failing record).
DEVIATIONS = {
    "abbreviated address": "the meter echoes the abbreviated address AAAAAAAAAA01 instead of its own",
    "undefined DI": "(the standard's: 0x02 NO_DATA): the meter answered 0x01 (OTHER)",
    "baud word": "with the standard's baud word 0x20 taken: the meter refused it: error word 0x08",
    "no date": "meter clock reads as a calendar time",
    "clock not synced": "s (the sync was not taken)",
    "replies too soon": "sooner than the 20 ms allowed",
}


def test_independent_meter_conforms_and_its_deviations_are_named_everywhere(tmp_path: Path) -> None:
    with independent_meter(tmp_path) as port:
        assert port.is_symlink() and is_pty(str(port)), "a pty is a pty under any name"
        proc, run_dir = _run(tmp_path, _bench_file(tmp_path, port), "framing or clock")
    assert proc.returncode == 1, proc.stderr  # the meter fails; the run completes
    document = json.loads((run_dir / "results.json").read_text())
    assert document["verdict"] == "fail" and not document.get("stopped_because")
    outcomes = {t["test"].split("::")[1]: t["outcome"] for t in document["tests"]}
    assert not [t for t, o in outcomes.items() if o in ("error", "bench-fault", "interrupted")], outcomes
    # What the rig did right against a second implementation: nothing here may fail.
    for passing in ("test_preamble_handling[uart-P1]", "test_write_address[uart-P1]",
                    "test_write_with_password[uart-P1]"):
        assert outcomes[passing] == "passed", (passing, [r["quantity"] for r in _failures(run_dir)])
    assert outcomes["test_line_setting_mismatch_gives_no_reply[uart-P1-baud]"] == "skipped", "a pty has no rate"
    failures = _failures(run_dir)
    texts = _everywhere(proc, run_dir)
    for deviation, phrase in DEVIATIONS.items():
        named = [r for r in failures if phrase in r["quantity"]]
        assert named, f"{deviation}: no failing record says {phrase!r}: {[r['quantity'] for r in failures]}"
        for where, text in texts.items():
            assert phrase in text, f"{deviation} ({phrase!r}) is not in {where}"
    unexplained = [r["quantity"] for r in failures
                   if not any(p in r["quantity"] for p in DEVIATIONS.values())]
    assert not unexplained, f"failures that name no deviation of the meter: {unexplained}"


def test_a_meter_that_sends_its_address_high_byte_first_is_explained_everywhere(tmp_path: Path) -> None:
    with independent_meter(tmp_path, high_byte_first=True) as port:
        proc, run_dir = _run(tmp_path, _bench_file(tmp_path, port), "wildcard or conform or preamble")
    assert proc.returncode == 1, proc.stderr
    phrase = "the meter sends its address high byte first (read 010000000000; the standard sends 000000000001"
    failures = _failures(run_dir)
    assert [r for r in failures if phrase in r["quantity"]]
    # It refuses every request addressed the standard way: a refusal is no sign the wake-up bytes were understood.
    refused = [r for r in failures if r["test"].endswith("test_preamble_handling[uart-P1]")]
    assert len(refused) == 5 and all("the meter refused it: error word 0x01 (OTHER)" in r["quantity"] for r in refused)
    for where, text in _everywhere(proc, run_dir).items():
        assert phrase in text, f"the byte order explanation is not in {where}"


def test_the_twins_address_order_knob_behaves_like_such_a_meter() -> None:
    """`twin.meter.uart.address_high_byte_first`: the twin's meter keeps its address high byte first both
    ways, as the PyPI meter above does: a request addressed the standard way is refused ('other error',
    the field echoed as it came), one addressed high byte first is answered, the wildcard read-address
    shows the address reversed."""
    config = load_bench(overrides=["twin.meter.uart.address_high_byte_first=true"])
    reversed_address = "".join(ADDRESS[i:i + 2] for i in range(10, -1, -2))
    with bench_session(config) as bench:
        meter = bench.meter
        energise(bench, LoadPoint(voltage_v=meter.un_v, current_a=0.0), settle_s=meter.start_up_time_s + 1.0)
        link = bench.positions[0].link
        assert link is not None
        standard = link.exchange(Dlt645Frame.request(ADDRESS, Function.READ, encode_di(FORWARD_ENERGY)))
        assert standard.reply is not None and standard.reply.is_abnormal
        assert abnormal_error(standard.reply) == ErrorCode.OTHER and standard.reply.address == ADDRESS
        theirs = link.exchange(Dlt645Frame.request(reversed_address, Function.READ, encode_di(FORWARD_ENERGY)))
        assert theirs.reply is not None and not theirs.reply.is_abnormal
        assert theirs.reply.address == reversed_address
        assert link.read_address() == reversed_address


def test_a_pty_is_recognised_by_what_it_is_not_by_its_name(tmp_path: Path) -> None:
    """socat's `link=` names a pty anywhere: parity (which Linux refuses on a pty) is still left off."""
    master, slave = os.openpty()
    try:
        alias = tmp_path / "ttyRig"
        alias.symlink_to(os.ttyname(slave))
        plain = tmp_path / "not-a-tty"
        plain.write_text("")
        assert is_pty(os.ttyname(slave)) and is_pty(str(alias))
        assert not is_pty(str(plain)) and not is_pty("rfc2217://127.0.0.1:4000") and not is_pty(str(tmp_path / "gone"))
        assert not carries_parity(str(alias)) and carries_parity("rfc2217://127.0.0.1:4000")
        assert LineSettings(2400, 8, "E", 1).pyserial(str(alias))["parity"] == "N"
    finally:
        os.close(master)
        os.close(slave)
