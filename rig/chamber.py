"""The bench's climate chamber (optional instrument): opened from the bench file's `role: chamber` entry on the
bench clock. A bench without one has none (the plans that need one say so and skip)."""

from __future__ import annotations

from drivers.chamber import ClimateChamber, chamber_driver
from drivers.errors import RigError
from rig.bench import Bench
from rig.config import InstrumentConfig


def chamber_entry(bench: Bench) -> InstrumentConfig | None:
    """The bench file's chamber entry (None: it names no chamber)."""
    chambers = [i for i in bench.config.instruments if i.role == "chamber"]
    if len(chambers) > 1:
        raise RigError(f"bench {bench.config.name}: {len(chambers)} instruments with role 'chamber'; give one")
    return chambers[0] if chambers else None


def open_chamber(bench: Bench) -> ClimateChamber | None:
    """The bench's climate chamber, opened (None when the bench file names none)."""
    entry = chamber_entry(bench)
    if entry is None:
        return None
    chamber = chamber_driver(entry.driver, entry.resource, bench.clock, timeout_s=entry.timeout_s)
    chamber.open()
    return chamber
