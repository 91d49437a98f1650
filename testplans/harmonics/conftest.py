"""Parametrisation of the harmonic plans from the bench's meter type (pytest hooks only)."""

from __future__ import annotations

import pytest

from drivers.dlt645.link import MeterLink
from fixtures.stash import bench_config_of
from rig.bench import Bench, Position
from rig.procedures import RackCache
from testplans.harmonics import spec
from testplans.power.helpers import mains_on, wait_answering


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "waveform" in metafunc.fixturenames:
        tests = spec.waveform_tests(bench_config_of(metafunc.config).meter)
        metafunc.parametrize("waveform", tests, ids=[t.name for t in tests])


@pytest.fixture
def link(bench: Bench, rack: RackCache, position: Position) -> MeterLink:
    """The position's DL/T 645 link, its meter on mains and answering (skips a position without one)."""
    if position.link is None:
        pytest.skip(f"{position.name}: the bench file gives no serial port for this position")
    mains_on(bench, rack)
    if position.index not in wait_answering(bench, [position]):
        pytest.fail(f"{position.name}: the meter does not answer on mains")
    return position.link
