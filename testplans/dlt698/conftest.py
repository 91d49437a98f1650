"""Fixtures of the DL/T 698.45 plans: the position's 698 link over each transport (UART, BLE), its meter
powered and associated (CONNECT), and reading helpers in engineering units."""

from __future__ import annotations

import contextlib

import pytest

from drivers.dlt698 import DarRefused, Data, Dlt698Link, layout, oad, scaled
from drivers.errors import RigError
from rig.bench import Bench, Position
from rig.procedures import RackCache
from testplans.comms.helpers import power_meters
from testplans.transports import BLE, UART, transport_fixture  # noqa: F401  (registers `transport`)

_MISSING = {UART: "gives no serial port", BLE: "gives no ble entry (Bluetooth LE)"}


def link698_of(position: Position, transport: str) -> Dlt698Link | None:
    """The position's DL/T 698.45 link over `transport` (None: the bench file gives none)."""
    return position.link698 if transport == UART else position.ble698


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


def read_scaled(link: Dlt698Link, oi: int, wiring: str = "1P2W") -> float:
    """The first value of attribute 2 of `oi` in the standard's unit (the total of an energy or power array),
    its array shape checked against the meter's wiring."""
    return scaled(oad(oi), link.get(oad(oi)), layout(three_phase=wiring != "1P2W")).value


def read_or_refusal(link: Dlt698Link, oi: int, attribute: int = 2) -> Data | int:
    """The attribute's value, or the DAR the meter refused it with; RigError for anything else."""
    try:
        return link.get(oad(oi, attribute))
    except DarRefused as refused:
        return refused.dar


__all__ = ["link698", "link698_of", "read_or_refusal", "read_scaled"]
