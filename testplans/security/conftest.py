"""Fixtures of the security plans: each position's secure-session client with its meter powered and put back
afterwards; the bench's key source (`esam_keys`) comes from testplans.keys. Helpers are in
testplans.security.helpers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.security import KeySource, MeterSecurityClient
from rig.bench import Bench, Position
from rig.procedures import RackCache
from rig.security import secure_client
from testplans.keys import esam_keys_fixture  # noqa: F401  (the `esam_keys` fixture)
from testplans.security.helpers import power_meters, put_back
from testplans.transports import meter_link, transport_fixture  # noqa: F401  (the `transport` fixture: UART and BLE)


@pytest.fixture
def secure(bench: Bench, rack: RackCache, position: Position, esam_keys: KeySource,
           transport: str) -> Iterator[MeterSecurityClient]:
    """The position's secure-session client (a fresh session) over this item's transport (UART or BLE; skips,
    saying why, when the bench file gives no such port), its meter powered; put back afterwards."""
    link = meter_link(position, transport)
    power_meters(bench, rack)
    client = secure_client(position, esam_keys, bench.clock, link=link)
    yield client
    put_back(bench, client)
