"""Test certificates from the journal alone (composition layer): one page set per meter with identity,
bench and instruments (IDN, calibration), conditions, every test with its clause and limits, values,
test uncertainty, verdict, the error curves, and the run's integrity; as self-contained HTML or PDF.

Reads rig.results; renders with matplotlib (curves) and reportlab (PDF). Knows nothing of pytest.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rig.integrity import key_fingerprint
from rig.plots import CurvePoint, error_curves_png
from rig.results import (
    BENCH_FAULT,
    FAIL,
    INFO,
    INTERRUPTED,
    PASS,
    ItemOutcome,
    Journal,
    SessionRow,
    StoredRecord,
    latest_items,
)
from rig.verify import Verification, verify_run

INCOMPLETE = "incomplete"
UNCERTAINTY_STATEMENT = (
    "The expanded uncertainty of measurement U is stated per basic-error point with coverage factor k = 2 "
    "(about 95 % coverage) as the bench's test uncertainty; TUR is the limit divided by U. "
    "Decision rule: simple acceptance (a value on or inside its limit passes; no guard band), "
    "so where TUR is low a pass close to the limit carries a correspondingly higher risk."
)


@dataclass(frozen=True)
class TestLine:
    """One recorded value as the certificate lists it."""

    test: str  # function name with its parameters, e.g. test_basic_error[PF1-Ib-P1]
    description: str
    quantity: str
    value: float | None
    unit: str
    low: float | None
    high: float | None
    verdict: str
    clause: str
    clause_check: bool
    uncertainty_pct: float | None
    tur: float | None
    session: int


@dataclass
class MeterSheet:
    """The page set of one meter."""

    position: str
    address: str
    serial: str | None
    lines: list[TestLine]
    items: list[ItemOutcome]
    incomplete: list[str]
    curves: dict[str, list[CurvePoint]]
    verdict: str
    curves_png: bytes | None = None


@dataclass
class CertificateData:
    """Everything a certificate shows, derived from the journal (and the run folder for attachments)."""

    number: str
    run_id: str
    issued_utc: str
    run_started_utc: str
    bench: dict[str, Any]
    meter_type: dict[str, Any]
    sessions: list[SessionRow]
    instruments: list[dict[str, Any]]
    conditions: dict[str, Any]
    overrides: list[str]
    sheets: list[MeterSheet]
    bench_lines: list[TestLine]
    verification: Verification
    signing: list[str] = field(default_factory=list)

    @property
    def overall_verdict(self) -> str:
        """pass when every meter passed, else fail (or incomplete)."""
        verdicts = {s.verdict for s in self.sheets}
        for verdict in (FAIL, INCOMPLETE):
            if verdict in verdicts:
                return verdict
        return PASS


def _function(nodeid: str) -> str:
    return nodeid.rpartition("::")[2]


def _line(stored: StoredRecord, docs: dict[str, str]) -> TestLine:
    r = stored.record
    detail = r.detail or {}
    clause = str(detail.get("limit_source") or detail.get("source") or "")
    check = bool(detail.get("limit_check") or detail.get("check"))
    if not clause:
        clause = "limits of the rig's plan" if r.verdict != INFO else "recorded for information"
    return TestLine(
        test=_function(r.test), description=docs.get(r.test, ""), quantity=r.quantity, value=r.value, unit=r.unit,
        low=r.low, high=r.high, verdict=r.verdict, clause=clause, clause_check=check,
        uncertainty_pct=_number(detail.get("uncertainty_pct")), tur=_number(detail.get("tur")), session=stored.session,
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


_POINT_RE = re.compile(r"^error at (?P<label>\S+) PF ")


def _curves(records: Sequence[StoredRecord]) -> dict[str, list[CurvePoint]]:
    """Error curves from basic-error records (detail current_a and pf, unit %, a symmetric limit)."""
    curves: dict[str, list[CurvePoint]] = {}
    for stored in records:
        r = stored.record
        detail = r.detail or {}
        if r.unit != "%" or "current_a" not in detail or "pf" not in detail or r.high is None:
            continue
        match = _POINT_RE.match(r.quantity)
        label = match.group("label") if match else f"{detail['current_a']:g} A"
        curves.setdefault(str(detail["pf"]), []).append(
            CurvePoint(current_a=float(detail["current_a"]), error_pct=r.value, limit_pct=float(r.high), label=label))
    return curves


def _sheet_verdict(lines: Sequence[TestLine], items: Sequence[ItemOutcome], incomplete: Sequence[str]) -> str:
    if any(line.verdict == FAIL for line in lines) or any(i.outcome in ("failed", "error") for i in items):
        return FAIL
    if incomplete or any(i.outcome == BENCH_FAULT for i in items):  # a point the bench could not measure
        return INCOMPLETE
    return PASS


def certificate_data(journal: Journal, run_id: str, folder: Path | None = None) -> CertificateData:
    """Gather a run's certificate from its journal (JournalError when the run is not there)."""
    run = journal.run(run_id)
    meta = run.meta or {}
    sessions = journal.sessions(run_id)
    items = latest_items(journal.items(run_id))
    effective, _superseded = journal.effective_records(run_id)
    docs = {i.nodeid: i.doc or "" for i in items}
    completed = {i.nodeid for i in items}
    with_instruments = [s for s in sessions if s.meta.get("instruments")]
    instruments = with_instruments[-1].meta["instruments"] if with_instruments else []
    conditions = with_instruments[-1].meta.get("conditions", {}) if with_instruments else {}
    overrides = []
    for s in with_instruments:
        for inst in s.meta["instruments"]:
            accepted = inst.get("expired_accepted")
            if accepted:
                overrides.append(
                    f"Session {s.session}: the reference standard's calibration {inst.get('calibration_certificate')} "
                    f"had expired on {inst.get('calibration_due')} ({accepted.get('days_overdue')} days overdue); "
                    f"the run was accepted by {accepted.get('by')} at {accepted.get('utc')} for this reason: "
                    f"\"{accepted.get('reason')}\". Results traceable only as far as that calibration.")
    for s in sessions:
        changed = s.meta.get("accepted_changes")
        if isinstance(changed, dict):
            overrides.append(
                f"Session {s.session} resumed the run although its inputs had changed since the first session "
                f"({'; '.join(str(d) for d in changed.get('differences', []))}); accepted by {changed.get('by')} at "
                f"{changed.get('utc')} for this reason: \"{changed.get('reason')}\".")
    sheets = []
    for pos in meta.get("positions", []):
        name = pos["name"]
        mine = [s for s in effective if s.record.position == name]
        my_items = [i for i in items if i.position == name]
        incomplete = sorted({s.record.test for s in mine} - completed)
        lines = [_line(s, docs) for s in mine]
        sheets.append(MeterSheet(position=name, address=pos["address"], serial=pos.get("serial"), lines=lines,
                                 items=my_items, incomplete=incomplete, curves=_curves(mine),
                                 verdict=_sheet_verdict(lines, my_items, incomplete)))
    bench_records = [s for s in effective if s.record.position is None]
    bench_lines = [_line(s, docs) for s in bench_records]
    bench_items = [i for i in items if i.position is None]
    bench_incomplete = sorted({s.record.test for s in bench_records} - completed)
    bench_verdict = _sheet_verdict(bench_lines, bench_items, bench_incomplete)
    for sheet in sheets:
        # The bench-wide checks (source, reference) hold for every meter of the run.
        if bench_verdict == FAIL or (bench_verdict == INCOMPLETE and sheet.verdict == PASS):
            sheet.verdict = bench_verdict
    last = sessions[-1] if sessions else None
    if last is not None and last.verdict in (None, INTERRUPTED):
        # The last session stopped (or was killed) before every selected test ran: nothing it did not run
        # can be certified, even when every test that did run passed.
        unfinished = (last.meta.get("ending") or {}).get("unfinished_items")
        why = (f"session {last.session} was {'interrupted' if last.verdict else 'killed'}"
               + (f" with {unfinished} selected test item(s) not completed" if unfinished else "")
               + f"; finish it with rig run --resume {run_id}")
        for sheet in sheets:
            sheet.incomplete.append(why)
            if sheet.verdict == PASS:
                sheet.verdict = INCOMPLETE
    verification = verify_run(journal, run_id, folder)
    signing = [
        f"session {s.session}: SM2 {('bench key' if s.key_kind == 'bench' else 'throwaway key')} "
        f"{key_fingerprint(s.public_key)}" for s in sessions if s.public_key and s.signature
    ]
    return CertificateData(
        number=f"RIG-{run_id}", run_id=run_id, issued_utc=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        run_started_utc=run.started_utc, bench=meta.get("bench", {"name": run.bench}),
        meter_type=meta.get("meter_type", {}), sessions=sessions, instruments=instruments, conditions=conditions,
        overrides=overrides, sheets=sheets, bench_lines=bench_lines, verification=verification, signing=signing,
    )


