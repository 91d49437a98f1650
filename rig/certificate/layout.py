"""What a certificate says, in order, as blocks: a batch summary page, then per meter a one-page summary (lab,
customer, the meter as it identified itself, the reference standard, verdict, error table, curves, signature)
followed by the detail pages. The one place that decides the content, so that the HTML and the PDF carry the same
information. No markup here.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rig.certificate.data import CertificateData, MeterSheet
from rig.certificate.lines import ErrorPoint, TestLine
from rig.certificate.numbers import DECLARED, RIG_SPECIFICATION, cited_clause, format_error, format_value
from rig.results import FAIL

UNCERTAINTY_STATEMENT = (
    "The expanded uncertainty of measurement U is stated per basic-error point with coverage factor k = 2 "
    "(about 95 % coverage) as the bench's test uncertainty; TUR is the limit divided by U. "
)
DEFAULT_DECISION_RULE = (
    "Decision rule: simple acceptance (a value on or inside its limit passes; no guard band), "
    "so where TUR is low a pass close to the limit carries a correspondingly higher risk."
)
UNCONFIRMED_MARK = "†"
UNCONFIRMED_NOTE = (f"{UNCONFIRMED_MARK} limit value not yet confirmed by the lab against the standard's text "
                    "(the rig's docs/limit-sources.md names what it was taken from)")
NOT_READ = "not read from the meter"
SIMULATION_TEXT = ("SIMULATION: the meters and instruments of this run were the rig's software twin. The results "
                   "show how the rig behaves; they are not a test of a real meter.")


@dataclass(frozen=True)
class _Text:
    """A block that is one text."""

    text: str


class Title(_Text):
    """The page set's title."""


class Note(_Text):
    """Small print."""


class Paragraph(_Text):
    """Body text."""


@dataclass(frozen=True)
class Verdict:
    """The meter's (or the batch's) overall verdict, highlighted."""

    verdict: str
    what: str = "this meter"


class Alert(_Text):
    """Something a reader must not miss (simulation, an override, an unfinished run)."""


class Heading(_Text):
    """A section heading."""


@dataclass(frozen=True)
class Letterhead:
    """The issuing lab: name, address and accreditation lines, and its logo (bytes and MIME type) if it has one."""

    name: str
    lines: Sequence[str]
    logo: tuple[bytes, str] | None = None


@dataclass(frozen=True)
class Fields:
    """Name / value rows."""

    rows: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Grid:
    """A table with a header row; `widths` are fractions of the text width; `failed` marks rows outside a limit."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    widths: Sequence[float]
    failed: Sequence[bool] = ()


@dataclass(frozen=True)
class ResultRow:
    """One line of a results table, as text."""

    quantity: str
    limits: str
    value: str
    uncertainty: str
    tur: str
    verdict: str


@dataclass(frozen=True)
class ResultGroup:
    """The lines of one test function over one link, with its description and limit sources ([1], [2])."""

    function: str
    link: str
    description: str
    refs: str
    rows: Sequence[ResultRow]


@dataclass(frozen=True)
class Results:
    """A results table: groups of lines."""

    groups: Sequence[ResultGroup]


@dataclass(frozen=True)
class Sources:
    """The numbered clauses and limit sources."""

    texts: Sequence[str]


@dataclass(frozen=True)
class Curves:
    """The error curves (drawn as vectors by each renderer), with a heading and the drawing's height in points."""

    heading: str
    curves: dict[str, list[ErrorPoint]]
    imax_a: float
    rounding_pct: float | None
    height: float


@dataclass(frozen=True)
class Statement:
    """A heading and a paragraph kept together."""

    heading: str
    text: str


@dataclass(frozen=True)
class Signature:
    """The signature block: who signs, for which lab, issued when."""

    name: str
    title: str
    lab: str
    issued: str


class PageBreak:
    """The summary page ends here; the detail follows on the next page."""


Block = (Title | Note | Paragraph | Verdict | Alert | Heading | Letterhead | Fields | Grid | Results | Sources
         | Curves | Statement | Signature | PageBreak)
