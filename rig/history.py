"""History across runs and benches (composition layer): a point's values over time per meter, a trend
plot, and drift flags raised before a point fails.

A series is one bench x one meter (its address, and its serial number where the run recorded one) x one
test function x one quantity: the same address on two benches is two meters. Each run counts once, however
many journals hold it (a run folder and reports/latest pointing at it, or a folder and the lab database).

Drift rule (per series, over the runs that measured it, oldest first):
a value's *limit usage* u = (value - nominal) / (the limit on its side - nominal), signed by the side
(|u| <= 1 inside). The nominal is 0 when the band holds 0 (errors, counts, times: [0, 15] pulses at no
load has its ideal at 0, not at 7.5), else the band's centre. One-sided limits are not scaled and only
flagged when they fail;
- `fail`: the last value is outside its limits;
- `near limit`: the last |u| >= margin (default 0.8, i.e. 80 % of the limit used);
- `drift`: with at least MIN_TREND_RUNS runs, the least-squares line of u over the last TREND_WINDOW
  runs, extrapolated `horizon` runs ahead (default 5), reaches |u| >= 1 while moving outwards.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rig.results import FAIL, Journal, effective_records

MIN_TREND_RUNS = 4
TREND_WINDOW = 10


@dataclass(frozen=True)
class Point:
    """One value of a series: which run, bench and meter, when, and its limits."""

    run_id: str
    bench: str
    meter: str | None
    position: str | None
    test: str
    quantity: str
    value: float | None
    unit: str
    low: float | None
    high: float | None
    verdict: str
    recorded_utc: str
    serial: str | None = None  # the meter's serial number where the run's header records it


@dataclass
class Series:
    """A point's values across runs for one meter on one bench."""

    meter: str
    function: str
    quantity: str
    points: list[Point]
    bench: str = ""

    @property
    def label(self) -> str:
        """`lab-a 000000000001 test_basic_error: error at Ib PF 1`."""
        return f"{self.bench} {self.meter} {self.function}: {self.quantity}".lstrip()

    @property
    def unit(self) -> str:
        """The unit of the values."""
        return self.points[-1].unit


@dataclass(frozen=True)
class Flag:
    """A drift or limit warning on a series."""

    series: Series
    kind: str  # fail / near limit / drift
    message: str


def collect(journals: Sequence[Journal], *, meter: str | None = None, test: str | None = None,
            quantity: str | None = None, since_utc: str | None = None) -> list[Point]:
    """The selected records of every run of every journal (superseded ones left out), each run once.

    A run held by two journals (its folder's and the lab database's, or a folder reached twice) is read
    from the first that holds it.
    """
    out: list[Point] = []
    taken: set[str] = set()
    for journal in journals:
        rows = journal.history(meter=meter, test=test, quantity=quantity, since_utc=since_utc)
        effective: dict[str, set[int]] = {}
        here = {run.run_id for run, _ in rows} - taken
        for run, stored in rows:
            if run.run_id not in here:
                continue
            if run.run_id not in effective:
                effective[run.run_id] = {s.seq for s in effective_records(journal, run.run_id)[0]}
            if stored.seq not in effective[run.run_id]:
                continue
            r = stored.record
            out.append(Point(run_id=run.run_id, bench=run.bench, meter=r.meter, position=r.position, test=r.test,
                             quantity=r.quantity, value=r.value, unit=r.unit, low=r.low, high=r.high,
                             verdict=r.verdict, recorded_utc=stored.recorded_utc,
                             serial=_serial(run.meta, r.position)))
        taken |= here
    out.sort(key=lambda p: (p.recorded_utc, p.run_id))
    return out


def _serial(meta: dict[str, Any], position: str | None) -> str | None:
    """The meter's serial number as the run's header records it for the position (`serial_number`; a
    position's `serial` is its serial port, not the meter), if any."""
    for entry in meta.get("positions") or ():
        if isinstance(entry, dict) and entry.get("name") == position and entry.get("serial_number"):
            return str(entry["serial_number"])
    return None


def meter_identity(point: Point) -> str:
    """The meter as history tells meters apart: its address (or position, for bench-wide records), with its
    serial number where the run recorded one."""
    who = point.meter or point.position or "bench"
    return f"{who} s/n {point.serial}" if point.serial and point.serial != who else who


