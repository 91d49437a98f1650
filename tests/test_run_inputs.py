"""Bad inputs to `rig run` and to the lab commands' output paths: exit 2 with one line naming what is wrong,
nothing left behind, and `reports/latest` kept on the last run that really ran."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

RIG = [sys.executable, "-m", "rig.cli"]
PLAN = "testplans/accuracy/test_accuracy.py::test_basic_error"
ONE_POINT = ["--", "-kPF1-Ib-"]


def rig(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RIG, *args], capture_output=True, text=True, timeout=300, env=dict(os.environ))


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr[-2000:]
    return lines[0]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real run of a single point: reports/latest points at it."""
    folder = tmp_path_factory.mktemp("reports")
    proc = rig("run", PLAN, "--reports", str(folder), *ONE_POINT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    latest = (folder / "latest").resolve()
    return {"folder": folder, "run": latest}


@pytest.mark.parametrize(("ambient", "named"), [("9999,-5", "temperature_c 9999 °C is outside -40..70"),
                                                ("23,-5", "humidity_pct -5 % is outside 0..100"),
                                                ("23", "give TEMP_C,RH_PCT")])
def test_ambient_out_of_range_is_refused_before_anything_is_created(tmp_path: Path, ambient: str,
                                                                     named: str) -> None:
    line = one_error_line(rig("run", PLAN, "--ambient", ambient, "--reports", str(tmp_path / "r")))
    assert named in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("text", ["- meter.connected\n- yes\n", "just a sentence\n", "{meter.connectd: yes}\n",
                                  "[" * 50_000 + "]" * 50_000, None],
                         ids=["list", "text", "unknown-topic", "deep", "dev-zero"])
def test_answers_file_that_is_not_a_mapping_of_topics_is_refused(tmp_path: Path, text: str | None) -> None:
    answers = tmp_path / "answers.yaml"
    if text is None:
        answers = Path("/dev/zero")
    else:
        answers.write_text(text)
    line = one_error_line(rig("run", PLAN, "--operator-answers", str(answers), "--reports", str(tmp_path / "r")))
    assert f"operator answers file {answers}" in line
    assert not (tmp_path / "r").exists()


def test_refused_run_does_not_move_latest(reports: dict[str, Any]) -> None:
    proc = rig("run", PLAN, "--set", "twin.reference.calibration_due=2020-01-01", "--reports",
               str(reports["folder"]), *ONE_POINT)
    assert proc.returncode == 2 and "refused:" in proc.stderr and "expired" in proc.stderr
    assert (reports["folder"] / "latest").resolve() == reports["run"], "latest still shows the last real run"


def test_report_out_creates_its_folder_or_says_why_not(reports: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "new" / "deeper" / "cert.html"
    proc = rig("report", str(reports["run"]), "--out", str(target))
    assert proc.returncode == 0, proc.stderr
    assert "<html" in target.read_text().lower()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = one_error_line(rig("report", str(reports["run"]), "--out", str(blocker / "cert.html")))
    assert f"--out {blocker / 'cert.html'}: cannot write it" in line
