"""The certificate as one self-contained HTML page (CSS, logo and SVG error curves inline): the batch summary, then
per meter its one-page summary and details, each headed by its certificate number and meter; a SIMULATION
watermark on a twin run. Laid out from the blocks of rig.certificate.layout.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Sequence
from typing import Any

from rig.certificate.curve import curves_drawing, curves_svg
from rig.certificate.data import CertificateData
from rig.certificate.layout import (
    RESULT_HEADER,
    Alert,
    Curves,
    Fields,
    Grid,
    Heading,
    Letterhead,
    Note,
    PageBreak,
    PageSet,
    Paragraph,
    Results,
    Signature,
    Sources,
    Statement,
    Title,
    Verdict,
    page_sets,
)

_CSS = """
body { font-family: 'DejaVu Sans', Arial, sans-serif; font-size: 10pt; color: #111; margin: 2em; }
h1 { font-size: 16pt; margin: 0 0 .3em 0; } h2 { font-size: 12pt; margin: 1.2em 0 .4em 0; }
table { border-collapse: collapse; width: 100%; margin-bottom: .6em; }
th, td { border: 1px solid #bbb; padding: 3px 5px; text-align: left; vertical-align: top; }
th { background: #eee; } td.num { text-align: right; white-space: nowrap; }
.pass { color: #0a6b12; font-weight: bold; } .fail { color: #b00020; font-weight: bold; }
.info { color: #555; } .incomplete { color: #a15c00; font-weight: bold; }
.sheet { page-break-before: always; position: relative; } .sheet:first-of-type { page-break-before: auto; }
.page { page-break-before: always; }
.sheethead { font-size: 8pt; color: #444; border-bottom: 1px solid #999; margin-bottom: .8em; }
.verdict { font-size: 14pt; padding: .4em; border: 2px solid #111; display: inline-block; }
.warn { border: 2px solid #b00020; padding: .5em; background: #fff3f3; }
.curves svg { width: 100%; height: auto; }
.small { font-size: 8pt; color: #444; } tr.group td { background: #f6f6f6; } tr.failed td { background: #fde8ea; }
.lab { font-size: 13pt; font-weight: bold; } .letterhead img { float: right; height: 48px; }
.signature td { border: none; border-top: 1px solid #333; width: 50%; }
.watermark { position: fixed; top: 40%; left: 10%; font-size: 90pt; font-weight: bold; color: rgba(200, 20, 20, .1);
             transform: rotate(-40deg); pointer-events: none; z-index: 10; }
"""

esc = html.escape


def _verdict_span(verdict: str) -> str:
    return f"<span class='{esc(verdict)}'>{esc(verdict.upper())}</span>"


def _fields(block: Fields) -> str:
    return "<table>" + "".join(f"<tr><th style='width:24%'>{esc(k)}</th><td>{esc(v)}</td></tr>"
                               for k, v in block.rows) + "</table>"


def _grid(block: Grid) -> str:
    def row(cells: Sequence[str], tag: str, failed: bool = False) -> str:
        return (f"<tr{' class=failed' if failed else ''}>" + "".join(f"<{tag}>{esc(c)}</{tag}>" for c in cells)
                + "</tr>")

    failed = list(block.failed) + [False] * (len(block.rows) - len(block.failed))
    return ("<table>" + row(block.header, "th") + "".join(row(r, "td", f) for r, f in zip(block.rows, failed))
            + "</table>")


def _results(block: Results) -> str:
    body = ["<tr>" + "".join(f"<th>{esc(h)}</th>" for h in RESULT_HEADER) + "</tr>"]
    for group in block.groups:
        body.append(f"<tr class='group'><td colspan='{len(RESULT_HEADER)}'><b>{esc(group.function)}</b>"
                    f"{' <b>via ' + esc(group.link) + '</b>' if group.link else ''}"
                    f"{' — ' + esc(group.description) if group.description else ''} "
                    f"<span class='small'>limits: {group.refs}</span></td></tr>")
        body += [f"<tr><td>{esc(r.quantity)}</td><td class='num'>{esc(r.limits)}</td>"
                 f"<td class='num'>{esc(r.value)}</td><td class='num'>{esc(r.uncertainty)}</td>"
                 f"<td class='num'>{esc(r.tur)}</td><td>{_verdict_span(r.verdict)}</td></tr>" for r in group.rows]
    return "<table>" + "".join(body) + "</table>"


def _curves(block: Curves) -> str:
    drawing = curves_drawing(block.curves, width=760.0, height=block.height * 1.3, imax_a=block.imax_a,
                             rounding_pct=block.rounding_pct)
    heading = f"<h2>{esc(block.heading)}</h2>" if block.heading else ""
    return f"{heading}<div class='curves'>{curves_svg(drawing)}</div>"


def _letterhead(block: Letterhead) -> str:
    logo = ""
    if block.logo is not None:
        logo = (f"<img alt='logo' src='data:{esc(block.logo[1])};base64,"
                f"{base64.b64encode(block.logo[0]).decode('ascii')}'>")
    lines = "".join(f"<div class='small'>{esc(line)}</div>" for line in block.lines)
    return f"<div class='letterhead'>{logo}<div class='lab'>{esc(block.name)}</div>{lines}</div>"


def _signature(block: Signature) -> str:
    return (f"<table class='signature'><tr><td><span class='small'>Issued {esc(block.issued)}</span><br>"
            f"{esc(block.name)}{', ' + esc(block.title) if block.title else ''}<br>"
            f"<span class='small'>{esc(block.lab)}</span></td><td><span class='small'>Signature</span><br><br>"
            "</td></tr></table>")


_RENDER: dict[type, Callable[[Any], str]] = {
    Title: lambda b: f"<h1>{esc(b.text)}</h1>",
    Note: lambda b: f"<p class='small'>{esc(b.text)}</p>",
    Paragraph: lambda b: f"<p>{esc(b.text)}</p>",
    Verdict: lambda b: f"<p class='verdict'>Overall verdict for {esc(b.what)}: {_verdict_span(b.verdict)}</p>",
    Alert: lambda b: f"<p class='warn'>{esc(b.text)}</p>",
    Heading: lambda b: f"<h2>{esc(b.text)}</h2>",
    Letterhead: _letterhead,
    Fields: _fields,
    Grid: _grid,
    Results: _results,
    Sources: lambda b: "<ol class='small'>" + "".join(f"<li>{esc(t)}</li>" for t in b.texts) + "</ol>",
    Curves: _curves,
    Statement: lambda b: f"<h2>{esc(b.heading)}</h2><p>{esc(b.text)}</p>",
    Signature: _signature,
    PageBreak: lambda b: "</div><div class='page'>",
}


def _page_set(page_set: PageSet) -> str:
    head = f"<div class='sheethead'>Certificate {esc(page_set.number)} · {esc(page_set.meter)}</div>"
    return (f"<div class='sheet'>{head}<div class='page'>" + "".join(_RENDER[type(b)](b) for b in page_set.blocks)
            + "</div></div>")


def render_html(data: CertificateData) -> str:
    """The certificate as one self-contained HTML page (CSS, logo and curves inline; a page set per meter)."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Test certificates {esc(data.number)}"
             f"</title><style>{_CSS}</style></head><body>"]
    if data.simulation:
        parts.append("<div class='watermark'>SIMULATION</div>")
    parts += [_page_set(page_set) for page_set in page_sets(data)]
    parts.append("</body></html>")
    return "".join(parts)
