"""Error curves as a vector drawing (reportlab graphics): one panel per power factor, error (%) against current
(log axis) inside the limit envelope, each point with its expanded uncertainty as a bar and failing points
marked. The same drawing goes into the PDF as it is and into the HTML as SVG. reportlab is imported on use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rig.certificate.lines import ErrorPoint

BLUE, RED, GREY = "#1f4e9a", "#b00020", "#888888"
_FONT = "Helvetica"


def _rect(x: float, y: float, width: float, height: float, *, fill: str | None, stroke: str,
          stroke_width: float = 1.0) -> Any:
    """A rectangle (filled with `fill`, or hollow)."""
    from reportlab.graphics.shapes import Rect
    from reportlab.lib.colors import HexColor

    rect = Rect(x, y, width, height)
    rect.fillColor = HexColor(fill) if fill else None
    rect.strokeColor = HexColor(stroke)
    rect.strokeWidth = stroke_width
    return rect


def _log_x(current: float, lo: float, hi: float, x0: float, width: float) -> float:
    return x0 + width * (math.log10(current) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))


def _span(points: Sequence[ErrorPoint]) -> float:
    values = [p.limit_pct for p in points]
    values += [abs(p.error_pct) + (p.uncertainty_pct or 0.0) for p in points if p.error_pct is not None]
    return max([1e-9, *values]) * 1.25


def _ticks(points: Sequence[ErrorPoint], lo: float, hi: float, x0: float, width: float) -> list[tuple[float, str]]:
    """Tick positions at the test currents, labelled by load point, leaving out labels that would overlap."""
    out: list[tuple[float, str]] = []
    for p in sorted(points, key=lambda p: p.current_a):
        x = _log_x(p.current_a, lo, hi, x0, width)
        if not out or x - out[-1][0] > 24:
            out.append((x, p.label))
    return out


def _panel(drawing: Any, pf: str, points: Sequence[ErrorPoint], box: tuple[float, float, float, float],
           span: float, imax_a: float) -> None:
    from reportlab.graphics.shapes import Circle, Line, PolyLine, String
    from reportlab.lib.colors import HexColor

    x0, y0, width, height = box
    ordered = sorted(points, key=lambda p: p.current_a)
    lo, hi = ordered[0].current_a * 0.7, max(imax_a, ordered[-1].current_a) * 1.3

    def x(current: float) -> float:
        return _log_x(current, lo, hi, x0, width)

    def y(error: float) -> float:
        return y0 + height * (0.5 + max(-span, min(span, error)) / (2 * span))

    drawing.add(_rect(x0, y0, width, height, fill=None, stroke=GREY, stroke_width=0.5))
    drawing.add(Line(x0, y(0), x0 + width, y(0), strokeColor=HexColor(GREY), strokeWidth=0.3))
    for sign in (1, -1):  # the limit envelope, a step at each test current
        steps: list[float] = []
        for n, p in enumerate(ordered):
            right = x(ordered[n + 1].current_a) if n + 1 < len(ordered) else x0 + width
            steps += [x(p.current_a) if n else x0, y(sign * p.limit_pct), right, y(sign * p.limit_pct)]
        drawing.add(PolyLine(steps, strokeColor=HexColor(RED), strokeWidth=0.8))
    measured = [p for p in ordered if p.error_pct is not None]
    if len(measured) > 1:
        drawing.add(PolyLine([v for p in measured for v in (x(p.current_a), y(p.error_pct or 0.0))],
                             strokeColor=HexColor(BLUE), strokeWidth=0.7))
    for p in measured:
        px, py = x(p.current_a), y(p.error_pct or 0.0)
        if p.uncertainty_pct:
            top, bottom = y((p.error_pct or 0.0) + p.uncertainty_pct), y((p.error_pct or 0.0) - p.uncertainty_pct)
            drawing.add(Line(px, bottom, px, top, strokeColor=HexColor(BLUE), strokeWidth=0.6))
            for end in (top, bottom):
                drawing.add(Line(px - 2, end, px + 2, end, strokeColor=HexColor(BLUE), strokeWidth=0.6))
        if p.failed:
            drawing.add(_rect(px - 3, py - 3, 6, 6, fill=RED, stroke=RED))
        else:
            drawing.add(Circle(px, py, 1.8, fillColor=HexColor(BLUE), strokeColor=HexColor(BLUE)))
    for p in ordered:
        if p.error_pct is None:  # no reading: a cross on the axis
            px = x(p.current_a)
            drawing.add(Line(px - 3, y(0) - 3, px + 3, y(0) + 3, strokeColor=HexColor(RED)))
            drawing.add(Line(px - 3, y(0) + 3, px + 3, y(0) - 3, strokeColor=HexColor(RED)))
    for tx, label in _ticks(ordered, lo, hi, x0, width):
        drawing.add(Line(tx, y0, tx, y0 - 2, strokeColor=HexColor(GREY), strokeWidth=0.5))
        drawing.add(String(tx, y0 - 9, label, fontName=_FONT, fontSize=6, textAnchor="middle"))
    drawing.add(String(x0 + width / 2, y0 + height + 3, f"PF {pf}", fontName=_FONT, fontSize=7.5,
                       textAnchor="middle"))


def curves_drawing(curves: Mapping[str, Sequence[ErrorPoint]], *, width: float, height: float,
                   imax_a: float, rounding_pct: float | None) -> Any:
    """The error curves as one reportlab Drawing of `width` x `height` points."""
    from reportlab.graphics.shapes import Circle, Drawing, Group, Line, String
    from reportlab.lib.colors import HexColor

    drawing = Drawing(width, height)
    panels = [(pf, pts) for pf, pts in curves.items() if pts]
    if not panels:
        return drawing
    span = max(_span(pts) for _pf, pts in panels)
    left, bottom, legend = 34.0, 24.0, 12.0
    gap = 8.0
    panel_w = (width - left - 4 - gap * (len(panels) - 1)) / len(panels)
    panel_h = height - bottom - legend - 12
    for n, (pf, pts) in enumerate(panels):
        _panel(drawing, pf, pts, (left + n * (panel_w + gap), bottom, panel_w, panel_h), span, imax_a)
    step = rounding_pct or span / 2
    for tick in (-span * 0.8, 0.0, span * 0.8):
        value = round(tick / step) * step
        ty = bottom + panel_h * (0.5 + value / (2 * span))
        drawing.add(String(left - 3, ty - 2, f"{value:g}", fontName=_FONT, fontSize=6, textAnchor="end"))
        drawing.add(Line(left - 2, ty, left, ty, strokeColor=HexColor(GREY), strokeWidth=0.5))
    drawing.add(Group(String(0, 0, "error (%)", fontName=_FONT, fontSize=6.5, textAnchor="middle"),
                      transform=(0, 1, -1, 0, 8, bottom + panel_h / 2)))  # rotated a quarter turn
    drawing.add(String(left + (width - left) / 2, 4, "current (load point)", fontName=_FONT, fontSize=6.5,
                       textAnchor="middle"))
    ly = height - legend + 2
    drawing.add(Line(left, ly + 2, left + 14, ly + 2, strokeColor=HexColor(RED), strokeWidth=0.8))
    drawing.add(String(left + 17, ly, "limit", fontName=_FONT, fontSize=6.5))
    drawing.add(Circle(left + 52, ly + 2, 1.8, fillColor=HexColor(BLUE), strokeColor=HexColor(BLUE)))
    drawing.add(String(left + 57, ly, "error with its uncertainty U (k=2)", fontName=_FONT, fontSize=6.5))
    drawing.add(_rect(left + 170, ly - 1, 6, 6, fill=RED, stroke=RED))
    drawing.add(String(left + 179, ly, "outside its limit", fontName=_FONT, fontSize=6.5))
    return drawing


def curves_svg(drawing: Any) -> str:
    """The drawing as an SVG element (for the HTML certificate)."""
    from reportlab.graphics import renderSVG

    text: str = renderSVG.drawToString(drawing)
    return text[text.index("<svg"):]
