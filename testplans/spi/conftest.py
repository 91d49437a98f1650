"""Fixtures of the SPI plans: the position's chip link, its master, sniffer and DL/T 645 link (each skips,
saying why, when the bench file gives the position none). Procedures are in testplans.spi.helpers."""

from __future__ import annotations

import pytest

from drivers.dlt645.link import MeterLink
from drivers.spi.link import ChipLink
from drivers.spi.master import SpiMaster
from drivers.spi.sniffer import SpiSniffer
from rig.bench import Position


@pytest.fixture
def chip(position: Position) -> ChipLink:
    """The position's SPI link to its metering chip (skips a position without one)."""
    if position.spi is None:
        pytest.skip(f"{position.name}: the bench file gives no spi section for this position")
    return position.spi


@pytest.fixture
def master(chip: ChipLink) -> SpiMaster:
    """The rig's SPI master to the chip (skips when the bench has only a sniffer)."""
    if chip.master is None:
        pytest.skip(f"{chip.where}: no SPI master to the chip (bench file: spi.master)")
    return chip.master


@pytest.fixture
def sniffer(chip: ChipLink) -> SpiSniffer:
    """The sniffer on the chip's bus (skips when the bench has only a master)."""
    if chip.sniffer is None:
        pytest.skip(f"{chip.where}: no capture of the chip's bus (bench file: spi.capture)")
    return chip.sniffer


@pytest.fixture
def uart(position: Position) -> MeterLink:
    """The position's DL/T 645 link (skips a position without a serial port)."""
    link: MeterLink | None = getattr(position, "link", None)
    if link is None:
        pytest.skip(f"{position.name}: no DL/T 645 link (bench file: serial)")
    return link