def test_name(point: Point) -> str:
    """The test function with its parameters but not the position (`test_x[uart-P1-1]` -> `test_x[uart-1]`):
    the same test over UART and over BLE are two series; the same test on P1 and P2 is told apart by meter."""
    name = point.test.rpartition("::")[2]
    function, bracket, params = name.partition("[")
    if not bracket:
        return function
    kept = [p for p in params.rstrip("]").split("-") if p != point.position]
    return f"{function}[{'-'.join(kept)}]" if kept else function


def group(points: Sequence[Point]) -> list[Series]:
    """Series per bench, meter identity, test function and quantity."""
    series: dict[tuple[str, str, str, str], Series] = {}
    for point in points:
        key = (point.bench, meter_identity(point), test_name(point), point.quantity)
        if key not in series:
            series[key] = Series(key[1], key[2], key[3], points=[], bench=key[0])
        series[key].points.append(point)
    return list(series.values())


def nominal(point: Point) -> float:
    """Where a value of a two-sided band is furthest from trouble: 0 when the band holds 0, else its centre."""
    assert point.low is not None and point.high is not None
    return 0.0 if point.low <= 0.0 <= point.high else (point.low + point.high) / 2.0


def _side(point: Point, upwards: bool) -> float:
    """Distance from the nominal to the limit above (upwards) or below it."""
    assert point.low is not None and point.high is not None
    return point.high - nominal(point) if upwards else nominal(point) - point.low


def usage(point: Point) -> float | None:
    """Limit usage u of a value: 0 at the nominal of a two-sided band, +-1 at its limits."""
    if point.value is None or point.low is None or point.high is None or point.high <= point.low:
        return None
    offset = point.value - nominal(point)
    side = _side(point, offset >= 0)
    if side <= 0:  # a limit at the nominal itself ([0, 15] below 0): only its failing shows, as a fail
        return None if offset else 0.0
    return offset / side


def _slope(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares line (slope, intercept)."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        return 0.0, mean_y
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sxx
    return slope, mean_y - slope * mean_x


def assess(series: Sequence[Series], *, horizon_runs: int = 5, margin: float = 0.8) -> list[Flag]:
    """The flags of the module docstring's rule."""
    flags: list[Flag] = []
    for s in series:
        last = s.points[-1]
        if last.verdict == FAIL:
            flags.append(Flag(s, "fail", f"last value {_fmt(last.value)} {last.unit} is outside its limits "
                                         f"({_fmt(last.low)} .. {_fmt(last.high)}), run {last.run_id}"))
            continue
        u_last = usage(last)
        if u_last is None:
            continue
        if abs(u_last) >= margin:
            used, at = abs(u_last) * 100, margin * 100
            flags.append(Flag(s, "near limit", f"last value {_fmt(last.value)} {last.unit} uses {used:.0f} % "
                                               f"of its limit (flag at {at:.0f} %)"))
        window = [(i, u) for i, p in enumerate(s.points) if (u := usage(p)) is not None][-TREND_WINDOW:]
        if len(window) < MIN_TREND_RUNS:
            continue
        slope, intercept = _slope([float(i) for i, _ in window], [u for _, u in window])
        now = window[-1][0]
        projected = slope * (now + horizon_runs) + intercept
        outwards = slope != 0 and math.copysign(1.0, slope) == math.copysign(1.0, projected)
        if abs(projected) >= 1.0 and outwards:
            fitted_now = slope * now + intercept
            runs_left = max(0.0, (math.copysign(1.0, slope) - fitted_now) / slope)
            per_run = slope * _side(last, slope > 0)
            flags.append(Flag(s, "drift", f"trend {per_run:+.3g} {last.unit} per run projects the limit "
                                          f"in about {runs_left:.1f} run(s) (within the {horizon_runs}-run horizon)"))
    return flags


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.5g}"


