"""Fixtures of the register plans: the position's DL/T 645 link over the UART (the master station's channel),
its meter powered. Helpers are in testplans.registers.helpers."""

from __future__ import annotations

import pytest

from drivers.dlt645.link import MeterLink
from rig.bench import Bench, Position
from rig.procedures import RackCache
from testplans.comms.helpers import power_meters
from testplans.transports import UART, meter_link


@pytest.fixture
def link(bench: Bench, rack: RackCache, position: Position) -> MeterLink:
    """The position's DL/T 645 link over its UART, the meters powered; skips, saying why, when the bench file
    gives the position no serial port."""
    chosen = meter_link(position, UART)
    power_meters(bench, rack)
    return chosen
