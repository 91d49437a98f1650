"""The certificate as PDF (reportlab): A4, a page set per meter, page numbers in the footer, laid out from the
blocks of rig.certificate.layout. reportlab is imported when a PDF is made, never at import.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rig.certificate.checks import INCOMPLETE
from rig.certificate.data import CertificateData
from rig.certificate.layout import (
    RESULT_HEADER,
    RESULT_WIDTHS,
    Alert,
    Block,
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
from rig.results import FAIL, INFO, PASS

_VERDICT_COLOUR = {PASS: "#0a6b12", FAIL: "#b00020", INCOMPLETE: "#a15c00", INFO: "#555555"}


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


class _Layout:
    """reportlab flowables for each kind of block, in the certificate's styles."""

    def __init__(self, width: float) -> None:
        from reportlab.lib import colors
        from reportlab.lib.styles import ParagraphStyle
        from reportlab.platypus import TableStyle

        self.colors = colors
        self.width = width
        self.font = font = _pdf_font()
        self.base = ParagraphStyle("base", fontName=font, fontSize=8.5, leading=10.5)
        self.small = ParagraphStyle("small", parent=self.base, fontSize=7, leading=8.5,
                                    textColor=colors.HexColor("#444444"))
        self.h1 = ParagraphStyle("h1", parent=self.base, fontName=f"{font}-Bold", fontSize=14, leading=17,
                                 spaceAfter=4)
        self.h2 = ParagraphStyle("h2", parent=self.base, fontName=f"{font}-Bold", fontSize=10.5, leading=13,
                                 spaceBefore=8, spaceAfter=3)
        self.warn = ParagraphStyle("warn", parent=self.base, textColor=colors.HexColor("#b00020"),
                                   borderColor=colors.HexColor("#b00020"), borderWidth=1, borderPadding=4,
                                   spaceBefore=4, spaceAfter=6)
        self.grid = TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
                                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                                ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3),
                                ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5)])
        self.header = TableStyle([("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8"))])

    def p(self, text: str, style: Any = None) -> Any:
        from reportlab.platypus import Paragraph as P

        return P(html.escape(text), style or self.base)

    def verdict_text(self, verdict: str) -> str:
        return f"<font color='{_VERDICT_COLOUR.get(verdict, '#111111')}'><b>{html.escape(verdict.upper())}</b></font>"

    def table(self, rows: list[list[Any]], widths: Sequence[float], *, header: bool, repeat: bool = False) -> Any:
        from reportlab.platypus import Table

        table = Table(rows, colWidths=[f * self.width for f in widths], repeatRows=1 if repeat else 0)
        table.setStyle(self.grid)
        if header:
            table.setStyle(self.header)
        return table

    def flowables(self, block: Block) -> list[Any]:
        """The flowables of one block."""
        from reportlab.platypus import KeepTogether, Spacer
        from reportlab.platypus import Paragraph as P

        render: dict[type, Callable[[Any], list[Any]]] = {
            Title: lambda b: [self.p(b.text, self.h1)],
            Note: lambda b: [self.p(b.text, self.small), Spacer(1, 4)],
            Paragraph: lambda b: [self.p(b.text)],
            Verdict: lambda b: [P(f"Overall verdict for this meter: {self.verdict_text(b.verdict)}", self.h2)],
            Alert: lambda b: [self.p(b.text, self.warn)],
            Heading: lambda b: [self.p(b.text, self.h2)],
            Fields: lambda b: [self.fields(b)],
            Grid: lambda b: [Spacer(1, 3), self.table([[self.p(c) for c in row] for row in [b.header, *b.rows]],
                                                      b.widths, header=True)],
            Results: lambda b: [self.results(b)],
            Sources: lambda b: [self.p(f"[{n}] {text}", self.small) for n, text in enumerate(b.texts, start=1)],
            Curves: lambda b: [self.curves(b)],
            Statement: lambda b: [KeepTogether([self.p(b.heading, self.h2), self.p(b.text, self.small)])],
        }
        return render[type(block)](block)

    def fields(self, block: Fields) -> Any:
        from reportlab.platypus import TableStyle

        table = self.table([[self.p(k), self.p(v)] for k, v in block.rows], (0.28, 0.72), header=False)
        table.setStyle(TableStyle([("BACKGROUND", (0, 0), (0, -1), self.colors.HexColor("#f0f0f0"))]))
        return table

    def results(self, block: Results) -> Any:
        from reportlab.platypus import Paragraph as P
        from reportlab.platypus import TableStyle

        rows: list[list[Any]] = [[self.p(h) for h in RESULT_HEADER]]
        spans = []
        for group in block.groups:
            spans.append(len(rows))
            text = f"<b>{html.escape(group.function)}</b>" + (f" — {html.escape(group.description)}"
                                                              if group.description else "")
            rows.append([P(f"{text} <font size='7' color='#444444'>limits: {group.refs}</font>", self.base),
                         *[""] * (len(RESULT_HEADER) - 1)])
            rows += [[self.p(r.quantity), self.p(r.limits), self.p(r.value), self.p(r.uncertainty), self.p(r.tur),
                      P(self.verdict_text(r.verdict), self.base)] for r in group.rows]
        table = self.table(rows, RESULT_WIDTHS, header=True, repeat=True)
        for row in spans:
            table.setStyle(TableStyle([("SPAN", (0, row), (-1, row)),
                                       ("BACKGROUND", (0, row), (-1, row), self.colors.HexColor("#f6f6f6"))]))
        return table

    def curves(self, block: Curves) -> Any:
        from reportlab.platypus import Image, KeepTogether

        image = Image(io.BytesIO(block.png))
        scale = min(1.0, self.width / image.drawWidth)
        image.drawWidth, image.drawHeight = image.drawWidth * scale, image.drawHeight * scale
        return KeepTogether([self.p(block.heading, self.h2), image])


def render_pdf(data: CertificateData) -> bytes:
    """The certificate as PDF (reportlab): a page set per meter, A4, page numbers in the footer."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import PageBreak, SimpleDocTemplate

    layout = _Layout(A4[0] - 30 * mm)
    story: list[Any] = []
    for index, blocks in enumerate(page_sets(data)):
        if index:
            story.append(PageBreak())
        story += [f for block in blocks for f in layout.flowables(block)]

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(layout.font, 7)
        canvas.drawString(15 * mm, 10 * mm, f"{data.number} · {data.bench.get('name', '')} · page {doc.page}")
        canvas.restoreState()

    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=14 * mm,
                                 bottomMargin=16 * mm, title=f"Test certificate {data.number}",
                                 author="meter HIL rig", subject=f"run {data.run_id}")
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
