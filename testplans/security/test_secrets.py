"""Key material never leaves the key source: after a session with protected commands, neither the
bytes exchanged with the meter (sent and received, as bytes and as hex) nor any file of the run folder
written so far (traffic log, journal) holds the master key or a key derived from it. The run's report,
results.json and console output are checked by the rig's own tests once the run has ended."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.security import KeySource, MeterSecurityClient, RemoteControl
from rig.bench import Bench, Position
from testplans.security.helpers import key_material_found

pytestmark = pytest.mark.plan


def test_no_key_material_in_traffic_or_run_folder(request: pytest.FixtureRequest, bench: Bench,
                                                   secure: MeterSecurityClient, esam_keys: KeySource,
                                                   position: Position, record) -> None:
    """A session (authentication, a protected command, a write with MAC) leaves no key material in the
    link's traffic or the run folder."""
    secure.authenticate()
    secure.control(RemoteControl.ALARM_OFF)
    run_dir = request.config.getoption("rig_run_dir")
    links = [link for p in bench.positions for link in (p.link, p.ble) if link is not None]  # UART and BLE
    found = key_material_found(esam_keys, links, Path(run_dir) if run_dir else None)
    record("places holding key material", len(found), "places", low=0, high=0, position=position, places=found)
