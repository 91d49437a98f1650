"""Error-curve plots for reports: error % against current, with the limit envelope (matplotlib, Agg).

Composition layer; takes numbers, returns PNG bytes; knows nothing of pytest.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CurvePoint:
    """One measured point of an error curve."""

    current_a: float
    error_pct: float | None  # None: no reading (the meter did not register)
    limit_pct: float
    label: str


def error_curve_png(points: Sequence[CurvePoint], *, title: str, imax_a: float, ib_a: float) -> bytes:
    """Error (%) vs current (A, log axis) with the ± limit envelope; PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    ordered = sorted(points, key=lambda p: p.current_a)
    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    ax = fig.add_subplot()
    currents = [p.current_a for p in ordered]
    limits = [p.limit_pct for p in ordered]
    ax.step(currents, limits, where="post", color="tab:red", linewidth=1, label="limit")
    ax.step(currents, [-v for v in limits], where="post", color="tab:red", linewidth=1)
    measured = [(p, p.error_pct) for p in ordered if p.error_pct is not None]
    ax.plot([p.current_a for p, _ in measured], [e for _, e in measured], "o-", color="tab:blue",
            label="meter error")
    for p, error in measured:
        ax.annotate(p.label, (p.current_a, error), textcoords="offset points", xytext=(0, 6),
                    ha="center", fontsize=7)
    missing = [p for p in ordered if p.error_pct is None]
    if missing:
        ax.plot([p.current_a for p in missing], [0.0] * len(missing), "x", color="black", label="no reading")
    ax.axvline(ib_a, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlim(min(currents) * 0.8, imax_a * 1.25)
    span = max([*limits, *(abs(e) for _, e in measured)]) * 1.3
    ax.set_ylim(-span, span)
    ax.set_xlabel("current (A)")
    ax.set_ylabel("error (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", linewidth=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