RESULT_HEADER = ("Quantity", "Limits", "Value", "U (k=2)", "TUR", "Verdict")
RESULT_WIDTHS = (0.40, 0.15, 0.15, 0.10, 0.08, 0.12)


@dataclass
class PageSet:
    """The pages of one certificate (a meter's, or the batch summary): numbered 'page x of y' on their own."""

    number: str
    meter: str  # who the pages are about, on every page
    blocks: list[Block] = field(default_factory=list)


# ------------------------------------------------------------------------------------ text bits


def _is_error(line: TestLine) -> bool:
    return line.unit == "%" and ("error" in line.quantity.lower() or line.uncertainty_pct is not None)


def _scale(line: TestLine) -> float | None:
    bounds = [abs(v) for v in (line.low, line.high) if v is not None]
    return max(bounds) if bounds and max(bounds) > 0 else None


def _value(line: TestLine, value: float | None, rounding: float | None, *, limit: bool = False) -> str:
    """A value (errors at the rounding interval, others to 1/1000 of their limit) or a limit (as specified)."""
    if _is_error(line):
        text = format_error(value, rounding)
    elif limit and value is not None:
        text = f"{value:.6g}"  # a limit as its table gives it, without the float noise of a computed one
    else:
        text = format_value(value, _scale(line))
    return f"{text} {line.unit}".strip() if text != "—" else text


def _limits(line: TestLine, rounding: float | None) -> str:
    low, high = line.low, line.high
    if low is None and high is None:
        return "—"
    if low is not None and high is not None:
        if low == high:
            return f"= {_value(line, low, rounding, limit=True)}"
        if low == -high:
            return f"±{_value(line, high, rounding, limit=True)}"
        return (f"{_value(line, low, rounding, limit=True).removesuffix(' ' + line.unit)} .. "
                f"{_value(line, high, rounding, limit=True)}")
    return (f"≥ {_value(line, low, rounding, limit=True)}" if low is not None
            else f"≤ {_value(line, high, rounding, limit=True)}")


def _clause_text(line: TestLine) -> str:
    cited = cited_clause(line.clause) if line.verdict != "info" or line.clause != "recorded for information" \
        else "recorded for information (no limit)"
    unconfirmed = line.clause_check and cited not in (RIG_SPECIFICATION, DECLARED)
    return cited + (f" {UNCONFIRMED_MARK}" if unconfirmed else "")


def _sources(lines: Sequence[TestLine]) -> list[str]:
    """The distinct clauses, numbered in order of first use."""
    return list(dict.fromkeys(_clause_text(line) for line in lines))


def _results(lines: Sequence[TestLine], sources: Sequence[str], rounding: float | None) -> Results:
    """Consecutive lines of the same test function and link grouped, each group with its limit sources."""
    grouped: list[tuple[str, str, str, list[TestLine]]] = []
    for line in lines:
        function = line.test.split("[", 1)[0]
        if grouped and grouped[-1][0] == function and grouped[-1][1] == line.link:
            grouped[-1][3].append(line)
        else:
            grouped.append((function, line.link, line.description, [line]))
    return Results([
        ResultGroup(function, link, description,
                    ", ".join(f"[{n}]" for n in sorted({sources.index(_clause_text(line)) + 1 for line in group})),
                    [ResultRow(line.quantity, _limits(line, rounding), _value(line, line.value, rounding),
                               "—" if line.uncertainty_pct is None else f"{line.uncertainty_pct:g} %",
                               "—" if line.tur is None else f"{line.tur:.1f}", line.verdict) for line in group])
        for function, link, description, group in grouped])


