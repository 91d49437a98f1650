"""What a run shows: progress lines with their parameter ids intact and a labelled, steady time left, a
limit failure as one line with its value and limits (no pytest or pluggy internals), report.html rows that
open on the measurement, and every measurement as JUnit <property> elements."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from fixtures.progress import Estimate, Progress

GAIN = "twin.meter.metering.gain_error_pct=1.5"  # outside class 1's +-1 % at every point
SELECTION = "test_basic_error[PF1-Ib-P1] or test_basic_error[PF1-0.05Ib-P1] or test_reply_timing"


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory: pytest.TempPathFactory, rig_run: Callable[..., Any]) -> Any:
    """One real `rig run`: two accuracy points (one outside its limit) and the DL/T 698.45 reply timing over
    UART and BLE (ids `[uart-P1]`, `[ble-P1]`)."""
    reports = tmp_path_factory.mktemp("console")
    return rig_run("testplans/accuracy", "testplans/dlt698", "--set", GAIN, "--", "-k", SELECTION, reports=reports)


def test_progress_lines_keep_parameter_ids_and_no_glued_dots(failing_run: Any) -> None:
    lines = failing_run.output.splitlines()
    points = [line for line in lines if re.match(r"\[\s*\d+/\d+\] (PASS|FAIL)", line)]
    assert any("test_reply_timing[uart-P1]" in line for line in points), failing_run.output[-2000:]
    assert any("test_reply_timing[ble-P1]" in line for line in points)
    assert not any(line.startswith((".[", "F[")) for line in lines), "pytest's status letter glued to a line"
    assert "[100%]" not in failing_run.output
    assert re.search(r"ETA after the next point$", points[0]), points[0]
    assert all(re.search(r"ETA \d+:\d\d:\d\d wall$", line) for line in points[1:-1]), points
    assert points[-1].endswith("done")


def test_a_limit_failure_is_one_line_with_value_and_limits(failing_run: Any) -> None:
    assert failing_run.exit_code == 1
    out = failing_run.output
    assert "P1 error at Ib PF 1 = 1.5 % (limits -1 .. 1): fail" in out
    for internal in ("CallInfo", "pluggy", "_pytest", "force_exception", "Traceback"):
        assert internal not in out, f"{internal} in the console output"
    assert len(out.splitlines()) < 40, out


def test_report_html_row_opens_on_the_measurement(failing_run: Any) -> None:
    page = (failing_run.folder / "report.html").read_text()
    assert "CallInfo" not in page and "_pytest" not in page
    details = page.split("Measured (limits): verdict")
    assert len(details) > 1, "a row's details start with what was measured"
    assert any(d.lstrip("\\n ").startswith("P1 error at Ib PF 1 = 1.5 % (limits -1 .. 1): fail") for d in details)


def test_junit_has_a_property_per_measurement(failing_run: Any) -> None:
    tree = ET.parse(failing_run.folder / "junit.xml")
    case = next(c for c in tree.iter("testcase") if c.get("name") == "test_basic_error[PF1-Ib-P1]")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert float(props["P1 error at Ib PF 1 [%]"]) == pytest.approx(1.5, abs=0.05)
    assert props["P1 error at Ib PF 1 [%] limits: verdict"] == "-1.0 .. 1.0: fail"
    failure = case.find("failure")
    assert failure is not None and "CallInfo" not in (failure.text or "") + (failure.get("message") or "")
    timing = [c for c in tree.iter("testcase") if c.get("name", "").startswith("test_reply_timing")]
    assert timing and all(list(c.iter("property")) for c in timing), "every measured point has properties"


def _report(nodeid: str, outcome: str, measured: list[str] | None = None) -> Any:
    return SimpleNamespace(nodeid=nodeid, outcome=outcome, when="call", passed=outcome == "passed",
                           failed=outcome == "failed", rig_measured=measured or [])


def test_progress_line_escapes_ids_and_labels_the_clock() -> None:
    """Without escaping, rich takes `[voltage-PF1-P1]` for markup and prints nothing of it."""
    progress = Progress(SimpleNamespace())  # type: ignore[arg-type]  # no bench: bench time reads 0
    buffer = io.StringIO()
    progress.console = Console(file=buffer, highlight=False, soft_wrap=True, width=200)
    progress.total = 3
    for nodeid in ("plans/test_x.py::test_v[voltage-PF1-P1]", "plans/test_x.py::test_u[uart-P1]"):
        progress.pytest_runtest_logreport(_report(nodeid, "failed", ["P1 voltage = 9 V (limits 0 .. 1): fail"]))
    out = buffer.getvalue()
    assert "test_v[voltage-PF1-P1]" in out and "test_u[uart-P1]" in out
    assert out.splitlines()[0].endswith("ETA after the next point")
    assert re.search(r"ETA 0:00:0\d wall$", out.splitlines()[2]), out
    assert "         P1 voltage = 9 V (limits 0 .. 1): fail" in out
    progress.on_wall_clock = True
    progress.total = 4
    assert "bench time left ~" in progress.line(_report("t::x[P1]", "passed"))


def test_time_left_is_steady_over_one_long_point() -> None:
    """Ten points of 1 s, one of 30 s, then 1 s each: the estimate does not jump with it."""
    estimate = Estimate()
    elapsed, lefts = 0.0, []
    for n, step in enumerate([1.0] * 10 + [30.0] + [1.0] * 5, start=1):
        elapsed += step
        lefts.append(estimate.update(elapsed, n, 40 - n))
    assert lefts[9] == pytest.approx(30.0, rel=0.01)  # 30 points left at 1 s
    assert lefts[10] < 2 * lefts[9], "one long point moves the estimate, it does not multiply it by 30"
    assert max(lefts[10:]) < 2.5 * lefts[9], "nor over the points after it"
