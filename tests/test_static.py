"""The project's own static checks run with the suite: ruff on everything (with a complexity gate), mypy
strict on the library layers (drivers/, rig/), the layer contracts (import-linter, configured in
pyproject.toml), no time.sleep outside the wall clock, no raw SCPI in plans."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import testplans
import testplans.mutations
from drivers.errors import RigError
from rig import plans
from testplans.harmonics import mutations as harmonic_mutations

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


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "lint-imports"
    if not script.exists():
        pytest.skip("lint-imports is not installed (pip install -e '.[test]')")
    # The packages under `root` come first on the path, before the installed (editable) ones.
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(script), "--no-cache"], capture_output=True, text=True, cwd=root, env=env,
                          timeout=300)


def test_layer_contracts_hold() -> None:
    proc = _lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " 0 broken" in proc.stdout, proc.stdout[-4000:]


def test_layer_contracts_catch_a_driver_that_imports_the_rig_and_a_cycle(tmp_path: Path) -> None:
    for folder in ("drivers", "rig", "fixtures", "testplans", "benches"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "drivers" / "uses_rig.py").write_text("from rig.config import BenchConfig\n")
    (tmp_path / "rig" / "loop_a.py").write_text("from rig import loop_b\n")
    (tmp_path / "rig" / "loop_b.py").write_text("from rig import loop_a\n")
    proc = _lint_imports(tmp_path)
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "drivers.uses_rig -> rig.config" in proc.stdout
    assert ".loop_a -> .loop_b" in proc.stdout or ".loop_b -> .loop_a" in proc.stdout


def test_rig_gets_the_plans_folder_and_mutation_catalogue_through_entry_points() -> None:
    assert plans.plans_dir() == Path(testplans.__file__).resolve().parent
    catalogue = plans.mutation_catalogue()
    # Every plan's own catalogue is there (testplans.mutations and, e.g., testplans/harmonics/mutations.py).
    assert all(m in catalogue for m in testplans.mutations.MUTATIONS)
    assert all(m in catalogue for m in harmonic_mutations.MUTATIONS)


def test_a_missing_plans_entry_point_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plans, "entry_points", lambda group: ())
    with pytest.raises(RigError, match=r"no plans package declares 'meter_hil_rig\.mutations' entry points"):
        plans.mutation_catalogue()


def test_complexity_gate_applies_to_the_library_and_plan_folders() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "C90" in config["select"] and config["mccabe"]["max-complexity"] == 15
    branches = "".join(f"    if x == {n}:\n        return {n}\n" for n in range(16))
    source = f"def tangled(x: int) -> int:\n{branches}    return -1\n"
    for folder in ("drivers", "rig", "fixtures", "testplans"):
        proc = subprocess.run([*_tool("ruff"), "check", "--stdin-filename", f"{folder}/tangled.py", "-"],
                              input=source, capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert "C901" in proc.stdout, (folder, proc.stdout)


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


def test_plan_conftests_hold_fixtures_and_hooks_only() -> None:
    """Helpers live in normal modules (testplans/<plan>/helpers.py): nothing imports a conftest, and a plan
    conftest.py defines fixtures and pytest hooks, nothing else a plan could call."""
    importers = [str(p.relative_to(ROOT)) for folder in ("testplans", "tests", "fixtures", "rig")
                 for p in _sources(folder) if re.search(r"^\s*(from|import)\s+\S*conftest\b", p.read_text(), re.M)]
    assert importers == []
    others = []
    for path in (ROOT / "testplans").rglob("conftest.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                decorators = [ast.unparse(d) for d in getattr(node, "decorator_list", [])]
                if not node.name.startswith("pytest_") and not any("fixture" in d for d in decorators):
                    others.append(f"{path.relative_to(ROOT)}::{node.name}")
    assert others == []
