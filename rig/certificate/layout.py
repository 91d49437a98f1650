"""What a certificate page set says, in order, as blocks (title, fields, tables, results, curves, ...): the one
place that decides the content, so that the HTML and the PDF carry the same information. No markup here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rig.certificate.data import CertificateData, MeterSheet
from rig.certificate.lines import TestLine
from rig.plots import error_curves_png

UNCERTAINTY_STATEMENT = (
    "The expanded uncertainty of measurement U is stated per basic-error point with coverage factor k = 2 "
    "(about 95 % coverage) as the bench's test uncertainty; TUR is the limit divided by U. "
    "Decision rule: simple acceptance (a value on or inside its limit passes; no guard band), "
    "so where TUR is low a pass close to the limit carries a correspondingly higher risk."
)


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
    """The meter's overall verdict, highlighted."""

    verdict: str


class Alert(_Text):
    """Something a reader must not miss (an override, an unfinished run)."""


class Heading(_Text):
    """A section heading."""


@dataclass(frozen=True)
class Fields:
    """Name / value rows."""

    rows: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Grid:
    """A table with a header row; `widths` are fractions of the text width."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    widths: Sequence[float]


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
    """The lines of one test function, with its description and the limit sources they use ([1], [2])."""

    function: str
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
    """The error curves picture, with its heading."""

    heading: str
    png: bytes
    alt: str


@dataclass(frozen=True)
class Statement:
    """A heading and a paragraph kept together."""

    heading: str
    text: str


Block = (Title | Note | Paragraph | Verdict | Alert | Heading | Fields | Grid | Results | Sources | Curves
         | Statement)
RESULT_HEADER = ("Quantity", "Limits", "Value", "U (k=2)", "TUR", "Verdict")
RESULT_WIDTHS = (0.40, 0.15, 0.15, 0.10, 0.08, 0.12)


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


def _clause_text(line: TestLine) -> str:
    return line.clause + (" (value marked 'check': to be confirmed against the standard)" if line.clause_check
                          else "")


def _sources(lines: Sequence[TestLine]) -> list[str]:
    """The distinct clause / limit sources, numbered in order of first use."""
    return list(dict.fromkeys(_clause_text(line) for line in lines))


def _results(lines: Sequence[TestLine], sources: Sequence[str]) -> Results:
    """Consecutive lines of the same test function grouped, each group with its limit sources."""
    grouped: list[tuple[str, str, list[TestLine]]] = []
    for line in lines:
        function = line.test.split("[", 1)[0]
        if grouped and grouped[-1][0] == function:
            grouped[-1][2].append(line)
        else:
            grouped.append((function, line.description, [line]))
    return Results([
        ResultGroup(function, description,
                    ", ".join(f"[{n}]" for n in sorted({sources.index(_clause_text(line)) + 1 for line in group})),
                    [ResultRow(line.quantity, _limits(line), _num(line.value, line.unit),
                               "—" if line.uncertainty_pct is None else f"{line.uncertainty_pct:g} %",
                               "—" if line.tur is None else f"{line.tur:.1f}", line.verdict) for line in group])
        for function, description, group in grouped])


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


def _identity(data: CertificateData, sheet: MeterSheet) -> list[tuple[str, str]]:
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


# ------------------------------------------------------------------------------------ page sets


def _curves_png(data: CertificateData, sheet: MeterSheet) -> bytes | None:
    if sheet.curves and sheet.curves_png is None:
        meter = data.meter_type
        sheet.curves_png = error_curves_png(
            sheet.curves, title=f"{sheet.position} ({sheet.address}) {meter.get('nameplate', '')}",
            imax_a=float(meter.get("imax_a", 1.0)), ib_a=float(meter.get("ib_a", 1.0)))
    return sheet.curves_png


def sheet_blocks(data: CertificateData, sheet: MeterSheet) -> list[Block]:
    """The page set of one meter, in order."""
    sources = _sources([*sheet.lines, *data.bench_lines])
    blocks: list[Block] = [
        Title(f"Test certificate {data.number} — meter {sheet.address}"),
        Note(f"Issued {data.issued_utc} from the run's journal; run started {data.run_started_utc}."),
        Verdict(sheet.verdict),
        *(Alert(text) for text in data.overrides),
        Heading("Meter under test"), Fields(_identity(data, sheet)),
        Heading("Bench and instruments (traceability)"), Fields(_run(data)), _instruments(data),
        Heading("Conditions"), Fields(_conditions(data.conditions, data.meter_type)),
        Heading("Results"), _results(sheet.lines, sources),
    ]
    if data.bench_lines:
        blocks += [Heading("Bench checks (valid for every meter of the run)"), _results(data.bench_lines, sources)]
    blocks += [Heading("Clauses and limit sources"), Sources(sources)]
    if sheet.incomplete:
        blocks.append(Alert("Not completed (the run was interrupted): " + ", ".join(sheet.incomplete)))
    png = _curves_png(data, sheet)
    if png:
        blocks.append(Curves("Error curves", png, f"error curves of {sheet.address}"))
    blocks.append(Statement("Uncertainty and decision rule", UNCERTAINTY_STATEMENT))
    return blocks


def page_sets(data: CertificateData) -> list[list[Block]]:
    """One page set per meter (a single page saying so when the run has no meter positions)."""
    if not data.sheets:
        return [[Title(f"Test certificate {data.number}"), Paragraph("No meter positions in this run.")]]
    return [sheet_blocks(data, sheet) for sheet in data.sheets]
