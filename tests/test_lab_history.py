"""History across runs and benches: series per meter and point, the trend plot, and drift flags that
come before the point fails (rule in rig/history.py's docstring)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rig import history
from rig.cli import main
from rig.results import Journal, Record, judge

BASIC = "testplans/accuracy/test_accuracy.py::test_basic_error[PF1-Ib-{pos}]"
QUANTITY = "error at Ib PF 1"


def nightly(journal: Journal, run_id: str, bench: str, values: dict[str, float]) -> None:
    """One simulated nightly run: the basic error at Ib of each meter (address -> error %)."""
    journal.start_run(run_id, bench, {"bench": {"name": bench}})
    session = journal.start_session(run_id, {})
    for n, (address, value) in enumerate(values.items(), start=1):
        journal.add(run_id, Record(BASIC.format(pos=f"P{n}"), f"P{n}", QUANTITY, value, "%", -1.0, 1.0,
                                   judge(value, -1.0, 1.0), 10.0 * n, meter=address), session)


@pytest.fixture
def lab_db(tmp_path: Path) -> str:
    """Eight nightly runs on two benches: meter A drifts towards +1 %, meter B stays put, C is near its limit."""
    url = f"sqlite:///{tmp_path / 'lab.sqlite'}"
    journal = Journal(url)
    drifting = [0.10, 0.18, 0.25, 0.33, 0.41, 0.50, 0.57, 0.66]
    steady = [0.02, -0.01, 0.03, 0.00, 0.01, -0.02, 0.02, 0.01]
    for night in range(8):
        bench = "lab-a" if night % 2 == 0 else "lab-b"
        nightly(journal, f"2026110{night + 1}-020000-00000{night}", bench,
                {"000000000011": drifting[night], "000000000022": steady[night], "000000000033": 0.85})
    journal.close()
    return url


def run_history(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["history", *args])
    return result.exit_code, result.stdout, result.stderr


def _series(values: list[float], low: float = -1.0, high: float = 1.0) -> history.Series:
    points = [history.Point(f"run{i}", "b", "m", "P1", "t::test_x[P1]", "q", v, "%", low, high,
                            judge(v, low, high), f"2026-11-{i + 1:02d}T02:00:00+00:00") for i, v in enumerate(values)]
    return history.Series("m", "test_x", "q", points)


def test_drift_is_flagged_before_the_point_fails() -> None:
    rising = _series([0.10, 0.18, 0.25, 0.33, 0.41, 0.50])  # +0.08 %/run: reaches 1 % in about 6 runs
    (flag,) = history.assess([rising], horizon_runs=8)
    assert flag.kind == "drift" and "about 6" in flag.message
    assert history.assess([rising], horizon_runs=3) == [], "outside the horizon: not yet"
    assert all(p.verdict == "pass" for p in rising.points), "every value still passes"


def test_steady_noise_near_zero_is_not_flagged() -> None:
    assert history.assess([_series([0.02, -0.01, 0.03, 0.0, 0.01, -0.02, 0.02])]) == []


def test_near_limit_fail_and_falling_trends() -> None:
    (near,) = history.assess([_series([0.85])])
    assert near.kind == "near limit" and "85 %" in near.message
    (failed,) = history.assess([_series([0.5, 1.2])])
    assert failed.kind == "fail"
    (falling,) = history.assess([_series([-0.2, -0.35, -0.5, -0.62])], horizon_runs=5)
    assert falling.kind == "drift"
    returning = _series([0.6, 0.5, 0.4, 0.3])  # moving back towards the centre
    assert history.assess([returning], horizon_runs=5) == []


def test_history_across_runs_and_benches_with_trend_plot(lab_db: str, tmp_path: Path) -> None:
    plot = tmp_path / "trend.png"
    code, out, err = run_history("--db", lab_db, "--test", "test_basic_error", "--quantity", "Ib PF 1",
                                 "--plot", str(plot))
    assert code == 0, err
    assert "3 series, 8 run(s), 2 bench(es)" in out
    assert "DRIFT      000000000011 test_basic_error: error at Ib PF 1" in out
    assert "NEAR LIMIT 000000000033" in out
    assert "000000000022 test_basic_error: error at Ib PF 1: " not in out, "the steady meter is not flagged"
    png = plot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_history_filters(lab_db: str) -> None:
    code, out, _ = run_history("--db", lab_db, "--meter", "000000000022", "--json")
    assert code == 0
    data = json.loads(out)
    assert [s["meter"] for s in data["series"]] == ["000000000022"] and data["flags"] == []
    assert [p["bench"] for p in data["series"][0]["points"]][:2] == ["lab-a", "lab-b"]
    code, out, _ = run_history("--db", lab_db, "--since", "2099-01-01")
    assert code == 0 and "no records match" in out


def test_history_reads_every_run_folder_by_default(tmp_path: Path) -> None:
    for n, value in enumerate((0.1, 0.2)):
        journal = Journal.in_folder(tmp_path / f"run-{n}")
        nightly(journal, f"run-{n}", "lab-a", {"000000000011": value})
        journal.close()
    code, out, err = run_history("--reports", str(tmp_path))
    assert code == 0, err
    assert "1 series, 2 run(s), 1 bench(es)" in out


def test_history_bad_input_exits_2(tmp_path: Path, lab_db: str) -> None:
    assert run_history("--db", lab_db, "--since", "yesterday")[0] == 2
    code, _, err = run_history("--db", "nosuchdialect://x")
    assert code == 2 and "nosuchdialect" in err
    code, _, err = run_history("--reports", str(tmp_path / "empty"))
    assert code == 2 and "no journals" in err
    code, _, err = run_history("--db", lab_db, "--meter", "999999999999", "--plot", str(tmp_path / "x.png"))
    assert code == 2 and "nothing selected" in err


def test_a_perfect_zero_on_a_band_from_zero_is_not_near_its_limit() -> None:
    """[0, 15] pulses at no load: 0 is the ideal, so only values approaching 15 use up the limit."""
    assert history.assess([_series([0.0, 0.0, 0.0, 0.0, 0.0], 0.0, 15.0)]) == []
    (near,) = history.assess([_series([12.5], 0.0, 15.0)])
    assert near.kind == "near limit" and "83 %" in near.message
    (rising,) = history.assess([_series([1.0, 3.0, 5.0, 7.0, 9.0], 0.0, 15.0)], horizon_runs=5)
    assert rising.kind == "drift" and "+2 % per run" in rising.message
    # A band that does not hold 0 is judged from its centre, as before.
    (high,) = history.assess([_series([238.5], 220.0, 240.0)])
    assert high.kind == "near limit" and "85 %" in high.message
    assert history.assess([_series([230.0], 220.0, 240.0)]) == []


def test_history_plot_into_a_new_folder(lab_db: str, tmp_path: Path) -> None:
    plot = tmp_path / "plots" / "nightly" / "trend.png"
    code, _, err = run_history("--db", lab_db, "--plot", str(plot))
    assert code == 0, err
    assert plot.read_bytes().startswith(b"\x89PNG")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = run_history("--db", lab_db, "--plot", str(blocker / "trend.png"))
    assert code == 2 and f"--plot {blocker / 'trend.png'}: cannot write it" in err
