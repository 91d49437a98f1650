"""Which link a plan talks DL/T 645 over: the meter's RS-485/UART port or its Bluetooth LE transparent UART.

Plan layer. A plan that takes the `transport` fixture runs once per transport; `meter_link(position,
transport)` gives that transport's link (the same `MeterLink` interface either way) or skips the item with
the reason (the bench file gives this position no such port). Import the fixture into a plan's conftest:

    from testplans.transports import meter_link, transport_fixture  # noqa: F401  (registers `transport`)
"""

from __future__ import annotations

from typing import Final

import pytest

from drivers.dlt645.link import MeterLink
from rig.bench import Position

UART: Final = "uart"
BLE: Final = "ble"
TRANSPORTS: Final = (UART, BLE)
# How reports and record names say it.
TRANSPORT_NAMES: Final = {UART: "UART", BLE: "BLE"}
_MISSING: Final = {UART: "gives no serial port", BLE: "gives no ble entry (Bluetooth LE)"}


@pytest.fixture(params=TRANSPORTS, name="transport")
def transport_fixture(request: pytest.FixtureRequest) -> str:
    """The DL/T 645 transport of this test item: 'uart' or 'ble'."""
    return str(request.param)


def link_of(position: Position, transport: str) -> MeterLink | None:
    """The position's link over `transport` (None when the bench file gives none)."""
    if transport == UART:
        return position.link
    if transport == BLE:
        return position.ble
    raise ValueError(f"unknown transport {transport!r}: use one of {', '.join(TRANSPORTS)}")


def meter_link(position: Position, transport: str) -> MeterLink:
    """The position's link over `transport`; skips the item, saying why, when the bench file gives none."""
    link = link_of(position, transport)
    if link is None:
        pytest.skip(f"{position.name}: the bench file {_MISSING[transport]} for this position")
    return link
