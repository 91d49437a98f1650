"""One meter position's view of its metering chip: an SPI master and/or a sniffer, and the chip's scaling.

Drivers layer: composes `SpiMaster`, `SpiSniffer` and `ChipScaling`; imports nothing of the rig.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.errors import InstrumentError, RigError
from drivers.spi.master import SpiMaster
from drivers.spi.registers import ChipProfile
from drivers.spi.rn8209 import RN8209
from drivers.spi.scaling import ChipScaling
from drivers.spi.sniffer import SpiSniffer


@dataclass(frozen=True)
class ChipReadings:
    """Instantaneous quantities and the energy counter as the chip holds them, in SI units."""

    voltage_v: float
    current_a: float
    power_w: float
    frequency_hz: float
    energy_count: int  # EnergyP, pulses (kWh = count / EC)
    hfconst: int


@dataclass
class ChipLink:
    """The SPI side of one position: `master` drives the chip directly, `sniffer` listens to its bus."""

    where: str  # the position's name, for messages
    scaling: ChipScaling
    master: SpiMaster | None = None
    sniffer: SpiSniffer | None = None
    profile: ChipProfile = field(default=RN8209, repr=False)

    def require_master(self) -> SpiMaster:
        """The master; InstrumentError naming the bench-file key when the position has none."""
        if self.master is None:
            raise InstrumentError(f"{self.where}: no SPI master to the chip (bench file: spi.master)")
        return self.master

    def open(self) -> None:
        """Open the master (the sniffer holds nothing open)."""
        if self.master is not None:
            self.master.open()

    def close(self) -> None:
        """Close the master, and the capture source when it holds a connection."""
        if self.master is not None:
            self.master.close()
        close = getattr(self.sniffer.source, "close", None) if self.sniffer is not None else None
        if callable(close):
            close()

    def readings(self) -> ChipReadings:
        """Vrms, Irms, active power, frequency and EnergyP read through the master, each read verified."""
        master = self.require_master()
        scaling = self.scaling
        try:
            hfconst = master.read("HFConst")
            return ChipReadings(
                voltage_v=scaling.voltage_v(master.read("URMS")),
                current_a=scaling.current_a(master.read("IARMS")),
                power_w=scaling.power_w(master.read("PowerPA"), hfconst),
                frequency_hz=scaling.frequency_hz(master.read("UFreq")),
                energy_count=master.read("EnergyP"),
                hfconst=hfconst,
            )
        except RigError as exc:
            raise InstrumentError(f"{self.where}: {exc}") from exc
