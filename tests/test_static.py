"""The project's own static checks run with the suite: ruff on everything, mypy strict on the library
layers (drivers/, rig/), and the layer rules (drivers never import rig/pytest; no time.sleep outside
the wall clock; no raw SCPI in plans)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> list[str]:
    if shutil.which(name) is None and not (Path(sys.executable).parent / name).exists():
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return [sys.executable, "-m", name]


def test_ruff_is_clean() -> None:
    proc = subprocess.run([*_tool("ruff"), "check", "--quiet", str(ROOT)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_mypy_strict_on_library_layers() -> None:
    proc = subprocess.run([*_tool("mypy")], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:]


def _sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_drivers_never_import_the_rig_or_pytest() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+(rig|fixtures|testplans|pytest)\b", re.MULTILINE)
    offenders = [str(p.relative_to(ROOT)) for p in _sources("drivers") if pattern.search(p.read_text())]
    assert offenders == []


def test_no_time_sleep_outside_the_wall_clock() -> None:
    pattern = re.compile(r"(^|[^.\w])time\.sleep\(")
    offenders = [str(p.relative_to(ROOT)) for folder in ("drivers", "rig", "fixtures", "testplans")
                 for p in _sources(folder) if pattern.search(p.read_text()) and p.name != "clock.py"]
    assert offenders == []


def test_plans_hold_no_raw_scpi_or_hex_frames() -> None:
    scpi = re.compile(r"""["'](\*IDN\?|SOUR:|MEAS:|OUTP |SYST:ERR|CALC\d)""")
    hex_frame = re.compile(r"""bytes\.fromhex\(|["']68 [0-9A-Fa-f]{2} """)
    offenders = [str(p.relative_to(ROOT)) for p in _sources("testplans")
                 if scpi.search(p.read_text()) or hex_frame.search(p.read_text())]
    assert offenders == []
