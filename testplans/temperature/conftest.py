"""Fixtures of the temperature plans: the bench's climate chamber (the plans skip, saying why, on a bench
without one)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.chamber import ClimateChamber
from rig.bench import Bench
from testplans.temperature.helpers import chamber_fixture


@pytest.fixture(scope="session")
def chamber(bench: Bench) -> Iterator[ClimateChamber]:
    """The bench's climate chamber, back at the reference temperature at the end."""
    yield from chamber_fixture(bench)
