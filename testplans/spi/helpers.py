"""Rack-wide procedures of the SPI plans: the meters powered at a load point, the bus captured from
power-up (every position at once), and the deviation of a chip reading from the reference."""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.errors import RigError
from drivers.reference import ReferenceReading
from drivers.spi.sniffer import SniffedBus
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
class PowerUpCapture:
    """Every position's bus from power-up, and what the reference measured at its end."""

    reference: ReferenceReading
    buses: dict[int, SniffedBus] = field(default_factory=dict)
    errors: dict[int, RigError] = field(default_factory=dict)

    def of(self, position: Position) -> SniffedBus:
        """This position's capture; re-raises what went wrong with it."""
        if position.index in self.errors:
            raise self.errors[position.index]
        return self.buses[position.index]


def power_up_capture(bench: Bench, rack: RackCache) -> PowerUpCapture:
    """Switch the meters' supply off, then listen to every bus from power-up for the capture time.

    Measured once for the rack; the supply comes back at Un, Ib, PF 1.
    """

    def measure() -> PowerUpCapture:
        sniffers = {p.index: p.spi.sniffer for p in bench.positions if p.spi is not None and p.spi.sniffer}
        bench.source.output_off()
        bench.clock.sleep(spec.POWER_OFF_S)
        for s in sniffers.values():
            s.begin()
        energise(bench, nominal_point(bench), settle_s=spec.CAPTURE_S)
        result = PowerUpCapture(reference=bench.reference.measure())
        for index, s in sniffers.items():
            try:
                result.buses[index] = s.end()
            except RigError as exc:  # one position's capture failing must not cost the others theirs
                result.errors[index] = exc
        return result

    return rack.cached("spi: bus from power-up", measure)


def deviation_pct(measured: float, reference: float) -> float:
    """(measured - reference) / reference, %."""
    return (measured - reference) / reference * 100.0
