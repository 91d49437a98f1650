"""The bench builder: from a validated bench file to opened drivers, a clock, and the positions.

This is the one place where a bench and the twin differ: resources that say `twin` start the embedded
twin and point at its ports; everything above receives the same drivers either way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from drivers.clock import Clock, WallClock
from drivers.errors import RigError
from drivers.reference import ErrorCalculator, ReferenceStandard
from drivers.source import PowerSource
from drivers.transport import MessageTransport, PyVisaTransport
from rig.config import TWIN_RESOURCE, BenchConfig, InstrumentConfig, MeterType, PositionConfig
from rig.twin.control import RemoteTwinControl, TwinControl
from rig.twin.runtime import Twin


@dataclass
class Position:
    """One meter position: its configuration and the drivers that reach its meter."""

    index: int
    name: str
    config: PositionConfig
    calculator: ErrorCalculator

    @property
    def address(self) -> str:
        """The meter's address."""
        return self.config.address


@dataclass
class Bench:
    """Opened instruments and positions of one bench run; `close()` drives everything safe."""

    config: BenchConfig
    clock: Clock
    source: PowerSource
    reference: ReferenceStandard
    positions: list[Position]
    twin: Twin | None = None
    twin_control: TwinControl | RemoteTwinControl | None = None
    _closed: bool = field(default=False, repr=False)

    @property
    def meter(self) -> MeterType:
        """The meter type under test."""
        return self.config.meter

    def safe(self) -> None:
        """Source output off (errors propagate so the caller can report them)."""
        self.source.safe()

    def close(self) -> None:
        """Output off, instruments closed, embedded twin stopped; runs every step even if one fails."""
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        for step in (self.source.close, self.reference.close):
            try:
                step()
            except RigError as exc:
                errors.append(str(exc))
        if isinstance(self.twin_control, RemoteTwinControl):
            self.twin_control.close()
        if self.twin is not None:
            self.twin.stop()
        if errors:
            raise RigError("closing the bench: " + "; ".join(errors))


def transport_for(instrument: InstrumentConfig) -> MessageTransport:
    """The message transport an instrument's resource string calls for."""
    return PyVisaTransport(instrument.resource, timeout_s=instrument.timeout_s)


def needs_embedded_twin(config: BenchConfig) -> bool:
    """True when the bench file asks for the twin to be started in this process."""
    return config.clock == "twin" or any(i.resource == TWIN_RESOURCE for i in config.instruments)


def open_bench(config: BenchConfig) -> Bench:
    """Start the twin if the bench asks for it, then open the source, the reference and the positions."""
    twin: Twin | None = None
    control: TwinControl | RemoteTwinControl | None = None
    clock: Clock
    if needs_embedded_twin(config):
        twin = Twin(config)
        twin.start()
        config = twin.resolve(config)
        clock, control = twin.clock, twin.control
    elif config.clock.startswith("twin+"):
        remote = RemoteTwinControl(config.clock.removeprefix("twin+"))
        clock = control = remote
    else:
        clock = WallClock()
    source = PowerSource(
        transport_for(config.instrument("source")),
        max_voltage_v=config.safety.max_voltage_v,
        max_current_a=config.safety.max_current_a,
    )
    reference = ReferenceStandard(transport_for(config.instrument("reference")))
    opened: list[PowerSource | ReferenceStandard] = []
    try:
        for instrument in (source, reference):
            instrument.open()
            opened.append(instrument)
        source.output_off()
    except BaseException:
        for instrument in opened:
            with contextlib.suppress(RigError):
                instrument.close()
        if twin is not None:
            twin.stop()
        raise
    positions = [
        Position(index=i, name=config.position_name(i), config=p, calculator=reference.calculator(p.pulse_channel))
        for i, p in enumerate(config.positions)
    ]
    return Bench(config=config, clock=clock, source=source, reference=reference, positions=positions,
                 twin=twin, twin_control=control)


@contextlib.contextmanager
def bench_session(config: BenchConfig) -> Iterator[Bench]:
    """`with bench_session(cfg) as bench:` opens the bench and always drives it safe on exit."""
    bench = open_bench(config)
    try:
        yield bench
    finally:
        bench.close()
