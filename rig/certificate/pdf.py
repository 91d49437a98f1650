"""The certificate as PDF (reportlab): A4; the batch summary, then per meter its one-page summary and detail pages,
each certificate numbered 'page x of y' on its own with the meter named in every footer; a SIMULATION watermark
on a twin run; vector error curves. Laid out from the blocks of rig.certificate.layout; reportlab is imported
when a PDF is made, never at import.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rig.certificate.checks import INCOMPLETE
from rig.certificate.curve import curves_drawing
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
    Letterhead,
    Note,
    PageBreak,
    Paragraph,
    Results,
    Signature,
    Sources,
    Statement,
    Title,
    Verdict,
    page_sets,
)
from rig.results import FAIL, INFO, PASS

_VERDICT_COLOUR = {PASS: "#0a6b12", FAIL: "#b00020", INCOMPLETE: "#a15c00", INFO: "#555555"}
_FAILED_ROW = "#fde8ea"


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
        self.cell = ParagraphStyle("cell", parent=self.base, fontSize=8, leading=9.5)
        self.small = ParagraphStyle("small", parent=self.base, fontSize=7, leading=8.5,
                                    textColor=colors.HexColor("#444444"))
        self.h1 = ParagraphStyle("h1", parent=self.base, fontName=f"{font}-Bold", fontSize=14, leading=17,
                                 spaceBefore=2, spaceAfter=4)
        self.h2 = ParagraphStyle("h2", parent=self.base, fontName=f"{font}-Bold", fontSize=10.5, leading=13,
                                 spaceBefore=7, spaceAfter=3)
        self.lab = ParagraphStyle("lab", parent=self.base, fontName=f"{font}-Bold", fontSize=12, leading=14)
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
        from reportlab.platypus import PageBreak as Break
        from reportlab.platypus import Paragraph as P

        render: dict[type, Callable[[Any], list[Any]]] = {
            Title: lambda b: [self.p(b.text, self.h1)],
            Note: lambda b: [self.p(b.text, self.small), Spacer(1, 3)],
            Paragraph: lambda b: [self.p(b.text)],
            Verdict: lambda b: [P(f"Overall verdict for {html.escape(b.what)}: {self.verdict_text(b.verdict)}",
                                  self.h2)],
            Alert: lambda b: [self.p(b.text, self.warn)],
            Heading: lambda b: [self.p(b.text, self.h2)],
            Letterhead: lambda b: [self.letterhead(b)],
            Fields: lambda b: [self.fields(b)],
            Grid: lambda b: [Spacer(1, 3), self.grid_table(b)],
            Results: lambda b: [self.results(b)],
            Sources: lambda b: [self.p(f"[{n}] {text}", self.small) for n, text in enumerate(b.texts, start=1)],
            Curves: lambda b: [self.curves(b)],
            Statement: lambda b: [KeepTogether([self.p(b.heading, self.h2), self.p(b.text, self.small)])],
            Signature: lambda b: [self.signature(b)],
            PageBreak: lambda b: [Break()],
        }
        return render[type(block)](block)

    def letterhead(self, block: Letterhead) -> Any:
        from reportlab.lib.utils import ImageReader
        from reportlab.platypus import Image, KeepTogether, Table

        text = [self.p(block.name, self.lab), *(self.p(line, self.small) for line in block.lines)]
        if block.logo is None:
            return KeepTogether(text)
        w, h = ImageReader(io.BytesIO(block.logo[0])).getSize()
        height = 36.0  # points: a letterhead logo
        logo_w = height * w / h
        image = Image(io.BytesIO(block.logo[0]), width=logo_w, height=height)
        return Table([[text, image]], colWidths=[self.width - logo_w - 6, logo_w + 6],
                     style=[("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)])

    def fields(self, block: Fields) -> Any:
        from reportlab.platypus import TableStyle

        table = self.table([[self.p(k, self.cell), self.p(v, self.cell)] for k, v in block.rows], (0.24, 0.76),
                           header=False)
        table.setStyle(TableStyle([("BACKGROUND", (0, 0), (0, -1), self.colors.HexColor("#f0f0f0"))]))
        return table

    def grid_table(self, block: Grid) -> Any:
        from reportlab.platypus import TableStyle

        table = self.table([[self.p(c, self.cell) for c in row] for row in [block.header, *block.rows]],
                           block.widths, header=True, repeat=True)
        for n, failed in enumerate(block.failed, start=1):
            if failed:
                table.setStyle(TableStyle([("BACKGROUND", (0, n), (-1, n), self.colors.HexColor(_FAILED_ROW))]))
        return table

    def results(self, block: Results) -> Any:
        from reportlab.platypus import Paragraph as P
        from reportlab.platypus import TableStyle

        rows: list[list[Any]] = [[self.p(h) for h in RESULT_HEADER]]
        spans = []
        for group in block.groups:
            spans.append(len(rows))
            text = (f"<b>{html.escape(group.function)}</b>" + (f" <b>via {group.link}</b>" if group.link else "")
                    + (f" — {html.escape(group.description)}" if group.description else ""))
            rows.append([P(f"{text} <font size='7' color='#444444'>limits: {group.refs}</font>", self.cell),
                         *[""] * (len(RESULT_HEADER) - 1)])
            rows += [[self.p(r.quantity, self.cell), self.p(r.limits, self.cell), self.p(r.value, self.cell),
                      self.p(r.uncertainty, self.cell), self.p(r.tur, self.cell),
                      P(self.verdict_text(r.verdict), self.cell)] for r in group.rows]
        table = self.table(rows, RESULT_WIDTHS, header=True, repeat=True)
        for row in spans:
            table.setStyle(TableStyle([("SPAN", (0, row), (-1, row)),
                                       ("BACKGROUND", (0, row), (-1, row), self.colors.HexColor("#f6f6f6"))]))
        return table

    def curves(self, block: Curves) -> Any:
        from reportlab.platypus import KeepTogether

        drawing = curves_drawing(block.curves, width=self.width, height=block.height, imax_a=block.imax_a,
                                 rounding_pct=block.rounding_pct)
        return KeepTogether([self.p(block.heading, self.h2), drawing] if block.heading else [drawing])

    def signature(self, block: Signature) -> Any:
        from reportlab.platypus import KeepTogether, Spacer, Table

        line = "_" * 38
        cells = [[self.p(f"Issued {block.issued}", self.small), self.p("Signature", self.small)],
                 [self.p(f"{block.name}, {block.title}".strip(", "), self.base), self.p(line, self.base)],
                 [self.p(block.lab, self.small), self.p("", self.small)]]
        table = Table(cells, colWidths=[self.width * 0.55, self.width * 0.45],
                      style=[("LINEABOVE", (0, 0), (-1, 0), 0.6, self.colors.HexColor("#333333")),
                             ("TOPPADDING", (0, 0), (-1, -1), 1), ("BOTTOMPADDING", (0, 0), (-1, -1), 1)])
        return KeepTogether([Spacer(1, 6), table])


def _set_mark(key: int, number: str, meter: str) -> Any:
    """A zero-size flowable at the start of a page set: tells the canvas whose pages follow."""
    from reportlab.platypus import Flowable

    class Mark(Flowable):
        def wrap(self, *_args: Any) -> tuple[float, float]:
            return 0.0, 0.0

        def draw(self) -> None:
            self.canv.rig_page_set = (key, number, meter)  # type: ignore[attr-defined]  # the numbered canvas

    return Mark()


def _numbered_canvas(footer: Callable[[Any, tuple[int, str, str], int, int], None]) -> Any:
    """A canvas that holds its pages until the end, to number each page set 'page x of y' on its own."""
    from reportlab.pdfgen.canvas import Canvas

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.rig_pages: list[dict[str, Any]] = []
            self.rig_page_set: tuple[int, str, str] = (0, "", "")

        def showPage(self) -> None:
            self.rig_pages.append(dict(self.__dict__))
            self._startPage()  # type: ignore[attr-defined]  # reportlab's own page start (no public name)

        def save(self) -> None:
            totals: dict[int, int] = {}
            for state in self.rig_pages:
                key = state["rig_page_set"][0]
                totals[key] = totals.get(key, 0) + 1
            seen: dict[int, int] = {}
            for state in self.rig_pages:
                self.__dict__.update(state)
                key = self.rig_page_set[0]
                seen[key] = seen.get(key, 0) + 1
                footer(self, self.rig_page_set, seen[key], totals[key])
                super().showPage()
            super().save()

    return NumberedCanvas


def render_pdf(data: CertificateData) -> bytes:
    """The certificate as PDF (reportlab): the batch summary, then per meter its summary and details, A4."""
    from reportlab.lib.colors import Color
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import PageBreak as Break
    from reportlab.platypus import SimpleDocTemplate

    layout = _Layout(A4[0] - 30 * mm)
    story: list[Any] = []
    for key, page_set in enumerate(page_sets(data)):
        if key:
            story.append(Break())
        story.append(_set_mark(key, page_set.number, page_set.meter))
        story += [f for block in page_set.blocks for f in layout.flowables(block)]

    def watermark(canvas: Any, _doc: Any) -> None:
        if not data.simulation:
            return
        canvas.saveState()
        canvas.setFont(f"{layout.font}-Bold", 72)
        canvas.setFillColor(Color(0.8, 0.1, 0.1, alpha=0.12))
        canvas.translate(A4[0] / 2, A4[1] / 2)
        canvas.rotate(50)
        canvas.drawCentredString(0, -24, "SIMULATION")
        canvas.restoreState()

    def footer(canvas: Any, page_set: tuple[int, str, str], page: int, pages: int) -> None:
        canvas.saveState()
        canvas.setFont(layout.font, 7)
        _key, number, meter = page_set
        canvas.drawString(15 * mm, 10 * mm, f"Certificate {number} · {meter}")
        canvas.drawRightString(A4[0] - 15 * mm, 10 * mm, f"page {page} of {pages}")
        canvas.restoreState()

    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=12 * mm,
                                 bottomMargin=16 * mm, title=f"Test certificates {data.number}",
                                 author=str((data.lab or {}).get("name") or "meter HIL rig"),
                                 subject=f"run {data.run_id}")
    document.build(story, onFirstPage=watermark, onLaterPages=watermark, canvasmaker=_numbered_canvas(footer))
    return buffer.getvalue()
