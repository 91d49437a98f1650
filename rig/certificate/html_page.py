"""The certificate as one self-contained HTML page (CSS and pictures inline; a page set per meter), laid out from
the blocks of rig.certificate.layout.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Sequence
from typing import Any

from rig.certificate.data import CertificateData
from rig.certificate.layout import (
    RESULT_HEADER,
    Alert,
    Curves,
    Fields,
    Grid,
    Heading,
    Note,
    Paragraph,
    Results,
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
.sheet { page-break-before: always; } .sheet:first-of-type { page-break-before: auto; }
.verdict { font-size: 14pt; padding: .4em; border: 2px solid #111; display: inline-block; }
.warn { border: 2px solid #b00020; padding: .5em; background: #fff3f3; }
.small { font-size: 8pt; color: #444; } tr.group td { background: #f6f6f6; }
"""

esc = html.escape


def _verdict_span(verdict: str) -> str:
    return f"<span class='{esc(verdict)}'>{esc(verdict.upper())}</span>"


def _fields(block: Fields) -> str:
    return "<table>" + "".join(f"<tr><th style='width:28%'>{esc(k)}</th><td>{esc(v)}</td></tr>"
                               for k, v in block.rows) + "</table>"


def _grid(block: Grid) -> str:
    def row(cells: Sequence[str], tag: str) -> str:
        return "<tr>" + "".join(f"<{tag}>{esc(c)}</{tag}>" for c in cells) + "</tr>"

    return "<table>" + row(block.header, "th") + "".join(row(r, "td") for r in block.rows) + "</table>"


def _results(block: Results) -> str:
    body = ["<tr>" + "".join(f"<th>{esc(h)}</th>" for h in RESULT_HEADER) + "</tr>"]
    for group in block.groups:
        body.append(f"<tr class='group'><td colspan='{len(RESULT_HEADER)}'><b>{esc(group.function)}</b>"
                    f"{' — ' + esc(group.description) if group.description else ''} "
                    f"<span class='small'>limits: {group.refs}</span></td></tr>")
        body += [f"<tr><td>{esc(r.quantity)}</td><td class='num'>{esc(r.limits)}</td>"
                 f"<td class='num'>{esc(r.value)}</td><td class='num'>{esc(r.uncertainty)}</td>"
                 f"<td class='num'>{esc(r.tur)}</td><td>{_verdict_span(r.verdict)}</td></tr>" for r in group.rows]
    return "<table>" + "".join(body) + "</table>"


def _curves(block: Curves) -> str:
    encoded = base64.b64encode(block.png).decode("ascii")
    return (f"<h2>{esc(block.heading)}</h2><img alt='{esc(block.alt)}' style='max-width:100%' "
            f"src='data:image/png;base64,{encoded}'>")


_RENDER: dict[type, Callable[[Any], str]] = {
    Title: lambda b: f"<h1>{esc(b.text)}</h1>",
    Note: lambda b: f"<p class='small'>{esc(b.text)}</p>",
    Paragraph: lambda b: f"<p>{esc(b.text)}</p>",
    Verdict: lambda b: f"<p class='verdict'>Overall verdict for this meter: {_verdict_span(b.verdict)}</p>",
    Alert: lambda b: f"<p class='warn'>{esc(b.text)}</p>",
    Heading: lambda b: f"<h2>{esc(b.text)}</h2>",
    Fields: _fields,
    Grid: _grid,
    Results: _results,
    Sources: lambda b: "<ol class='small'>" + "".join(f"<li>{esc(t)}</li>" for t in b.texts) + "</ol>",
    Curves: _curves,
    Statement: lambda b: f"<h2>{esc(b.heading)}</h2><p>{esc(b.text)}</p>",
}


def render_html(data: CertificateData) -> str:
    """The certificate as one self-contained HTML page (CSS and pictures inline; a page set per meter)."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Test certificate {esc(data.number)}"
             f"</title><style>{_CSS}</style></head><body>"]
    for blocks in page_sets(data):
        parts.append("<div class='sheet'>" + "".join(_RENDER[type(b)](b) for b in blocks) + "</div>")
    parts.append("</body></html>")
    return "".join(parts)
