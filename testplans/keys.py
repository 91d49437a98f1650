"""The bench's ESAM key source as a session fixture, for every plan that opens secure sessions (the DL/T 645
security plans and the DL/T 698.45 ones): a plan's conftest.py imports `esam_keys_fixture` to offer the
`esam_keys` fixture, as it does `transport_fixture` from testplans.transports."""

from __future__ import annotations

import pytest

from drivers.security import KeySource
from rig.bench import Bench
from rig.config import ConfigError
from rig.security import key_source_for


@pytest.fixture(scope="session", name="esam_keys")
def esam_keys_fixture(bench: Bench) -> KeySource:
    """The bench's ESAM key source (bench file `keys.esam_master`; on the twin, the twin's); skips, saying
    why, when the bench file gives none."""
    try:
        return key_source_for(bench.config)
    except ConfigError as exc:
        pytest.skip(str(exc))
