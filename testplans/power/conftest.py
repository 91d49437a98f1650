"""Fixtures of the power plans: the position's meter link, its meter on mains. Procedures are in
testplans.power.helpers."""

from __future__ import annotations

import pytest

from drivers.dlt645.link import MeterLink
from rig.bench import Bench, Position
from rig.procedures import RackCache
from testplans.power.helpers import mains_on, wait_answering


@pytest.fixture
def link(bench: Bench, rack: RackCache, position: Position) -> MeterLink:
    """The position's DL/T 645 link, its meter on mains and answering (skips a position without one)."""
    if position.link is None:
        pytest.skip(f"{position.name}: the bench file gives no serial port for this position")
    mains_on(bench, rack)
    answered = wait_answering(bench, [position])
    if position.index not in answered:
        pytest.fail(f"{position.name}: the meter does not answer on mains")
    return position.link
