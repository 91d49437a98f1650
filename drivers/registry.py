"""The driver registry (drivers layer): a bench file's `driver:` name selects a driver class and its
dialect here, by instrument role. Adding a vendor means adding a row, not an `if`.

The bench builder (rig.bench) builds every instrument through `source_driver` / `reference_driver`; the
config validates names against `DRIVERS_BY_ROLE`. Importing this imports no instrument library (pyvisa
is imported when a transport opens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.ac_sources import CHROMA_61500, KEYSIGHT_AC6800
from drivers.chamber import CHAMBER_DIALECTS
from drivers.errors import RigError
from drivers.fluke6100 import FLUKE_6100B, FLUKE_6105A_ENERGY, Fluke6100Source, Fluke6105aEnergy
from drivers.reference import SCPI_REFERENCE, ReferenceDialect, ReferenceStandard
from drivers.source import PHANTOM, PowerSource, SourceDialect
from drivers.transport import MessageTransport


@dataclass(frozen=True)
class SourceDriver:
    """A source family: the driver class and the dialect it speaks."""

    name: str
    driver: type[PowerSource]
    dialect: SourceDialect
    description: str

    def build(self, transport: MessageTransport, *, max_voltage_v: float, max_current_a: float) -> PowerSource:
        """The driver on `transport`, with the bench's safety limits (not opened)."""
        return self.driver(transport, max_voltage_v=max_voltage_v, max_current_a=max_current_a, dialect=self.dialect)


@dataclass(frozen=True)
class ReferenceDriver:
    """A reference standard / error calculator family: the driver class and the dialect it speaks."""

    name: str
    driver: type[ReferenceStandard]
    dialect: ReferenceDialect
    description: str

    def build(self, transport: MessageTransport) -> ReferenceStandard:
        """The driver on `transport` (not opened)."""
        return self.driver(transport, self.dialect)


SOURCES: Final = {d.name: d for d in (
    SourceDriver("scpi-phantom-source", PowerSource, PHANTOM, "phantom-load source, the twin's SCPI dialect"),
    SourceDriver("fluke-6100b", Fluke6100Source, FLUKE_6100B,
                 "Fluke 6100B/6105A electrical power standard, phase 1 (phantom load)"),
    SourceDriver("chroma-61500", PowerSource, CHROMA_61500, "Chroma 61500/61600 AC source (voltage only)"),
    SourceDriver("keysight-ac6800", PowerSource, KEYSIGHT_AC6800, "Keysight AC6800 AC source (voltage only)"),
)}

REFERENCES: Final = {d.name: d for d in (
    ReferenceDriver("scpi-reference", ReferenceStandard, SCPI_REFERENCE,
                    "reference standard with SCPI error calculators, the twin's dialect"),
    ReferenceDriver("fluke-6105a-energy", Fluke6105aEnergy, FLUKE_6105A_ENERGY,
                    "Fluke 6105A (6100B) Energy option: MUT pulse inputs 1..3 against the main outputs"),
)}

# role -> driver names accepted for it (what the bench file is validated against).
# A climate chamber (optional): drivers.chamber.ClimateChamber with its controller family's register map.
DRIVERS_BY_ROLE: Final[dict[str, tuple[str, ...]]] = {"source": tuple(SOURCES), "reference": tuple(REFERENCES),
                                                      "chamber": tuple(CHAMBER_DIALECTS)}

# Every source dialect a bench file can reach, by dialect name (what a driver records and a watchdog reloads).
SOURCE_DIALECTS: Final = {d.dialect.name: d.dialect for d in SOURCES.values()}


def source_driver(name: str) -> SourceDriver:
    """The source family a bench file names."""
    try:
        return SOURCES[name]
    except KeyError:
        raise RigError(f"unknown source driver {name!r}; known: {', '.join(SOURCES)}") from None


def reference_driver(name: str) -> ReferenceDriver:
    """The reference family a bench file names."""
    try:
        return REFERENCES[name]
    except KeyError:
        raise RigError(f"unknown reference driver {name!r}; known: {', '.join(REFERENCES)}") from None
