"""Parametrisation of the harmonic plans from the bench's meter type (pytest hooks only)."""

from __future__ import annotations

import pytest

from fixtures.stash import bench_config_of
from testplans.harmonics import spec


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "waveform" in metafunc.fixturenames:
        tests = spec.waveform_tests(bench_config_of(metafunc.config).meter)
        metafunc.parametrize("waveform", tests, ids=[t.name for t in tests])