def _g(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _conditions(conditions: dict[str, Any], meter: dict[str, Any]) -> list[tuple[str, str]]:
    temp, rh = conditions.get("temperature_c"), conditions.get("humidity_pct")
    ambient = (f"{temp:g} °C, {rh:g} % RH" if isinstance(temp, int | float) and isinstance(rh, int | float)
               else "not stated")
    return [
        ("Ambient", f"{ambient} ({conditions.get('source', 'not stated')})"),
        ("Reference voltage / frequency", f"{_g(meter.get('un_v', '?'))} V, {_g(meter.get('frequency_hz', '?'))} Hz, "
                                          f"{meter.get('wiring', '?')}, sinusoidal"),
    ]


def _reported(sheet: MeterSheet, key: str) -> str:
    if sheet.identity is None:
        return f"{NOT_READ} (no identity test in this run)"
    value = sheet.identity.get(key)
    return value if value else "not given by the meter"


def _identity(data: CertificateData, sheet: MeterSheet) -> list[tuple[str, str]]:
    m = data.meter_type
    firmware = _reported(sheet, "firmware")
    if sheet.identity is not None and sheet.identity.get("checksum"):
        firmware += f" (checksum {sheet.identity['checksum']})"
    return [
        ("Manufacturer, model", (f"{_reported(sheet, 'manufacturer')}, {_reported(sheet, 'model')}"
                                 if sheet.identity is not None else _reported(sheet, "model"))),
        ("Meter number (serial)", _reported(sheet, "serial")),
        ("Software version", firmware),
        ("Communication address, position", f"{sheet.address}, bench position {sheet.position}"),
        ("Type (nameplate)", f"{m.get('nameplate', '')}; {m.get('scheme', '?')} scheme, {m.get('connection', '?')}, "
                             f"{m.get('wiring', '?')}, Itr {_g(m.get('itr_a'))} A, {_g(m.get('frequency_hz'))} Hz"),
    ]


def _reference(data: CertificateData) -> str:
    """The reference standard: what it says it is, its calibration, who calibrated it and its uncertainty."""
    reference = next((i for i in data.instruments if i.get("role") == "reference"), None)
    if reference is None:
        return "not identified (the bench was not opened)"
    certificate = str(reference.get("calibration_certificate") or "")
    text = f"{reference.get('idn', '')}; calibration certificate {certificate}, due {reference.get('calibration_due')}"
    if reference.get("expired_accepted"):
        text += " (EXPIRED, accepted by the operator)"
    entry = ((data.lab or {}).get("reference_standards") or {}).get(certificate)
    if entry is None:
        return text + "; calibrating laboratory and uncertainty: not in the lab profile's register"
    return (text + f"; calibrated by {entry['calibrated_by']}; expanded uncertainty {_g(entry['uncertainty_pct'])} % "
                   f"(k = {_g(entry['coverage_factor'])})")


def _instruments(data: CertificateData) -> Grid:
    rows = []
    for inst in data.instruments:
        cal = "—"
        if inst.get("calibration_certificate"):
            cal = f"{inst['calibration_certificate']}, due {inst.get('calibration_due')}"
            if inst.get("expired_accepted"):
                cal += " (EXPIRED, accepted by the operator)"
        rows.append([str(inst.get("role", "")), str(inst.get("idn", "")), str(inst.get("resource", "")), cal])
    return Grid(("Role", "Identity (*IDN?)", "Resource", "Calibration certificate, due"), rows,
                (0.12, 0.38, 0.25, 0.25))


def _run(data: CertificateData) -> list[tuple[str, str]]:
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


# ------------------------------------------------------------------------------------ shared pieces


def _letterhead(data: CertificateData) -> list[Block]:
    lab = data.lab
    if lab is None:
        return [Alert("No lab profile: the bench file names none (bench file key 'lab'); this certificate names "
                      "no issuing lab, accreditation or signatory and cannot be signed as it is.")]
    acc = lab["accreditation"]
    lines = [str(lab["address"]), f"Accredited by {acc['body']}, No. {acc['number']} ({acc['standard']})"]
    logo = lab.get("logo")
    blocks: list[Block] = [Letterhead(str(lab["name"]), lines,
                                      (base64.b64decode(logo["base64"]), str(logo["mime"]))
                                      if isinstance(logo, dict) else None)]
    if lab.get("example"):
        blocks.append(Note("Issued under the rig's example lab profile (benches/lab-profile.example.yaml): the lab, "
                           "accreditation and signatory are placeholders."))
    return blocks


def _simulation(data: CertificateData) -> list[Block]:
    if not data.simulation:
        return []
    settings = "; ".join(data.knob_overrides) if data.knob_overrides else "none (the twin's defaults)"
    return [Alert(f"{SIMULATION_TEXT} Settings given with --set: {settings}.")]


def _decision_rule(data: CertificateData) -> str:
    return str((data.lab or {}).get("decision_rule") or DEFAULT_DECISION_RULE)


def _signature(data: CertificateData) -> Signature:
    lab = data.lab or {}
    signatory = lab.get("signatory") or {}
    return Signature(str(signatory.get("name") or "(no signatory: no lab profile)"), str(signatory.get("title") or ""),
                     str(lab.get("name") or ""), data.issued_utc)


def _error_table(sheet: MeterSheet, rounding: float | None) -> Grid:
    """Basic errors: one row per load point, one column per PF, at the class's rounding interval."""
    pfs = list(sheet.curves)
    points: dict[tuple[str, str], ErrorPoint] = {}
    currents: dict[str, float] = {}
    for pf, curve in sheet.curves.items():
        for p in curve:
            points[(p.label, pf)] = p
            currents.setdefault(p.label, p.current_a)
    labels = sorted(currents, key=lambda label: currents[label])
    rows, failed = [], []
    for label in labels:
        cells = [label, f"{currents[label]:g}"]
        bad = False
        for pf in pfs:
            point = points.get((label, pf))
            if point is None:
                cells.append("")
                continue
            bad = bad or point.failed
            mark = " ✗" if point.failed else ""
            error, limit = format_error(point.error_pct, rounding), format_error(point.limit_pct, rounding)
            cells.append(f"{error} / ±{limit}{mark}")
        rows.append(cells)
        failed.append(bad)
    width = 0.76 / max(1, len(pfs))
    return Grid(("Load point", "I (A)", *(f"PF {pf}: error / limit (%)" for pf in pfs)), rows,
                (0.12, 0.12, *([width] * len(pfs))), failed)


def _summary_results(sheet: MeterSheet, rounding: float | None) -> list[Block]:
    values = [line for line in sheet.lines if line.verdict != "info"]
    failing = [line for line in sheet.lines if line.verdict == FAIL]
    tests = {line.test.split("[", 1)[0] for line in sheet.lines}
    blocks: list[Block] = [Paragraph(f"{len(tests)} tests, {len(values)} values judged against their limits, "
                                     f"{len(failing)} outside them; every value is listed on the following pages.")]
    if failing:
        shown = failing[:8]
        blocks.append(Grid(("Outside its limit", "Link", "Limits", "Value"),
                           [[line.quantity, line.link or "—", _limits(line, rounding),
                             _value(line, line.value, rounding)] for line in shown],
                           (0.52, 0.08, 0.2, 0.2), [True] * len(shown)))
        if len(failing) > len(shown):
            blocks.append(Note(f"... and {len(failing) - len(shown)} more on the following pages."))
    return blocks


# ------------------------------------------------------------------------------------ page sets


def _meter_label(sheet: MeterSheet) -> str:
    return f"meter No. {sheet.serial or NOT_READ} (address {sheet.address})"


def summary_blocks(data: CertificateData, sheet: MeterSheet) -> list[Block]:
    """The meter's one-page summary."""
    rounding = data.rounding_pct
    m = data.meter_type
    period = (f"{data.run_started_utc} → {data.sessions[-1].finished_utc or 'not finished'}" if data.sessions
              else data.run_started_utc)
    blocks: list[Block] = [
        *_letterhead(data),
        Title(f"Test certificate No. {sheet.number}"),
        *_simulation(data),
        Fields([("Customer", str((data.lab or {}).get("customer") or "not stated")),
                *_identity(data, sheet)[:4],
                ("Type, class", f"{m.get('nameplate', '')}"),
                ("Tested", f"{period} on bench {data.bench.get('name', '')} (run {data.run_id})"),
                ("Reference standard", _reference(data))]),
        Verdict(sheet.verdict),
    ]
    if sheet.curves:
        interval = f"{rounding:g} %" if rounding is not None else "as recorded"
        blocks += [Heading(f"Basic error (rounded to {interval}, the class's rounding interval)"),
                   _error_table(sheet, rounding),
                   Curves("", sheet.curves, float(m.get("imax_a", 1.0)), rounding, 150.0)]
    blocks += [*_summary_results(sheet, rounding), Note(_decision_rule(data)), _signature(data)]
    return blocks


def detail_blocks(data: CertificateData, sheet: MeterSheet) -> list[Block]:
    """The meter's detail pages, after its summary."""
    rounding = data.rounding_pct
    sources = _sources([*sheet.lines, *data.bench_lines])
    blocks: list[Block] = [
        Title(f"Test certificate No. {sheet.number}: details"),
        Note(f"Issued {data.issued_utc} from the run's journal; run started {data.run_started_utc}."),
        *(Alert(text) for text in data.overrides),
        Heading("Meter under test (as it identified itself)"), Fields(_identity(data, sheet)),
        Heading("Bench and instruments (traceability)"),
        Fields([*_run(data), ("Reference standard", _reference(data))]),
        _instruments(data),
        Heading("Conditions"), Fields(_conditions(data.conditions, data.meter_type)),
        Heading("Results"), _results(sheet.lines, sources, rounding),
    ]
    if data.bench_lines:
        blocks += [Heading("Bench checks (valid for every meter of the run)"),
                   _results(data.bench_lines, sources, rounding)]
    blocks += [Heading("Clauses and limit sources"), Sources(sources)]
    if any(UNCONFIRMED_MARK in s for s in sources):
        blocks.append(Note(UNCONFIRMED_NOTE))
    if sheet.incomplete:
        blocks.append(Alert("Not completed (the run was interrupted): " + ", ".join(sheet.incomplete)))
    if sheet.curves:
        blocks.append(Curves("Error curves", sheet.curves, float(data.meter_type.get("imax_a", 1.0)), rounding,
                             230.0))
    blocks.append(Statement("Uncertainty and decision rule", UNCERTAINTY_STATEMENT + _decision_rule(data)))
    return blocks


def batch_blocks(data: CertificateData) -> list[Block]:
    """The batch summary: every meter of the run with its certificate number, identity and verdict."""
    rows = [[sheet.number, sheet.position, sheet.address, sheet.serial or NOT_READ,
             " ".join(v for v in ((sheet.identity or {}).get("manufacturer"), (sheet.identity or {}).get("model"),
                                  (sheet.identity or {}).get("firmware")) if v) or NOT_READ,
             sheet.verdict.upper()] for sheet in data.sheets]
    return [
        *_letterhead(data),
        Title(f"Batch summary {data.number}"),
        *_simulation(data),
        Fields([("Customer", str((data.lab or {}).get("customer") or "not stated")),
                ("Meter type", str(data.meter_type.get("nameplate", ""))),
                ("Run", f"{data.run_id} on bench {data.bench.get('name', '')}, started {data.run_started_utc}"),
                ("Reference standard", _reference(data))]),
        Verdict(data.overall_verdict, "the batch"),
        Grid(("Certificate No.", "Position", "Address", "Meter number", "Manufacturer, model, software",
              "Verdict"), rows, (0.38, 0.06, 0.14, 0.14, 0.19, 0.09), [s.verdict == FAIL for s in data.sheets]),
        Note("Each meter's certificate follows: a one-page summary, then its details. "
             "Page numbers count within each certificate."),
        _signature(data),
    ]


def page_sets(data: CertificateData) -> list[PageSet]:
    """The batch summary, then per meter its summary and detail pages (one page set each)."""
    if not data.sheets:
        return [PageSet(data.number, "no meters",
                        [Title(f"Test certificate {data.number}"), Paragraph("No meter positions in this run.")])]
    return [PageSet(data.number, "batch summary", batch_blocks(data)),
            *(PageSet(sheet.number, _meter_label(sheet),
                      [*summary_blocks(data, sheet), PageBreak(), *detail_blocks(data, sheet)])
              for sheet in data.sheets)]
