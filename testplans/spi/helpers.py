"""Rack-wide procedures of the SPI plans: the meters powered at a load point, the bus captured from
power-up and in steady polling (every position at once), every chip's readings a second apart with the
reference's, and the deviation of a chip reading from the reference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.errors import InstrumentError, RigError
from drivers.reference import ReferenceReading
from drivers.spi.link import ChipLink, ChipReadings
from drivers.spi.sniffer import SniffedBus, SpiSniffer
from rig.bench import Bench, Position
from rig.procedures import LoadPoint, RackCache, energise
from testplans.spi import spec


def nominal_point(bench: Bench) -> LoadPoint:
    """Un, Ib (In), PF 1."""
    return LoadPoint(voltage_v=bench.meter.un_v, current_a=bench.meter.ib_a)


def powered(bench: Bench, rack: RackCache, point: LoadPoint | None = None) -> LoadPoint:
    """The meters energised at `point` (default nominal) and past their chip set-up."""
    point = point or nominal_point(bench)
    source = bench.source
    if not source.output_enabled or (source.voltage_v, source.current_a) != (point.voltage_v, point.current_a):
        energise(bench, point, settle_s=spec.MAX_FIRST_POLL.value)
        rack.forget_load()
    return point


@dataclass
class BusCapture:
    """Every position's bus over one capture, and what the reference measured at its end.

    A capture handed over as bytes (the twin's, an analyser's upload) is decoded when its position's test first
    asks for it: a long capture takes seconds to decode, and a run that selects some positions' tests only pays
    for theirs. One given as a file is decoded at once (the analyser rewrites it for the next capture)."""

    reference: ReferenceReading
    buses: dict[int, SniffedBus] = field(default_factory=dict)
    errors: dict[int, RigError] = field(default_factory=dict)
    undecoded: dict[int, tuple[SpiSniffer, bytes]] = field(default_factory=dict)

    def of(self, position: Position) -> SniffedBus:
        """This position's capture; re-raises what went wrong with it."""
        index = position.index
        if index in self.undecoded:
            sniffer, raw = self.undecoded.pop(index)
            try:
                self.buses[index] = sniffer.decode(raw)
            except RigError as exc:
                self.errors[index] = exc
        if index in self.errors:
            raise self.errors[index]
        return self.buses[index]


def _capture_every_bus(bench: Bench, during: Callable[[], object]) -> BusCapture:
    """Listen to every position's bus while `during()` runs."""
    sniffers = {p.index: p.spi.sniffer for p in bench.positions if p.spi is not None and p.spi.sniffer}
    for s in sniffers.values():
        s.begin()
    during()
    result = BusCapture(reference=bench.reference.measure())
    for index, s in sniffers.items():
        try:
            raw = s.source.end()
            if isinstance(raw, bytes):
                result.undecoded[index] = (s, raw)
            else:
                result.buses[index] = s.decode(raw)
        except RigError as exc:  # one position's capture failing must not cost the others theirs
            result.errors[index] = exc
    return result


def power_up_capture(bench: Bench, rack: RackCache) -> BusCapture:
    """Switch the meters' supply off, then listen to every bus from power-up for the capture time.

    Measured once for the rack; the supply comes back at Un, Ib, PF 1.
    """

    def measure() -> BusCapture:
        bench.source.output_off()
        bench.clock.sleep(spec.POWER_OFF_S)
        return _capture_every_bus(bench, lambda: energise(bench, nominal_point(bench), settle_s=spec.CAPTURE_S))

    return rack.cached("spi: bus from power-up", measure)


def polling_capture(bench: Bench, rack: RackCache) -> BusCapture:
    """Listen to every bus of the running meters (Un, Ib, PF 1, past their chip set-up) for the steady polling
    capture: enough intervals between the MCU's reads to judge its timer's period and jitter.

    Measured once for the rack.
    """

    def measure() -> BusCapture:
        powered(bench, rack)
        return _capture_every_bus(bench, lambda: bench.clock.sleep(spec.POLLING_CAPTURE_S))

    return rack.cached("spi: steady polling", measure)


@dataclass
class RackReadings:
    """Every position's chip readings and the reference's, one of each per second at Un, Ib, PF 1."""

    reference: list[ReferenceReading] = field(default_factory=list)
    chips: dict[int, list[ChipReadings]] = field(default_factory=dict)
    errors: dict[int, RigError] = field(default_factory=dict)

    def of(self, position: Position) -> list[ChipReadings]:
        """This position's readings; re-raises what went wrong with them."""
        if position.index in self.errors:
            raise self.errors[position.index]
        return self.chips[position.index]


def _reading(chip: ChipLink) -> ChipReadings:
    """One set of the chip's readings, read again (up to spec.READ_ATTEMPTS times in all) when RData does not
    confirm a read: the MCU shares the bus, and its own read between the rig's register read and RData read
    overwrites RData. A chip whose RData never confirms still fails."""
    for _ in range(spec.READ_ATTEMPTS - 1):
        try:
            return chip.readings()
        except InstrumentError:
            continue
    return chip.readings()


def rack_readings(bench: Bench, rack: RackCache) -> RackReadings:
    """spec.READINGS readings of every position's chip through its master, with the reference's, a second apart
    (the chip's noise is independent from one second to the next). Measured once for the rack."""

    def measure() -> RackReadings:
        powered(bench, rack)
        chips = {p.index: p.spi for p in bench.positions if p.spi is not None and p.spi.master is not None}
        result = RackReadings(chips={index: [] for index in chips})
        for _ in range(spec.READINGS):
            for index, chip in chips.items():
                if index in result.errors:
                    continue
                try:
                    result.chips[index].append(_reading(chip))
                except RigError as exc:  # one chip not answering must not cost the others their readings
                    result.errors[index] = exc
            result.reference.append(bench.reference.measure())
            bench.clock.sleep(1.0)
        return result

    return rack.cached("spi: readings at Un, Ib", measure)


def deviation_pct(measured: float, reference: float) -> float:
    """(measured - reference) / reference, %."""
    return (measured - reference) / reference * 100.0
