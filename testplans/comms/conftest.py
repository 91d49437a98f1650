"""Fixtures of the communication plans: the position's meter link over each transport (the UART and
Bluetooth LE), with the meters powered. Helpers are in testplans.comms.helpers."""

from __future__ import annotations

import pytest

from drivers.dlt645.link import MeterLink
from rig.bench import Bench, Position
from rig.procedures import RackCache
from testplans.comms.helpers import power_meters
from testplans.transports import meter_link, transport_fixture  # noqa: F401  (the `transport` fixture: UART and BLE)


@pytest.fixture
def link(bench: Bench, rack: RackCache, position: Position, transport: str) -> MeterLink:
    """The position's DL/T 645 link over this item's transport (UART or BLE), its meter powered; skips,
    saying why, when the bench file gives the position no such port."""
    chosen = meter_link(position, transport)
    power_meters(bench, rack)
    return chosen