def _render_curves(data: CertificateData) -> None:
    meter = data.meter_type
    for sheet in data.sheets:
        if sheet.curves and sheet.curves_png is None:
            sheet.curves_png = error_curves_png(
                sheet.curves, title=f"{sheet.position} ({sheet.address}) {meter.get('nameplate', '')}",
                imax_a=float(meter.get("imax_a", 1.0)), ib_a=float(meter.get("ib_a", 1.0)))


# ------------------------------------------------------------------------------------ text bits


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    text = f"{value:.5g}"
    return f"{text} {unit}".strip()


def _limits(line: TestLine) -> str:
    low, high, unit = line.low, line.high, line.unit
    if low is None and high is None:
        return "—"
    if low is not None and high is not None:
        if low == -high:
            return f"±{_num(high, unit)}"
        if low == high:
            return f"= {_num(low, unit)}"
        return f"{_num(low)} .. {_num(high, unit)}"
    return f"≥ {_num(low, unit)}" if low is not None else f"≤ {_num(high, unit)}"


def _groups(lines: Sequence[TestLine]) -> list[tuple[str, str, list[TestLine]]]:
    """Consecutive lines of the same test function: (function, description, lines)."""
    out: list[tuple[str, str, list[TestLine]]] = []
    for line in lines:
        function = line.test.split("[", 1)[0]
        if out and out[-1][0] == function:
            out[-1][2].append(line)
        else:
            out.append((function, line.description, [line]))
    return out


