"""Certificates from the journal: one page set per meter with identity, bench and instruments (IDN,
calibration), conditions, every test with clause, limits, values, uncertainty and verdict, error
curves and the overall verdict; HTML self-contained, PDF through reportlab. The calibration gate."""

from __future__ import annotations

import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from rig.certificate import certificate_data, layout, render_html, render_pdf
from rig.certificate import lines as cert_lines
from rig.certificate.checks import CHECKS, INCOMPLETE, Scope, verdict
from rig.certificate.numbers import RIG_SPECIFICATION, cited_clause, format_error, format_value, rounding_interval_pct
from rig.cli import main
from rig.cli.common import locate
from rig.config import ConfigError, load_bench
from rig.config.lab import EXAMPLE_PROFILE, lab_meta
from rig.results import BENCH_FAULT, FAIL, PASS, ItemOutcome, Record, StoredRecord

RIG = [sys.executable, "-m", "rig.cli"]
RACK = str(Path(__file__).resolve().parent.parent / "benches" / "twin-rack.yaml")


def rig(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RIG, *args], capture_output=True, text=True, timeout=180)


def report(*args: str) -> Any:
    return CliRunner().invoke(main, ["report", *args])


KNOB = "twin.positions.1.metering.constant_error_pct=1.3"  # P2's pulses 1.3 % fast: outside class 1's ±1 %
PLANS = ("testplans/smoke", "testplans/accuracy/test_accuracy.py::test_basic_error",
         "testplans/registers/test_identity.py::test_identity_items")


