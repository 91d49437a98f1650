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


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _worker_init(parent_pid: int) -> None:
    """Runs first in every render worker: the worker belongs to the run that started it.

    Ctrl-C at the terminal reaches the whole process group; the run decides when its workers stop,
    so the worker ignores SIGINT/SIGHUP. The kernel kills the worker when its parent dies, however it
    dies (SIGKILL included), so no ~100 MB matplotlib process outlives a killed run (Linux; elsewhere
    the worker still ends when the run closes the pool).
    """
    import ctypes
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the run died before the line above took effect
        os._exit(0)


class BackgroundRenderer:
    """Renders report figures in a worker process while the plan goes on measuring.

    `submit(key, ...)` starts a render; `result(key)` waits for it. Drawing is CPU-bound Python, so a
    thread would not help; one spawned worker overlaps it with the measurements on a second core.
    The worker never outlives the run (see `_worker_init`); `close()` kills it at once.
    """

    def __init__(self) -> None:
        self._pool: Any = None
        self._results: dict[object, Any] = {}

    def _executor(self) -> Any:
        if self._pool is None:
            import multiprocessing
            import os
            import signal
            import threading

            # The worker ignores Ctrl-C and hang-ups (_worker_init), but a spawned interpreter takes a while to
            # get there: on a loaded machine a Ctrl-C to the process group could kill it first, the pool would
            # start another, and closing the pool could then hang the end of the run. Ignored signals stay
            # ignored across exec, so the worker is started with them ignored from its first instruction.
            main = threading.current_thread() is threading.main_thread()
            previous = [(s, signal.signal(s, signal.SIG_IGN)) for s in (signal.SIGINT, signal.SIGHUP)] if main else []
            try:
                # spawn, not fork: the twin's server threads must not be copied into the worker.
                self._pool = multiprocessing.get_context("spawn").Pool(
                    processes=1, initializer=_worker_init, initargs=(os.getpid(),)
                )
            finally:
                for signum, handler in previous:
                    signal.signal(signum, handler)
        return self._pool

    def warm_up(self) -> None:
        """Start the worker and import matplotlib there now, off the measurement path."""
        if ("warm-up",) not in self._results:
            self._results[("warm-up",)] = self._executor().apply_async(_import_matplotlib)

    def submit_curves(self, key: object, curves: Mapping[str, Sequence[CurvePoint]], *, title: str,
                      imax_a: float, ib_a: float) -> None:
        """Start rendering `error_curves_png(...)` under `key` (once per key)."""
        if key not in self._results:
            self._results[key] = self._executor().apply_async(
                error_curves_png, ({k: list(v) for k, v in curves.items()},),
                {"title": title, "imax_a": imax_a, "ib_a": ib_a},
            )

    def submitted(self, key: object) -> bool:
        """True when a render for `key` was started."""
        return key in self._results

    def result(self, key: object) -> bytes:
        """The PNG rendered under `key` (waits for it)."""
        png: bytes = self._results[key].get()
        return png

    def close(self) -> None:
        """Stop the worker now. A render nobody fetched is not waited for: the end of a run (above all an
        interrupted one) must not wait for a drawing."""
        pool, self._pool = self._pool, None
        self._results.clear()
        if pool is not None:
            pool.terminate()
            pool.join()
