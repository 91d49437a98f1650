"""Certificates from the journal: one page set per meter with identity, bench and instruments (IDN,
calibration), conditions, every test with clause, limits, values, uncertainty and verdict, error
curves and the overall verdict; HTML self-contained, PDF through reportlab. The calibration gate."""

from __future__ import annotations

import html
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rig.certificate import lines as cert_lines
from rig.certificate.checks import CHECKS, INCOMPLETE, Scope, verdict
from rig.cli import main
from rig.results import BENCH_FAULT, FAIL, PASS, ItemOutcome, Record, StoredRecord

RIG = [sys.executable, "-m", "rig.cli"]
RACK = str(Path(__file__).resolve().parent.parent / "benches" / "twin-rack.yaml")


def rig(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RIG, *args], capture_output=True, text=True, timeout=180)


def report(*args: str) -> Any:
    return CliRunner().invoke(main, ["report", *args])


@pytest.fixture(scope="module")
def accuracy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The accuracy and smoke plans on the one-position twin."""
    reports = tmp_path_factory.mktemp("cert") / "reports"
    proc = rig("run", "testplans/smoke", "testplans/accuracy", "--reports", str(reports))
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Journal alone: the certificate must not need anything else of the folder but the attachments.
    for name in ("report.html", "junit.xml"):
        (reports / "latest" / name).unlink()
    return (reports / "latest").resolve()


@pytest.fixture(scope="module")
def rack_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke plan on the six-position rack, position P2 with a meter whose pulse rate is 30 % off."""
    reports = tmp_path_factory.mktemp("rack") / "reports"
    proc = rig("run", "testplans/smoke", "--bench", RACK, "--reports", str(reports),
               "--set", "twin.positions.1.metering.constant_error_pct=30", "--ambient", "22.4,51")
    assert proc.returncode == 1, proc.stderr[-3000:]
    return (reports / "latest").resolve()


def test_html_certificate_states_what_a_lab_must_state(accuracy_run: Path) -> None:
    result = report(str(accuracy_run))
    assert result.exit_code == 0, result.output
    text = (accuracy_run / "certificate.html").read_text()
    results = json.loads((accuracy_run / "results.json").read_text())
    for needle in ("meter 000000000001", "220 V 5(60) A 1200 imp/kWh class 1", "1 (classic scheme)",
                   "Meter HIL Twin,PhantomSource PS-1,TW0001,0.1", "Meter HIL Twin,ReferenceStandard RS-3,TW0002,0.1",
                   "TWIN-CAL-0001, due 2099-12-31", "23 °C, 45 % RH (answered by twin)",
                   "IEC 62053-21:2003 Table 6", "coverage factor k = 2", "Decision rule",
                   "Overall verdict for this meter: <span class='pass'>PASS</span>", "SM2 throwaway key",
                   # The fixture removed the sealed report.html and junit.xml: the certificate says so.
                   f"Verification at issue</th><td>run {accuracy_run.name}: ALTERED"):
        assert needle in text, needle
    for rec in results["records"]:
        assert rec["quantity"] in text, rec["quantity"]
    # The stated uncertainty (k = 2) and TUR of every basic-error point.
    points = [r for r in results["records"] if "uncertainty_pct" in (r["detail"] or {})]
    assert len(points) == 17
    # Each basic-error record names its load point itself: the curves are labelled from it, not from the wording.
    assert all(f"error at {r['detail']['load_point']} PF " in r["quantity"] for r in points)
    for u in {r["detail"]["uncertainty_pct"] for r in points}:
        expected = sum(1 for r in points if r["detail"]["uncertainty_pct"] == u)
        assert text.count(f"<td class='num'>{u:g} %</td>") == expected
    for tur in {r["detail"]["tur"] for r in points}:
        assert f"<td class='num'>{tur:.1f}</td>" in text
    assert "data:image/png;base64," in text, "the error curves are embedded"
    assert not re.search(r"""(src|href)=['"](https?:)?//""", text), "self-contained: nothing loaded from elsewhere"


def test_pdf_certificate_one_page_set_per_meter_with_verdicts(rack_run: Path) -> None:
    from pypdf import PdfReader

    result = report(str(rack_run), "--format", "pdf")
    assert result.exit_code == 0, result.output
    assert "overall verdict: fail" in result.stderr
    reader = PdfReader(io.BytesIO((rack_run / "certificate.pdf").read_bytes()))
    pages = [page.extract_text() for page in reader.pages]
    starts = [i for i, page in enumerate(pages) if "Test certificate RIG-" in page]
    assert len(starts) == 6, "one page set per meter of the rack"
    verdicts = {}
    for n, start in enumerate(starts):
        sheet = " ".join(pages[start:(starts[n + 1] if n + 1 < len(starts) else None)])
        address = re.search(r"— meter\s+(\d{12})", sheet)
        verdict = re.search(r"Overall verdict for this meter: (\w+)", sheet)
        assert address and verdict
        verdicts[address.group(1)] = verdict.group(1)
        assert "22.4 °C, 51 % RH (given on the command line)" in sheet
        assert "Meter HIL Twin,ReferenceStandard" in sheet and "TWIN-CAL-0001" in sheet
    failing = json.loads((rack_run / "results.json").read_text())["positions"][1]["address"]
    assert verdicts.pop(failing) == "FAIL"
    assert set(verdicts.values()) == {"PASS"}