def table(series: Sequence[Series], flags: Sequence[Flag]) -> str:
    """Plain text: one block per series (its values run by run) and the flags first."""
    if not series:
        return "no records match"
    lines = []
    for flag in flags:
        lines.append(f"{flag.kind.upper():<10} {flag.series.label}: {flag.message}")
    if flags:
        lines.append("")
    for s in series:
        lines.append(s.label)
        for p in s.points:
            lines.append(f"  {p.recorded_utc}  {p.run_id:<24} {p.bench:<16} {_fmt(p.value):>10} {p.unit:<6} "
                         f"({_fmt(p.low)} .. {_fmt(p.high)}) {p.verdict}")
    runs = {p.run_id for s in series for p in s.points}
    benches = {p.bench for s in series for p in s.points}
    lines.append(f"{len(series)} series, {len(runs)} run(s), {len(benches)} bench(es), {len(flags)} flag(s)")
    return "\n".join(lines)


def to_json(series: Sequence[Series], flags: Sequence[Flag]) -> dict[str, Any]:
    """What `rig history --json` prints."""
    return {
        "series": [{"bench": s.bench, "meter": s.meter, "test": s.function, "quantity": s.quantity, "unit": s.unit,
                    "points": [{"run_id": p.run_id, "bench": p.bench, "recorded_utc": p.recorded_utc,
                                "value": p.value, "low": p.low, "high": p.high, "verdict": p.verdict}
                               for p in s.points]} for s in series],
        "flags": [{"bench": f.series.bench, "meter": f.series.meter, "test": f.series.function,
                   "quantity": f.series.quantity, "kind": f.kind, "message": f.message} for f in flags],
    }


MAX_PANELS = 36


def _x_axis(s: Series) -> tuple[list[Any], list[str] | None]:
    """Run dates for a series whose runs have distinct times, else run order labelled with the run ids."""
    when = [dt.datetime.fromisoformat(p.recorded_utc) for p in s.points]
    if len(set(when)) == len(when):
        return when, None
    return list(range(len(s.points))), [p.run_id for p in s.points]


def trend_png(series: Sequence[Series], flags: Sequence[Flag]) -> bytes:
    """One panel per series: its values over the runs' dates (run ids where runs share a time), its limits
    dashed red, failing values marked, flagged series named in the panel's title."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import dates as _dates
    from matplotlib.figure import Figure

    mdates: Any = _dates  # matplotlib.dates has no type hints

    if len(series) > MAX_PANELS:
        raise ValueError(f"{len(series)} series selected; the plot draws at most {MAX_PANELS} panels (narrow it "
                         "with --bench, --meter, --test or --quantity)")
    flagged = {id(f.series): f.kind for f in flags}
    columns = 1 if len(series) == 1 else 2
    rows = math.ceil(len(series) / columns)
    fig = Figure(figsize=(6.0 * columns, 2.6 * rows + 0.4), dpi=100)
    axes = fig.subplots(rows, columns, squeeze=False)
    for n, s in enumerate(series):
        ax = axes[n // columns][n % columns]
        xs, run_labels = _x_axis(s)
        values = [math.nan if p.value is None else p.value for p in s.points]
        ax.plot(xs, values, "o-", markersize=3, color="tab:blue")
        failed = [(x, v) for x, v, p in zip(xs, values, s.points) if p.verdict == FAIL]
        if failed:
            ax.plot([x for x, _ in failed], [v for _, v in failed], "x", color="tab:red", markersize=7,
                    label="fail")
        for bound in sorted({b for b in (s.points[-1].low, s.points[-1].high) if b is not None}):
            ax.axhline(bound, color="tab:red", linestyle="--", linewidth=0.8)
        if run_labels is None:
            locator = mdates.AutoDateLocator()
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        else:
            ax.set_xticks(xs, run_labels, rotation=30, ha="right", fontsize=6)
        mark = f" [{flagged[id(s)].upper()}]" if id(s) in flagged else ""
        ax.set_title(textwrap.fill(f"{s.label}{mark}", 90), fontsize=6, color="tab:red" if mark else "black")
        ax.set_ylabel(s.unit or "value", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.grid(True, linewidth=0.3)
    for n in range(len(series), rows * columns):
        axes[n // columns][n % columns].set_visible(False)
    fig.suptitle(f"History: {len(series)} series; x: run date (UTC) or run id; limits red dashed, fails x",
                 fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
