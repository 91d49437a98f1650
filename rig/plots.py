"""Error-curve plots for reports: error % against current, with the limit envelope (matplotlib, Agg).

Composition layer; takes numbers, returns PNG bytes; knows nothing of pytest.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CurvePoint:
    """One measured point of an error curve."""

    current_a: float
    error_pct: float | None  # None: no reading (the meter did not register)
    limit_pct: float
    label: str


def error_curves_png(curves: Mapping[str, Sequence[CurvePoint]], *, title: str, imax_a: float, ib_a: float) -> bytes:
    """One panel per power factor: error (%) vs current (A, log axis) with the ± limit envelope; PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.4 * len(curves) + 0.6, 3.4), dpi=90)
    axes = fig.subplots(1, len(curves), sharey=True, squeeze=False)[0]
    spans = [1.0]
    for ax, (pf_label, points) in zip(axes, curves.items()):
        spans.append(_draw(ax, points, ib_a=ib_a, imax_a=imax_a))
        ax.set_title(f"PF {pf_label}", fontsize=9)
        ax.set_xlabel("current (A)", fontsize=8)
    axes[0].set_ylabel("error (%)", fontsize=8)
    axes[0].set_ylim(-max(spans), max(spans))
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=9)
    # Fixed margins: tight_layout costs more than the rest of the drawing.
    fig.subplots_adjust(left=0.08, right=0.98, top=0.82, bottom=0.15, wspace=0.08)
    buffer = io.BytesIO()
    # Fast zlib level: the report embeds it once; size matters less than the seconds per position.
    fig.savefig(buffer, format="png", pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def _draw(ax: Any, points: Sequence[CurvePoint], *, ib_a: float, imax_a: float) -> float:
    """Draw one curve and its limit envelope; return the half-span the y axis needs."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ordered = sorted(points, key=lambda p: p.current_a)
    currents = [p.current_a for p in ordered]
    limits = [p.limit_pct for p in ordered]
    ax.step(currents, limits, where="post", color="tab:red", linewidth=1, label="limit")
    ax.step(currents, [-v for v in limits], where="post", color="tab:red", linewidth=1)
    measured = [(p, p.error_pct) for p in ordered if p.error_pct is not None]
    ax.plot([p.current_a for p, _ in measured], [e for _, e in measured], "o-", color="tab:blue", markersize=3,
            label="meter error")
    missing = [p for p in ordered if p.error_pct is None]
    if missing:
        ax.plot([p.current_a for p in missing], [0.0] * len(missing), "x", color="black", label="no reading")
    ax.axvline(ib_a, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlim(min(currents) * 0.8, imax_a * 1.25)
    # Plain tick labels at the test currents: log-axis mathtext labels cost more than the whole plot.
    ax.xaxis.set_major_locator(FixedLocator(sorted(set(currents))))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.tick_params(labelsize=7)
    ax.grid(True, which="major", linewidth=0.3)
    return max([*limits, *(abs(e) for _, e in measured)]) * 1.3


def _import_matplotlib() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # noqa: F401


class BackgroundRenderer:
    """Renders report figures in a worker process while the plan goes on measuring.

    `submit(key, ...)` starts a render; `result(key)` waits for it. Drawing is CPU-bound Python, so a
    thread would not help; one spawned worker overlaps it with the measurements on a second core.
    """

    def __init__(self) -> None:
        self._pool: Any = None
        self._futures: dict[object, Any] = {}

    def _executor(self) -> Any:
        if self._pool is None:
            import concurrent.futures
            import multiprocessing

            # spawn, not fork: the twin's server threads must not be copied into the worker.
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def warm_up(self) -> None:
        """Start the worker and import matplotlib there now, off the measurement path."""
        self._futures.setdefault(("warm-up",), self._executor().submit(_import_matplotlib))

    def submit_curves(self, key: object, curves: Mapping[str, Sequence[CurvePoint]], *, title: str,
                      imax_a: float, ib_a: float) -> None:
        """Start rendering `error_curves_png(...)` under `key` (once per key)."""
        if key not in self._futures:
            self._futures[key] = self._executor().submit(
                error_curves_png, {k: list(v) for k, v in curves.items()}, title=title, imax_a=imax_a, ib_a=ib_a
            )

    def submitted(self, key: object) -> bool:
        """True when a render for `key` was started."""
        return key in self._futures

    def result(self, key: object) -> bytes:
        """The PNG rendered under `key` (waits for it)."""
        png: bytes = self._futures[key].result()
        return png

    def close(self) -> None:
        """Stop the worker."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