@pytest.fixture(scope="module")
def rack_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run for the certificate tests: smoke, basic error and the identity items on the six-position rack
    (P2's meter 1.3 % fast), the ambient given; then the certificate as HTML and PDF from the journal."""
    reports = tmp_path_factory.mktemp("rack") / "reports"
    proc = rig("run", *PLANS, "--bench", RACK, "--reports", str(reports), "--set", KNOB, "--ambient", "22.4,51")
    assert proc.returncode == 1, proc.stderr[-3000:]
    folder = (reports / "latest").resolve()
    # Journal alone: the certificate needs nothing else of the folder but the attachments.
    for name in ("report.html", "junit.xml"):
        (folder / name).unlink()
    for fmt in ("html", "pdf"):
        result = report(str(folder), "--format", fmt)
        assert result.exit_code == 0, result.output
        assert "overall verdict: fail" in result.stderr
    return folder


@dataclass(frozen=True)
class Meter:
    """One meter of the run as results.json has it, with the certificate number the lab profile gives it."""

    position: str
    address: str
    number: str


def meters(folder: Path) -> list[Meter]:
    results = json.loads((folder / "results.json").read_text())
    year = results["run_id"][:4]
    return [Meter(p["name"], p["address"], f"EXLAB-{year}-{results['run_id']}-{n:02d}")
            for n, p in enumerate(results["positions"], start=1)]


def pdf_pages(folder: Path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(folder / "certificate.pdf").pages]


def certificates(pages: list[str]) -> list[list[str]]:
    """The page sets of the PDF (the batch summary, then each meter's), each as long as its 'page 1 of N' says."""
    out, at = [], 0
    while at < len(pages):
        found = re.search(r"page 1 of (\d+)", pages[at])
        assert found, f"page {at + 1} does not start a certificate"
        out.append(pages[at:at + int(found.group(1))])
        at += int(found.group(1))
    return out


def test_html_certificate_states_what_a_lab_must_state(rack_run: Path) -> None:
    text = html.unescape((rack_run / "certificate.html").read_text())
    results = json.loads((rack_run / "results.json").read_text())
    for needle in ("Example Meter Test Laboratory", "1 Example Road, 00000 Example City",
                   "Accredited by Example Accreditation Service, No. EAS-L0000 (ISO/IEC 17025:2017)",
                   "example lab profile", "Example Meter Manufacturer Ltd.", "A. N. Example, Head of laboratory",
                   "ILAC-G8:09/2019", "220 V 5(60) A 1200 imp/kWh class 1",
                   "Meter HIL Twin,PhantomSource PS-1,TW0001,0.1", "Meter HIL Twin,ReferenceStandard RS-3,TW0002,0.1",
                   # the reference standard's calibrating lab and uncertainty, from the lab's register
                   "calibration certificate TWIN-CAL-0001, due 2099-12-31; calibrated by Example Calibration "
                   "Laboratory (simulated; EAS-K0000); expanded uncertainty 0.02 % (k = 2)",
                   "22.4 °C, 51 % RH (given on the command line)", "IEC 62053-21:2003 Table 6", "coverage factor k = 2",
                   "SM2 throwaway key", "Basic error (rounded to 0.1 %, the class's rounding interval)",
                   # a twin run is marked, with the settings it was given
                   "class='watermark'>SIMULATION<", f"Settings given with --set: {KNOB}.",
                   f"Verification at issue</th><td>run {rack_run.name}: ALTERED"):
        assert needle in text, needle
    for m in meters(rack_run):
        assert f"Test certificate No. {m.number}<" in text
        # identity as the meter reported it over DL/T 645 (the twin's meter number is its address)
        assert f"<th style='width:24%'>Meter number (serial)</th><td>{m.address}</td>" in text
    assert text.count("<th style='width:24%'>Manufacturer, model</th><td>Meter HIL Twin, DDZY-TW1</td>") == 12
    for rec in results["records"]:
        assert rec["quantity"] in text, rec["quantity"]
    # The rig's notes on where a limit came from stay in its documentation, not on the certificate.
    for note in ("LYTEST", "lab requirement", "project reference", "value marked", "reference/", "issue "):
        assert note not in text, note
    points = [r for r in results["records"] if "uncertainty_pct" in (r["detail"] or {})]
    assert len(points) == 6 * 17
    for u in {r["detail"]["uncertainty_pct"] for r in points}:
        assert text.count(f"<td class='num'>{u:g} %</td>") == sum(r["detail"]["uncertainty_pct"] == u for r in points)
    # every basic error at the rounding interval of class 1: one decimal, in the table and on the summary
    shown = re.findall(r"<td>error at [^<]+</td><td class='num'>±[\d.]+ %</td><td class='num'>([^<]+)</td>", text)
    assert len(shown) == len(points) and all(re.fullmatch(r"-?\d+\.\d %", v) for v in shown), shown[:5]
    assert text.count("<svg") == 12, "each meter's curves drawn as vectors, on its summary and in its details"
    assert "data:image/png" not in text
    assert not re.search(r"""(src|href)=['"](https?:)?//""", text), "self-contained: nothing loaded from elsewhere"


def test_pdf_batch_summary_then_one_page_summary_per_meter_numbered_on_its_own(rack_run: Path) -> None:
    from pypdf import PdfReader

    batch, *sets = certificates(pdf_pages(rack_run))
    assert len(batch) == 1 and "Batch summary" in batch[0]
    text = batch[0].replace("-\n", "-").replace("\n", " ")  # a number may wrap at a hyphen
    listed = re.findall(r"(EXLAB-\d{4}-[\w-]+?-\d\d)\s+(P\d)\s+(\d{12})\s+(\d{12})", text)
    assert [(n, p, a) for n, p, a, _s in listed] == [(m.number, m.position, m.address) for m in meters(rack_run)]
    assert len(sets) == 6, "one certificate per meter after the batch summary"
    verdicts = {}
    for m, own in zip(meters(rack_run), sets):
        for n, page in enumerate(own, start=1):
            # every page names the certificate and the meter (its reported number and address), numbered alone
            assert f"page {n} of {len(own)}" in page
            assert f"Certificate {m.number} · meter No. {m.address} (address {m.address})" in page
            assert "SIMULATION" in page
        first = own[0]
        # the one-page summary comes first: identity, verdict, error table, curves, signature on one page
        for needle in (f"Test certificate No. {m.number}", "Meter HIL Twin, DDZY-TW1", "Signature",
                       "A. N. Example, Head of laboratory", "Basic error (rounded to 0.1 %", "PF 0.5L", KNOB,
                       "Reference standard", "expanded uncertainty 0.02 %"):
            assert needle in first, (m.number, needle)
        assert f"Test certificate No. {m.number}: details" in " ".join(own[1].split())
        assert "22.4 °C, 51 % RH (given on the command line)" in " ".join(own)
        verdicts[m.address] = re.search(r"Overall verdict for this meter: (\w+)", first).group(1)  # type: ignore[union-attr]
    failing = meters(rack_run)[1]
    assert verdicts.pop(failing.address) == "FAIL"
    assert set(verdicts.values()) == {"PASS"}
    # the failing meter's summary lists what is outside its limit, at the rounding interval
    assert re.search(r"error at Ib PF 1\s+—\s+±1\.0 %\s+1\.\d %", sets[1][0]), sets[1][0]
    # error curves are vector drawings: no raster image anywhere in the PDF
    assert not any(page.images for page in PdfReader(rack_run / "certificate.pdf").pages)


def test_pdf_pages_as_pictures(rack_run: Path) -> None:
    """The batch summary and a meter's one-page summary as PNG beside the run (artefacts to look at)."""
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        if os.environ.get("CI"):
            pytest.fail("CI must provide pdftoppm (poppler-utils): .ci/run installs it", pytrace=False)
        pytest.skip("pdftoppm (poppler-utils) not installed: the certificate's pages are not rendered as pictures")
    sets = certificates(pdf_pages(rack_run))
    summary_page = 1 + len(sets[0]) + len(sets[1])  # P2's (the failing meter) one-page summary
    for name, page in (("batch-summary", 1), ("summary-page", summary_page)):
        subprocess.run([pdftoppm, "-png", "-r", "110", "-singlefile", "-f", str(page), "-l", str(page),
                        str(rack_run / "certificate.pdf"), str(rack_run / name)], check=True, timeout=60)
        picture = rack_run / f"{name}.png"
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        from PIL import Image

        with Image.open(picture) as image:
            width, height = image.size
            assert width == 910 and abs(height - 1286) <= 1, "A4 at 110 dpi"
            # the SIMULATION watermark and the red marks of failing points are on the page
            colours = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
            reds = sum(n for n, (r, g, b) in colours if r > 150 and g < 80 and b < 80)
            assert reds > 200, reds


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


def test_report_bad_input_exits_2(tmp_path: Path, rack_run: Path) -> None:
    missing = report("no-such-run", "--reports", str(tmp_path))
    assert missing.exit_code == 2 and "no journal" in missing.stderr
    copy = tmp_path / "copy"
    shutil.copytree(rack_run, copy)
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


# ------------------------------------------------------------------------------------------ lab profile


def _profile(tmp_path: Path, **changes: Any) -> Path:
    data = yaml.safe_load(EXAMPLE_PROFILE.read_text()) | changes
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(("changes", "message"), [
    ({"numbering": "{lab}-{serial}"}, "numbering: '{lab}-{serial}' is not a numbering scheme"),
    ({"signatory": {"name": "X"}}, "signatory.title: required key is missing"),
    ({"logo": "logo.png"}, "logo.png cannot be read"),
    ({"name": ""}, "name: String should have at least 1 character"),
    ({"reference_standards": {"C-1": {"calibrated_by": "L", "uncertainty_pct": -1}}},
     "reference_standards.C-1.uncertainty_pct"),
])
def test_a_bad_lab_profile_is_refused_with_the_bench_file(tmp_path: Path, changes: dict[str, Any],
                                                          message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_bench(RACK, [f"lab={_profile(tmp_path, **changes)}"])


def test_lab_profile_named_by_the_bench_file_relative_to_it(tmp_path: Path) -> None:
    _profile(tmp_path, name="Lab Two", code="LAB2")
    bench = tmp_path / "bench.yaml"
    bench.write_text(Path(RACK).read_text() + "\nlab: lab.yaml\n")
    loaded = load_bench(bench)
    assert loaded.lab == (tmp_path / "lab.yaml").resolve()
    meta = lab_meta(loaded.lab, "bench")
    assert meta is not None and meta["name"] == "Lab Two" and not meta["twin_default"]
    assert lab_meta(None, "bench") is None, "a real bench without a profile names no lab"
    assert lab_meta(None, "twin")["example"] is True  # type: ignore[index]
    missing = rig("run", "testplans/smoke", "--reports", str(tmp_path / "r"), "--set", "lab=nope.yaml")
    assert missing.returncode == 2 and "lab profile" in missing.stderr
    assert "nope.yaml cannot be read: no such regular file" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_logo_and_a_bench_without_a_lab_profile(tmp_path: Path, rack_run: Path) -> None:
    from PIL import Image
    from pypdf import PdfReader

    Image.new("RGB", (120, 40), "#1f4e9a").save(tmp_path / "logo.png")
    journal, run_id, folder = locate(str(rack_run), str(rack_run.parent), None)
    data = certificate_data(journal, run_id, folder)
    data.lab = lab_meta(_profile(tmp_path, logo="logo.png"), "bench")
    assert "data:image/png;base64," in render_html(data)
    first = PdfReader(io.BytesIO(render_pdf(data))).pages[0]
    assert len(first.images) == 1, "the logo on the letterhead"
    data.lab, data.simulation = None, False
    text = render_html(data)
    assert "No lab profile: the bench file names none" in text and "SIMULATION" not in text


# ------------------------------------------------------------------------------------------ numbers and rows


def test_numbers_at_the_rounding_interval_and_clauses_without_the_rigs_notes() -> None:
    assert [format_error(v, 0.1) for v in (0.0, -0.35, 0.25, 1.26, -0.04)] == ["0.0", "-0.4", "0.2", "1.3", "0.0"]
    assert format_error(0.037, 0.05) == "0.05" and format_error(0.011, 0.02) == "0.02"
    assert [format_value(v, s) for v, s in ((-0.77389, 300), (0.0068843, 0.1), (88.72053, 92.0))] == \
        ["-0.8", "0.0069", "88.72"]
    assert rounding_interval_pct("0.5S") == 0.05 and rounding_interval_pct("B") == 0.1
    assert cited_clause("DL/T 645-2007 as the project reference gives it (reference/dlt645.md 'Frame')") == \
        "DL/T 645-2007"
    assert cited_clause("IEC 62053-21:2003 Table 6 (classes 2, 1); values as coded in LYTEST.WPF X.cs") == \
        "IEC 62053-21:2003 Table 6 (classes 2, 1)"
    assert cited_clause("lab requirement (SPI plans); no standard value at hand") == RIG_SPECIFICATION
    assert cited_clause("IEC 62053-21:2003 table 8 and annex A, as recalled") == "IEC 62053-21:2003 table 8 and annex A"
    assert cited_clause("project reference power.md 'Dips' (IEC 62052-11 / IEC 61000-4-11)") == \
        "IEC 62052-11 / IEC 61000-4-11"


def test_uart_and_ble_rows_are_told_apart() -> None:
    lines = [cert_lines.TestLine(f"test_read[{link}-P1]", "", "voltage read", 0.1, "%", -0.5, 0.5, PASS,
                                 "lab requirement (x)", False, None, None, 0) for link in ("uart", "ble")]
    groups = layout._results(lines, layout._sources(lines), 0.1).groups
    assert [(g.function, g.link) for g in groups] == [("test_read", "UART"), ("test_read", "BLE")]
    zero = cert_lines.TestLine("test_flag[P1]", "", "battery-low flag", 0.0, "", 0.0, 0.0, PASS, "", False, None,
                               None, 0)
    assert layout._limits(zero, 0.1) == "= 0"
