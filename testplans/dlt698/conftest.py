"""Fixtures of the DL/T 698.45 plans: the position's 698 link over each transport (UART, BLE), its meter
powered and associated (CONNECT). Helpers are in testplans.dlt698.helpers."""

from __future__ import annotations

import contextlib

import pytest

from drivers.dlt698 import Dlt698Link
from drivers.errors import RigError
from rig.bench import Bench, Position
from rig.procedures import RackCache
from testplans.comms.helpers import power_meters
from testplans.dlt698.helpers import link698_of
from testplans.keys import esam_keys_fixture  # noqa: F401  (the bench's ESAM key source, as the 645 plans')
from testplans.transports import BLE, UART, transport_fixture  # noqa: F401  (registers `transport`)

_MISSING = {UART: "gives no serial port", BLE: "gives no ble entry (Bluetooth LE)"}


@pytest.fixture
def link698(bench: Bench, rack: RackCache, position: Position, transport: str) -> Dlt698Link:
    """The position's DL/T 698.45 link over this item's transport, its meter powered and associated; skips,
    saying why, when the position's meter is not read in DL/T 698.45 or has no such port."""
    if not position.config.speaks_698:
        pytest.skip(f"{position.name}: the bench file says protocol {position.config.protocol} for this position")
    link = link698_of(position, transport)
    if link is None:
        pytest.skip(f"{position.name}: the bench file {_MISSING[transport]} for this position")
    power_meters(bench, rack)
    if link.connected is None:
        # A meter that cannot associate is judged by the test (its replies' faults recorded), not here.
        with contextlib.suppress(RigError):
            link.connect()
    return link
