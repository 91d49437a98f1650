"""The bench builder's SPI part: from a position's `spi:` section to an opened `ChipLink`.

The one place where the SPI of a bench and of the twin differ: `spidev` and capture paths reach
hardware, `twin-spi://` (in-process) and `twin+tcp://` (served) URLs reach the twin's buses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from drivers.errors import RigError
from drivers.spi.link import ChipLink
from drivers.spi.master import SpiDevLike, SpiMaster, open_spidev
from drivers.spi.rn8209 import RN8209
from drivers.spi.scaling import ChipScaling
from drivers.spi.sniffer import CaptureSource, SpiSniffer, capture_source_for
from drivers.spi.vcd import SpiSignalNames
from rig.config import TWIN_RESOURCE, BenchConfig
from rig.twin import spi_bus, spi_served

if TYPE_CHECKING:
    from rig.bench import Position


class SpiConfigError(RigError):
    """A position's spi section cannot be served as written (names the key and what to do)."""


def _master_device(where: str, master: str) -> SpiDevLike | None:
    """The (not yet opened) spidev-like object for a twin URL; None for a real spidev."""
    if master.startswith(spi_bus.URL_PREFIX):
        return spi_bus.TwinSpiDev(spi_bus.lookup(master))
    if master.startswith(spi_served.URL_PREFIX):
        return spi_served.RemoteSpiDev(master)
    if master == TWIN_RESOURCE:
        raise SpiConfigError(f"{where}.master says 'twin' but no twin serves this bench (clock: twin?)")
    return None


def _capture(where: str, capture: str) -> CaptureSource:
    if capture.startswith(spi_bus.URL_PREFIX):
        return spi_bus.TwinCapture(spi_bus.lookup(capture))
    if capture.startswith(spi_served.URL_PREFIX):
        return spi_served.RemoteCapture(capture)
    if capture == TWIN_RESOURCE:
        raise SpiConfigError(f"{where}.capture says 'twin' but no twin serves this bench (clock: twin?)")
    return capture_source_for(capture)


def chip_link_for(config: BenchConfig, index: int) -> ChipLink | None:
    """The SPI link of position `index` as its bench file describes it (nothing opened yet)."""
    spi = config.positions[index].spi
    if spi is None:
        return None
    where = f"positions.{index}.spi"
    meter = config.meter
    scaling = ChipScaling(spi.kv(meter), spi.ki(meter), meter.constant_imp_per_kwh)
    master = None
    if spi.master is not None:
        device = _master_device(where, spi.master)
        master = SpiMaster(device if device is not None else open_spidev, spi.bus, spi.device,
                           speed_hz=spi.speed_hz, profile=RN8209)
    sniffer = None
    if spi.capture is not None:
        names = SpiSignalNames(**spi.signals.model_dump())
        sniffer = SpiSniffer(_capture(where, spi.capture), profile=RN8209, names=names, decoder=spi.decoder)
    return ChipLink(where=config.position_name(index), scaling=scaling, master=master, sniffer=sniffer,
                    profile=RN8209)


def open_chip_links(config: BenchConfig, positions: Sequence[Position]) -> None:
    """Give every position its opened SPI link; on failure close what was opened and raise."""
    opened: list[ChipLink] = []
    try:
        for position in positions:
            link = chip_link_for(config, position.index)
            if link is not None:
                link.open()
                opened.append(link)
            position.spi = link
    except BaseException:
        for link in opened:
            with contextlib.suppress(RigError):
                link.close()
        raise


def close_chip_links(positions: Sequence[Position]) -> None:
    """Close every position's SPI link."""
    for position in positions:
        if position.spi is not None:
            position.spi.close()