def _sources(lines: Sequence[TestLine]) -> list[str]:
    """The distinct clause / limit sources, numbered in order of first use."""
    seen: list[str] = []
    for line in lines:
        text = _clause_text(line)
        if text not in seen:
            seen.append(text)
    return seen


def _clause_text(line: TestLine) -> str:
    return line.clause + (" (value marked 'check': to be confirmed against the standard)" if line.clause_check
                          else "")


def _refs(lines: Sequence[TestLine], sources: Sequence[str]) -> str:
    numbers = sorted({sources.index(_clause_text(line)) + 1 for line in lines})
    return ", ".join(f"[{n}]" for n in numbers)


def _g(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _conditions_text(conditions: dict[str, Any], meter: dict[str, Any]) -> list[tuple[str, str]]:
    temp, rh = conditions.get("temperature_c"), conditions.get("humidity_pct")
    ambient = (f"{temp:g} °C, {rh:g} % RH" if isinstance(temp, int | float) and isinstance(rh, int | float)
               else "not stated")
    return [
        ("Ambient", f"{ambient} ({conditions.get('source', 'not stated')})"),
        ("Reference voltage / frequency", f"{_g(meter.get('un_v', '?'))} V, {_g(meter.get('frequency_hz', '?'))} Hz, "
                                          f"{meter.get('wiring', '?')}, sinusoidal"),
    ]


def _identity_rows(data: CertificateData, sheet: MeterSheet) -> list[tuple[str, str]]:
    m = data.meter_type
    return [
        ("Meter (address, position)", f"{sheet.address} at bench position {sheet.position}; the communication "
                                      "address is its identity (no separate serial number in the bench file)"),
        ("Type (nameplate)", str(m.get("nameplate", ""))),
        ("Class, connection", f"{m.get('accuracy_class', '?')} ({m.get('scheme', '?')} scheme), "
                              f"{m.get('connection', '?')}, {m.get('wiring', '?')}"),
        ("Un, Ib(Imax), Itr", f"{_g(m.get('un_v'))} V, {_g(m.get('ib_a'))}({_g(m.get('imax_a'))}) A, "
                              f"Itr {_g(m.get('itr_a'))} A, {_g(m.get('frequency_hz'))} Hz"),
        ("Meter constant", f"{_g(m.get('constant_imp_per_kwh'))} imp/kWh"),
    ]


def _instrument_rows(data: CertificateData) -> list[list[str]]:
    rows = []
    for inst in data.instruments:
        cal = "—"
        if inst.get("calibration_certificate"):
            cal = f"{inst['calibration_certificate']}, due {inst.get('calibration_due')}"
            if inst.get("expired_accepted"):
                cal += " (EXPIRED, accepted by the operator)"
        rows.append([str(inst.get("role", "")), str(inst.get("idn", "")), str(inst.get("resource", "")), cal])
    return rows


def _run_rows(data: CertificateData) -> list[tuple[str, str]]:
    sessions = ", ".join(f"{s.session}: {s.started_utc} → {s.finished_utc or 'killed'} ({s.verdict or 'no verdict'})"
                         for s in data.sessions)
    bench = data.bench
    return [
        ("Run", data.run_id),
        ("Bench", f"{bench.get('name', '')}: {bench.get('description', '')}"),
        ("Sessions", sessions or "—"),
        ("Run by", ", ".join(sorted({f"{s.meta.get('started_by', '?')} on {s.host}" for s in data.sessions})) or "—"),
        ("Integrity", "records SM3-chained, run signed with SM2: " + ("; ".join(data.signing) or "not signed")),
        ("Verification at issue", data.verification.text().splitlines()[0]),
    ]


# ----------------------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: 'DejaVu Sans', Arial, sans-serif; font-size: 10pt; color: #111; margin: 2em; }
h1 { font-size: 16pt; margin: 0 0 .3em 0; } h2 { font-size: 12pt; margin: 1.2em 0 .4em 0; }
table { border-collapse: collapse; width: 100%; margin-bottom: .6em; }
th, td { border: 1px solid #bbb; padding: 3px 5px; text-align: left; vertical-align: top; }
th { background: #eee; } td.num { text-align: right; white-space: nowrap; }
.pass { color: #0a6b12; font-weight: bold; } .fail { color: #b00020; font-weight: bold; }
.info { color: #555; } .incomplete { color: #a15c00; font-weight: bold; }
.sheet { page-break-before: always; } .sheet:first-of-type { page-break-before: auto; }
.verdict { font-size: 14pt; padding: .4em; border: 2px solid #111; display: inline-block; }
.warn { border: 2px solid #b00020; padding: .5em; background: #fff3f3; }
.small { font-size: 8pt; color: #444; } tr.group td { background: #f6f6f6; }
"""


def _kv_table(rows: Sequence[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th style='width:28%'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                               for k, v in rows) + "</table>"


def _verdict_span(verdict: str) -> str:
    return f"<span class='{html.escape(verdict)}'>{html.escape(verdict.upper())}</span>"


def _lines_table(lines: Sequence[TestLine], sources: Sequence[str]) -> str:
    head = ("<tr><th>Quantity</th><th>Limits</th><th>Value</th><th>U (k=2)</th><th>TUR</th><th>Verdict</th></tr>")
    body = []
    for function, description, group in _groups(lines):
        body.append(f"<tr class='group'><td colspan='6'><b>{html.escape(function)}</b>"
                    f"{' — ' + html.escape(description) if description else ''} "
                    f"<span class='small'>limits: {_refs(group, sources)}</span></td></tr>")
        for line in group:
            body.append(
                f"<tr><td>{html.escape(line.quantity)}</td><td class='num'>{html.escape(_limits(line))}</td>"
                f"<td class='num'>{html.escape(_num(line.value, line.unit))}</td>"
                f"<td class='num'>{'—' if line.uncertainty_pct is None else f'{line.uncertainty_pct:g} %'}</td>"
                f"<td class='num'>{'—' if line.tur is None else f'{line.tur:.1f}'}</td>"
                f"<td>{_verdict_span(line.verdict)}</td></tr>")
    return "<table>" + head + "".join(body) + "</table>"


def _sources_list(sources: Sequence[str]) -> str:
    return "<ol class='small'>" + "".join(f"<li>{html.escape(text)}</li>" for text in sources) + "</ol>"


def render_html(data: CertificateData) -> str:
    """The certificate as one self-contained HTML page (CSS and pictures inline; a page set per meter)."""
    _render_curves(data)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Test certificate {html.escape(data.number)}"
             f"</title><style>{_CSS}</style></head><body>"]
    for sheet in data.sheets:
        parts.append("<div class='sheet'>")
        parts.append(f"<h1>Test certificate {html.escape(data.number)} — meter {html.escape(sheet.address)}</h1>")
        parts.append(f"<p class='small'>Issued {html.escape(data.issued_utc)} from the run's journal; "
                     f"run started {html.escape(data.run_started_utc)}.</p>")
        parts.append(f"<p class='verdict'>Overall verdict for this meter: {_verdict_span(sheet.verdict)}</p>")
        for text in data.overrides:
            parts.append(f"<p class='warn'>{html.escape(text)}</p>")
        parts.append("<h2>Meter under test</h2>" + _kv_table(_identity_rows(data, sheet)))
        parts.append("<h2>Bench and instruments (traceability)</h2>" + _kv_table(_run_rows(data)))
        parts.append("<table><tr><th>Role</th><th>Identity (*IDN?)</th><th>Resource</th>"
                     "<th>Calibration certificate, due</th></tr>"
                     + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                               for row in _instrument_rows(data)) + "</table>")
        parts.append("<h2>Conditions</h2>" + _kv_table(_conditions_text(data.conditions, data.meter_type)))
        sources = _sources([*sheet.lines, *data.bench_lines])
        parts.append("<h2>Results</h2>" + _lines_table(sheet.lines, sources))
        if data.bench_lines:
            parts.append("<h2>Bench checks (valid for every meter of the run)</h2>"
                         + _lines_table(data.bench_lines, sources))
        parts.append("<h2>Clauses and limit sources</h2>" + _sources_list(sources))
        if sheet.incomplete:
            parts.append("<p class='warn'>Not completed (the run was interrupted): "
                         + html.escape(", ".join(sheet.incomplete)) + "</p>")
        if sheet.curves_png:
            encoded = base64.b64encode(sheet.curves_png).decode("ascii")
            parts.append(f"<h2>Error curves</h2><img alt='error curves of {html.escape(sheet.address)}' "
                         f"style='max-width:100%' src='data:image/png;base64,{encoded}'>")
        parts.append(f"<h2>Uncertainty and decision rule</h2><p>{html.escape(UNCERTAINTY_STATEMENT)}</p>")
        parts.append("</div>")
    if not data.sheets:
        parts.append(f"<h1>Test certificate {html.escape(data.number)}</h1><p>No meter positions in this run.</p>")
    parts.append("</body></html>")
    return "".join(parts)


# ------------------------------------------------------------------------------------------ PDF


def _pdf_font() -> str:
    """A Unicode TrueType font (DejaVu Sans, shipped with matplotlib) for °, ±, Ω and →."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if "DejaVuSans" not in pdfmetrics.getRegisteredFontNames():
        import matplotlib

        fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
        pdfmetrics.registerFont(TTFont("DejaVuSans", str(fonts / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(fonts / "DejaVuSans-Bold.ttf")))
    return "DejaVuSans"


def render_pdf(data: CertificateData) -> bytes:
    """The certificate as PDF (reportlab): a page set per meter, A4, page numbers in the footer."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        Image,
        KeepTogether,
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    _render_curves(data)
    font = _pdf_font()
    base = ParagraphStyle("base", fontName=font, fontSize=8.5, leading=10.5)
    small = ParagraphStyle("small", parent=base, fontSize=7, leading=8.5, textColor=colors.HexColor("#444444"))
    h1 = ParagraphStyle("h1", parent=base, fontName=f"{font}-Bold", fontSize=14, leading=17, spaceAfter=4)
    h2 = ParagraphStyle("h2", parent=base, fontName=f"{font}-Bold", fontSize=10.5, leading=13, spaceBefore=8,
                        spaceAfter=3)
    warn = ParagraphStyle("warn", parent=base, textColor=colors.HexColor("#b00020"), borderColor=colors.HexColor(
        "#b00020"), borderWidth=1, borderPadding=4, spaceBefore=4, spaceAfter=6)
    verdict_colour = {PASS: "#0a6b12", FAIL: "#b00020", INCOMPLETE: "#a15c00", INFO: "#555555"}

    def p(text: str, style: ParagraphStyle = base) -> Paragraph:
        return Paragraph(html.escape(text), style)

    def verdict(v: str) -> Paragraph:
        return Paragraph(f"<font color='{verdict_colour.get(v, '#111111')}'><b>{html.escape(v.upper())}</b></font>",
                         base)

    grid = TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
                       ("VALIGN", (0, 0), (-1, -1), "TOP"),
                       ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3),
                       ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5)])
    header = TableStyle([("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8"))])
    width = A4[0] - 30 * mm

    def kv(rows: Sequence[tuple[str, str]]) -> Table:
        table = Table([[p(k), p(v)] for k, v in rows], colWidths=[0.28 * width, 0.72 * width])
        table.setStyle(grid)
        table.setStyle(TableStyle([("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f0f0f0"))]))
        return table

    def results(lines: Sequence[TestLine], sources: Sequence[str]) -> Table:
        rows: list[list[Any]] = [[p(h) for h in ("Quantity", "Limits", "Value", "U (k=2)", "TUR", "Verdict")]]
        spans = []
        for function, description, group in _groups(lines):
            spans.append(len(rows))
            text = f"<b>{html.escape(function)}</b>" + (f" — {html.escape(description)}" if description else "")
            rows.append([Paragraph(f"{text} <font size='7' color='#444444'>limits: {_refs(group, sources)}</font>",
                                   base), "", "", "", "", ""])
            for line in group:
                rows.append([
                    p(line.quantity), p(_limits(line)), p(_num(line.value, line.unit)),
                    p("—" if line.uncertainty_pct is None else f"{line.uncertainty_pct:g} %"),
                    p("—" if line.tur is None else f"{line.tur:.1f}"), verdict(line.verdict)])
        fractions = (0.40, 0.15, 0.15, 0.10, 0.08, 0.12)
        table = Table(rows, colWidths=[f * width for f in fractions], repeatRows=1)
        table.setStyle(grid)
        table.setStyle(header)
        for row in spans:
            table.setStyle(TableStyle([("SPAN", (0, row), (-1, row)),
                                       ("BACKGROUND", (0, row), (-1, row), colors.HexColor("#f6f6f6"))]))
        return table

    story: list[Any] = []
    for index, sheet in enumerate(data.sheets):
        if index:
            story.append(PageBreak())
        story.append(p(f"Test certificate {data.number} — meter {sheet.address}", h1))
        story.append(p(f"Issued {data.issued_utc} from the run's journal; run started {data.run_started_utc}.",
                       small))
        story.append(Spacer(1, 4))
        story.append(Paragraph(f"Overall verdict for this meter: <font color='{verdict_colour.get(sheet.verdict)}'>"
                               f"<b>{sheet.verdict.upper()}</b></font>", h2))
        story += [p(text, warn) for text in data.overrides]
        story += [p("Meter under test", h2), kv(_identity_rows(data, sheet))]
        story += [p("Bench and instruments (traceability)", h2), kv(_run_rows(data))]
        instruments = Table([[p(h) for h in ("Role", "Identity (*IDN?)", "Resource", "Calibration, due")]]
                            + [[p(c) for c in row] for row in _instrument_rows(data)],
                            colWidths=[0.12 * width, 0.38 * width, 0.25 * width, 0.25 * width])
        instruments.setStyle(grid)
        instruments.setStyle(header)
        story += [Spacer(1, 3), instruments]
        story += [p("Conditions", h2), kv(_conditions_text(data.conditions, data.meter_type))]
        sources = _sources([*sheet.lines, *data.bench_lines])
        story += [p("Results", h2), results(sheet.lines, sources)]
        if data.bench_lines:
            story += [p("Bench checks (valid for every meter of the run)", h2), results(data.bench_lines, sources)]
        story += [p("Clauses and limit sources", h2)]
        story += [p(f"[{n}] {text}", small) for n, text in enumerate(sources, start=1)]
        if sheet.incomplete:
            story.append(p("Not completed (the run was interrupted): " + ", ".join(sheet.incomplete), warn))
        if sheet.curves_png:
            image = Image(io.BytesIO(sheet.curves_png))
            scale = min(1.0, width / image.drawWidth)
            image.drawWidth, image.drawHeight = image.drawWidth * scale, image.drawHeight * scale
            story.append(KeepTogether([p("Error curves", h2), image]))
        story.append(KeepTogether([p("Uncertainty and decision rule", h2), p(UNCERTAINTY_STATEMENT, small)]))
    if not data.sheets:
        story.append(p(f"Test certificate {data.number}: no meter positions in this run.", h1))

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(font, 7)
        canvas.drawString(15 * mm, 10 * mm, f"{data.number} · {data.bench.get('name', '')} · page {doc.page}")
        canvas.restoreState()

    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=14 * mm,
                                 bottomMargin=16 * mm, title=f"Test certificate {data.number}",
                                 author="meter HIL rig", subject=f"run {data.run_id}")
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
