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
    """Eight nightly runs on bench lab-a: meter A drifts towards +1 %, meter B stays put, C is near its limit.
    Bench lab-b has meters with the same addresses, steady, every other night."""
    url = f"sqlite:///{tmp_path / 'lab.sqlite'}"
    journal = Journal(url)
    drifting = [0.10, 0.18, 0.25, 0.33, 0.41, 0.50, 0.57, 0.66]
    steady = [0.02, -0.01, 0.03, 0.00, 0.01, -0.02, 0.02, 0.01]
    for night in range(8):
        nightly(journal, f"2026110{night + 1}-020000-00000{night}", "lab-a",
                {"000000000011": drifting[night], "000000000022": steady[night], "000000000033": 0.85})
        if night % 2:
            nightly(journal, f"2026110{night + 1}-030000-00000{night}", "lab-b",
                    {"000000000011": steady[night], "000000000022": steady[night]})
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
    assert "5 series, 12 run(s), 2 bench(es)" in out
    assert "DRIFT      lab-a 000000000011 test_basic_error[PF1-Ib]: error at Ib PF 1" in out
    assert "lab-b 000000000011 test_basic_error[PF1-Ib]: error at Ib PF 1: " not in out, \
        "the same address on another bench is another meter: its steady values are not flagged"
    assert "NEAR LIMIT lab-a 000000000033" in out
    assert "000000000022 test_basic_error[PF1-Ib]: error at Ib PF 1: " not in out, "the steady meter is not flagged"
    png = plot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_history_filters(lab_db: str) -> None:
    code, out, _ = run_history("--db", lab_db, "--meter", "000000000022", "--json")
    assert code == 0
    data = json.loads(out)
    assert [(s["bench"], s["meter"]) for s in data["series"]] == [("lab-a", "000000000022"),
                                                                  ("lab-b", "000000000022")]
    assert data["flags"] == []
    assert [len(s["points"]) for s in data["series"]] == [8, 4]
    code, out, _ = run_history("--db", lab_db, "--bench", "lab-b", "--json")
    assert {s["bench"] for s in json.loads(out)["series"]} == {"lab-b"}
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


def _run_folder(reports: Path, run_id: str, value: float, *, serial: str | None = None) -> Path:
    """A finished run's folder as `rig run` leaves it: its journal and results.json naming the run."""
    folder = reports / run_id
    journal = Journal.in_folder(folder)
    journal.start_run(run_id, "lab-a", {"positions": [{"name": "P1", "address": "000000000011", "serial": "twin",
                                                       "serial_number": serial}]})
    session = journal.start_session(run_id, {})
    journal.add(run_id, Record(BASIC.format(pos="P1"), "P1", QUANTITY, value, "%", -1.0, 1.0,
                               judge(value, -1.0, 1.0), 10.0, meter="000000000011"), session)
    journal.close()
    (folder / "results.json").write_text(json.dumps({"run_id": run_id}))
    return folder


def test_reports_latest_is_not_another_run(tmp_path: Path) -> None:
    """reports/latest links the newest run folder: its journal is read once, so the newest run counts once."""
    for n, value in enumerate((0.1, 0.2, 0.3)):
        _run_folder(tmp_path, f"2026110{n + 1}-020000-00000{n}", value)
    (tmp_path / "latest").symlink_to("20261103-020000-000002", target_is_directory=True)
    code, out, err = run_history("--reports", str(tmp_path), "--json")
    assert code == 0, err
    (series,) = json.loads(out)["series"]
    assert [p["value"] for p in series["points"]] == [0.1, 0.2, 0.3]


def test_a_run_in_two_journals_counts_once(tmp_path: Path) -> None:
    """A run journaled in its folder and copied into the lab database is one run, whichever is read first."""
    folder = _run_folder(tmp_path, "20261101-020000-000000", 0.4)
    lab = f"sqlite:///{tmp_path / 'lab.sqlite'}"
    journal = Journal(lab)
    nightly(journal, "20261101-020000-000000", "lab-a", {"000000000011": 0.4})
    journal.close()
    code, out, err = run_history("--db", lab, "--db", f"sqlite:///{folder / 'journal.sqlite'}")
    assert code == 0, err
    assert "1 series, 1 run(s), 1 bench(es)" in out


def test_meters_told_apart_by_serial_number(tmp_path: Path) -> None:
    """Same bench, same address, another serial number (a meter replaced on the position): another series."""
    _run_folder(tmp_path, "20261101-020000-000000", 0.1, serial="SN-0001")
    _run_folder(tmp_path, "20261102-020000-000000", 0.2, serial="SN-0002")
    code, out, err = run_history("--reports", str(tmp_path), "--json")
    assert code == 0, err
    assert sorted(s["meter"] for s in json.loads(out)["series"]) == ["000000000011 s/n SN-0001",
                                                                     "000000000011 s/n SN-0002"]


def test_plot_has_one_panel_per_series_on_run_dates() -> None:
    """Every selected series gets its own panel (no "first 8"); its x axis is the runs' dates."""
    import io

    from matplotlib import image

    many = [history.Series(f"m{n}", "test_x", "q", _series([0.1 * n, 0.2, 1.5]).points, bench="b")
            for n in range(10)]
    png = history.trend_png(many, [])
    height, width = image.imread(io.BytesIO(png)).shape[:2]
    assert height > 1200 and width >= 1200, "ten panels in two columns"
    single = history.trend_png(many[:1], [])
    assert image.imread(io.BytesIO(single)).shape[0] < 400
    x, labels = history._x_axis(many[0])
    assert labels is None and x[0].isoformat().startswith("2026-11-01")
    same_time = history.Series("m", "t", "q", [p.__class__(**{**p.__dict__, "recorded_utc": "2026-11-01T02:00:00"})
                                               for p in many[0].points])
    x, labels = history._x_axis(same_time)
    assert labels == ["run0", "run1", "run2"], "runs journaled in the same second: run ids label the axis"
    with pytest.raises(ValueError, match="at most 36 panels"):
        history.trend_png(many * 4, [])


def test_latest_names_the_newest_run(tmp_path: Path) -> None:
    """`rig verify latest`, `rig report latest` and `rig run --resume latest` mean reports/latest's run."""
    from rig.cli.common import locate

    _run_folder(tmp_path, "20261101-020000-000000", 0.1)
    (tmp_path / "latest").symlink_to("20261101-020000-000000", target_is_directory=True)
    _journal, run_id, folder = locate("latest", str(tmp_path), None)
    assert run_id == "20261101-020000-000000" and folder is not None
    result = CliRunner().invoke(main, ["verify", "latest", "--reports", str(tmp_path)])
    assert result.exit_code != 2 and "latest" not in result.output, result.output
    assert "20261101-020000-000000" in result.output
    (tmp_path / "20261101-020000-000000" / "run.json").write_text(json.dumps({"run_id": "20261101-020000-000000"}))
    result = CliRunner().invoke(main, ["run", "--resume", "latest", "--reports", str(tmp_path)])
    assert result.exit_code == 2
    assert "cannot resume '20261101-020000-000000'" in result.stderr, result.stderr