def test_expired_calibration_refuses_to_start(tmp_path: Path) -> None:
    expired = "twin.reference.calibration_due=2020-01-01"
    proc = rig("run", "testplans/smoke", "--reports", str(tmp_path), "--set", expired)
    assert proc.returncode == 2
    assert "calibration TWIN-CAL-0001 expired on 2020-01-01" in proc.stderr
    assert "--accept-expired-calibration" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "latest").exists(), "a refused run does not become reports/latest"
    (folder,) = list(tmp_path.iterdir())
    results = json.loads((folder / "results.json").read_text())
    assert results["verdict"] == "refused" and results["records"] == []


def test_accepted_expired_calibration_is_stated_on_the_certificate(tmp_path: Path) -> None:
    reason = "cross-checked against the lab's second standard on 2026-11-20"
    proc = rig("run", "testplans/smoke", "--reports", str(tmp_path),
               "--set", "twin.reference.calibration_due=2020-01-01", "--accept-expired-calibration", reason)
    assert proc.returncode == 1, proc.stderr[-2000:]  # the smoke plan's own calibration check still fails
    folder = (tmp_path / "latest").resolve()
    assert report(str(folder)).exit_code == 0
    text = (folder / "certificate.html").read_text()
    assert "had expired on 2020-01-01" in text and html.escape(reason) in text
    assert "(EXPIRED, accepted by the operator)" in text


def test_report_bad_input_exits_2(tmp_path: Path, accuracy_run: Path) -> None:
    missing = report("no-such-run", "--reports", str(tmp_path))
    assert missing.exit_code == 2 and "no journal" in missing.stderr
    copy = tmp_path / "copy"
    shutil.copytree(accuracy_run, copy)
    (copy / "journal.sqlite").write_bytes(b"garbage" * 500)
    for suffix in ("-wal", "-shm"):
        (copy / f"journal.sqlite{suffix}").unlink(missing_ok=True)
    corrupt = report(str(copy))
    assert corrupt.exit_code == 2 and "journal.sqlite" in corrupt.stderr


def _basic_error(quantity: str, **detail: Any) -> StoredRecord:
    record = Record("plan.py::test_point", "P1", quantity, 0.2, "%", -1.0, 1.0, PASS, 1.0, detail)
    return StoredRecord(record, "r", 1, 0, "2026-01-01T00:00:00+00:00", "", None)


def test_curve_points_are_labelled_by_the_record_not_by_its_wording() -> None:
    curves = cert_lines.error_curves([
        _basic_error("basic error, cos phi 1, base current", load_point="Ib", current_a=5.0, pf="1"),
        _basic_error("error at 0.05Ib PF 1", current_a=0.25, pf="1"),  # no load_point: labelled by its current
        _basic_error("no-load pulses", current_a=0.0),  # no PF: not a point of a curve
    ])
    assert [(c.label, c.current_a) for c in curves["1"]] == [("Ib", 5.0), ("0.25 A", 0.25)]


def _line(verdict_: str) -> cert_lines.TestLine:
    return cert_lines.TestLine("test_x", "", "q", 1.0, "%", -1.0, 1.0, verdict_, "clause", False, None, None, 0)


def _item(outcome: str) -> ItemOutcome:
    return ItemOutcome("plan.py::test_x", 0, "P1", outcome, 1.0, "2026-01-01T00:00:00+00:00", None, None)


@pytest.mark.parametrize(("scope", "expected"), [
    (Scope([_line(PASS)], [_item("passed")], []), PASS),
    (Scope([_line(FAIL)], [_item("failed")], []), FAIL),
    (Scope([_line(PASS)], [_item("error")], []), FAIL),
    (Scope([_line(PASS)], [_item(BENCH_FAULT)], []), INCOMPLETE),
    (Scope([_line(PASS)], [], ["plan.py::test_x"]), INCOMPLETE),
    (Scope([_line(FAIL)], [], ["plan.py::test_x"]), FAIL),  # fail outranks incomplete
    (Scope([_line(PASS)], [_item("passed")], [], bench=FAIL), FAIL),  # the bench-wide checks hold for every meter
    (Scope([_line(PASS)], [_item("passed")], [], bench=INCOMPLETE), INCOMPLETE),
    (Scope([_line(PASS)], [_item("passed")], [], stopped="session 0 was killed"), INCOMPLETE),
])
def test_a_meter_verdict_is_the_worst_check_that_does_not_hold(scope: Scope, expected: str) -> None:
    assert verdict(scope) == expected
    failing = [c.claim for c in CHECKS if not c.holds(scope)]
    assert bool(failing) == (expected != PASS), failing
