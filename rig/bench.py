"""The bench builder: from a validated bench file to opened drivers, a clock, and the positions.

A provider hands it the bench's resources (resolved to real addresses), the bench clock and the hands at
the bench (`PROVIDERS`: the twin when the bench file asks for it, else the lab itself); the bench file's
`driver:` names select each instrument's driver class and dialect from drivers.registry. Everything above
receives the same drivers whoever provides them.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from drivers.ble import BleBackend, BleTarget
from drivers.clock import Clock, WallClock
from drivers.dlt645.ble_link import BLE_AIR, BleMeterLink
from drivers.dlt645.link import LineSettings, MeterLink, TrafficHook, UartTap, open_serial_port
from drivers.dlt698.link import Dlt698Link, ble_port, shared_port
from drivers.errors import BenchFault, LinkError, RigError
from drivers.reference import ErrorCalculator, ReferenceStandard
from drivers.registry import reference_driver, source_driver
from drivers.retry import RetryingTransport, RetryPolicy
from drivers.source import PowerSource
from drivers.spi.link import ChipLink
from drivers.transport import MessageTransport, PyVisaTransport, active_traffic_log, logged
from rig.config import TWIN_RESOURCE, BenchConfig, InstrumentConfig, MeterType, PositionConfig, SerialSettings
from rig.operator import Operator
from rig.spi_link import close_chip_links, open_chip_links
from rig.twin.provider import twin_provider_for
from rig.twin.serial_port import TWIN_SERIALS


@dataclass
class Position:
    """One meter position: its configuration and the drivers that reach its meter."""

    index: int
    name: str
    config: PositionConfig
    calculator: ErrorCalculator
    spi: ChipLink | None = None  # the metering chip's SPI master and/or sniffer (bench file: spi)
    link: MeterLink | None = None  # DL/T 645 over the position's serial port (bench file: serial, line)
    tap: UartTap | None = None  # UART adapter on the management-expansion link (bench file: expansion_tap)
    link698: Dlt698Link | None = None  # DL/T 698.45 on the serial port (bench file: protocol dlt698 or both)
    ble698: Dlt698Link | None = None  # DL/T 698.45 over the BLE transparent UART (protocol dlt698 or both)
    ble: BleMeterLink | None = None  # DL/T 645 over the meter's BLE transparent UART (bench file: ble)

    @property
    def address(self) -> str:
        """The meter's address."""
        return self.config.address


class Provider(Protocol):
    """Who provides a bench: its resources, its clock and the hands at it (a factory of `PROVIDERS`)."""

    kind: str  # what a report calls the bench: 'bench', 'twin', 'hybrid', 'served twin'

    @property
    def source_outlives_run(self) -> bool:
        """True when the source keeps its output if this process dies (a watchdog must drive it safe)."""
        ...

    def open(self, config: BenchConfig) -> tuple[BenchConfig, Clock]:
        """Start what it provides; the bench with its resources resolved, and the bench clock."""
        ...

    def operator(self, person: Operator) -> Operator:
        """The hands at the bench: who answers the steps a person does (`person`, or the provider's own)."""
        ...

    def close(self) -> None:
        """Stop what it started."""
        ...


class LabProvider:
    """A real bench: the bench file's resources as they are, the wall clock, and the person at it."""

    kind = "bench"
    source_outlives_run = True

    def open(self, config: BenchConfig) -> tuple[BenchConfig, Clock]:
        """The bench file as it is, on the monotonic wall clock."""
        return config, WallClock()

    def operator(self, person: Operator) -> Operator:
        """The person at the bench."""
        return person

    def close(self) -> None:
        """Nothing was started."""


def lab_provider_for(config: BenchConfig) -> LabProvider:
    """The lab itself provides every bench no other provider claims."""
    return LabProvider()


# Asked in order, like URL handlers: the first that claims the bench file provides it.
PROVIDERS: tuple[Callable[[BenchConfig], Provider | None], ...] = (twin_provider_for, lab_provider_for)


def provider_for(config: BenchConfig) -> Provider:
    """The provider of the bench a bench file describes (nothing is started yet)."""
    for factory in PROVIDERS:
        provider = factory(config)
        if provider is not None:
            return provider
    raise RigError(f"bench {config.name}: no provider claims it")


@dataclass
class Bench:
    """Opened instruments and positions of one bench run; `close()` drives everything safe."""

    config: BenchConfig
    clock: Clock
    source: PowerSource
    reference: ReferenceStandard
    positions: list[Position]
    provider: Provider = field(default_factory=LabProvider)  # who provides it: resources, clock, hands
    retry: RetryPolicy | None = None  # bench-fault retries of every instrument and port
    _closed: bool = field(default=False, repr=False)

    @property
    def meter(self) -> MeterType:
        """The meter type under test."""
        return self.config.meter

    def safe(self) -> None:
        """Source output off (errors propagate so the caller can report them)."""
        self.source.safe()

    def close(self) -> None:
        """Output off, instruments closed, the provider stopped; runs every step even if one fails."""
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        faulty = True  # every error a bench fault: reported as one, not as a failed test
        for step in (self.source.close, self.reference.close, lambda: close_chip_links(self.positions),
                     lambda: close_meter_links(self.positions)):
            try:
                step()
            except RigError as exc:
                errors.append(str(exc))
                faulty = faulty and isinstance(exc, BenchFault | LinkError)
        self.provider.close()
        if errors and faulty:
            raise BenchFault("closing the bench: " + "; ".join(errors) + " (check that the source is off)",
                             instrument="bench", what="drive safe and close", attempts=0)
        if errors:
            raise RigError("closing the bench: " + "; ".join(errors))


def transport_for(instrument: InstrumentConfig, retry: RetryPolicy | None = None) -> MessageTransport:
    """The message transport an instrument's resource string calls for (logged while a run records traffic)."""
    transport = logged(PyVisaTransport(instrument.resource, timeout_s=instrument.timeout_s))
    return transport if retry is None else RetryingTransport(transport, retry, name=instrument.role)


def _line(settings: SerialSettings) -> LineSettings:
    return LineSettings(settings.baud, settings.bytesize, settings.parity, settings.stopbits)


def open_meter_links(config: BenchConfig, positions: Sequence[Position], clock: Clock,
                     retry: RetryPolicy | None = None) -> None:
    """Give each position with a serial port its `MeterLink` (and `UartTap`), all opened at once: an
    RFC 2217 port takes about 0.35 s of negotiation, so they open in parallel. On failure none stays open."""
    log = active_traffic_log()
    traffic = log.data if log is not None else None
    for position in positions:
        where = f"positions.{position.index}"
        cfg = position.config
        for url in (cfg.serial, cfg.expansion_tap.serial if cfg.expansion_tap else None):
            if url in TWIN_SERIALS:
                raise RigError(f"{where}: serial port {url!r} needs the twin, but no twin serves this bench "
                               "(add a 'twin:' section to the bench file, or give the meter's real port)")
        upgrade = cfg.dlt698.upgrade
        if upgrade is not None and upgrade.image == TWIN_RESOURCE:
            raise RigError(f"{where}: dlt698.upgrade.image 'twin' needs the twin, but no twin serves this bench "
                           "(give the path of the image the manufacturer supplied, with its version and checksum)")
        if cfg.serial is not None and cfg.speaks_645:
            position.link = MeterLink(cfg.serial, cfg.address, clock, line=_line(cfg.line),
                                      password=cfg.write_password, traffic=traffic, retry=retry)
        if cfg.expansion_tap is not None:
            position.tap = UartTap(cfg.expansion_tap.serial, clock, _line(cfg.expansion_tap.line), traffic=traffic)
        if cfg.ble is not None and cfg.speaks_645:  # opening starts its event loop; the meter is connected at first use
            position.ble = BleMeterLink(ble_target(cfg), cfg.address, clock, backend=ble_backend(cfg, where),
                                        password=cfg.write_password, traffic=traffic, retry=retry)
        if cfg.speaks_698:
            open_698_links(position, clock, traffic, retry, where)
    ports: list[MeterLink | UartTap | Dlt698Link] = [
        p for pos in positions for p in (pos.link, pos.tap, pos.ble, pos.link698, pos.ble698) if p is not None]
    if not ports:
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(ports))) as pool:
        results = list(pool.map(_try_open, ports))
    problems = [problem for problem in results if problem]
    if problems:
        close_meter_links(positions)
        raise RigError("; ".join(problems))


def ble_target(cfg: PositionConfig) -> BleTarget:
    """The BLE target of a position's bench entry."""
    ble = cfg.ble
    assert ble is not None
    return BleTarget(ble.name, ble.address, ble.service_uuid, ble.write_uuid, ble.notify_uuid, pairing=ble.pairing,
                     scan_timeout_s=ble.scan_timeout_s, connect_timeout_s=ble.connect_timeout_s)


def ble_backend(cfg: PositionConfig, where: str) -> BleBackend:
    """The one place a bench file's `ble.backend` becomes a Bluetooth stack: bleak's default (the OS's), or
    bleak backend classes that drive a bumble central (the twin's air, or an HCI transport)."""
    assert cfg.ble is not None
    spec = cfg.ble.backend
    if spec == "bleak":
        return BleBackend()
    if spec == TWIN_RESOURCE:
        raise RigError(f"{where}: ble backend 'twin' needs the twin, but no twin serves this bench (add a "
                       "'twin:' section to the bench file, or give a real Bluetooth backend)")
    if spec.startswith("twin-ble://"):  # the embedded twin's air in this process: its own central
        from rig.twin.ble import air_for

        air = air_for(spec)
        if air is None:
            raise RigError(f"{where}: BLE backend {spec}: no twin with that air runs in this process")
        return air.central().backends()
    from drivers.ble.bumble_central import backend_for  # bumble is imported only for a bench that asks for it

    return backend_for(spec)


def open_698_links(position: Position, clock: Clock, traffic: TrafficHook | None, retry: RetryPolicy | None,
                   where: str) -> None:
    """The position's DL/T 698.45 links (not yet opened): on a meter that speaks both protocols they borrow
    the DL/T 645 links' ports (one host opens a UART once)."""
    cfg = position.config
    link698 = cfg.dlt698
    if cfg.serial is not None:
        uart = shared_port(position.link) if position.link is not None else open_serial_port
        position.link698 = Dlt698Link(cfg.serial, cfg.server_address, clock, client=link698.client_address,
                                      logical=link698.logical_address, line=_line(cfg.line), port_factory=uart,
                                      traffic=traffic, retry=retry)
    if cfg.ble is not None:
        air = shared_port(position.ble) if position.ble is not None else \
            ble_port(ble_target(cfg), clock, ble_backend(cfg, where))
        position.ble698 = Dlt698Link(ble_target(cfg).url, cfg.server_address, clock, client=link698.client_address,
                                     logical=link698.logical_address, line=BLE_AIR, port_factory=air,
                                     traffic=traffic, retry=retry)


def _try_open(port: MeterLink | UartTap | Dlt698Link) -> str:
    try:
        port.open()
    except RigError as exc:
        return str(exc)
    return ""


def close_meter_links(positions: Sequence[Position]) -> None:
    """Close every position's meter link and tap (in parallel: pyserial waits 0.3 s on each close)."""
    ports = [p for pos in positions for p in (pos.link, pos.tap, pos.ble, pos.link698, pos.ble698)
             if p is not None and p.is_open]
    if ports:
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(ports))) as pool:
            list(pool.map(lambda port: port.close(), ports))


def build_instruments(config: BenchConfig, retry: RetryPolicy | None) -> tuple[PowerSource, ReferenceStandard]:
    """The source and the reference the bench file's `driver:` names select (drivers.registry), not opened."""
    source = source_driver(config.instrument("source").driver).build(
        transport_for(config.instrument("source"), retry),
        max_voltage_v=config.safety.max_voltage_v, max_current_a=config.safety.max_current_a)
    reference = reference_driver(config.instrument("reference").driver).build(
        transport_for(config.instrument("reference"), retry))
    return source, reference


def open_bench(config: BenchConfig) -> Bench:
    """Let the bench's provider start (the twin when the bench file asks for it), then open the source,
    the reference and the positions; on failure nothing stays open."""
    provider = provider_for(config)
    config, clock = provider.open(config)
    try:
        retry = RetryPolicy(clock, attempts=config.run.retry_attempts, backoff_s=config.run.retry_backoff_s)
        source, reference = build_instruments(config, retry)
    except BaseException:
        provider.close()
        raise
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
        provider.close()
        raise
    positions = [
        Position(index=i, name=config.position_name(i), config=p, calculator=reference.calculator(p.pulse_channel))
        for i, p in enumerate(config.positions)
    ]
    try:
        open_chip_links(config, positions)
        open_meter_links(config, positions, clock, retry)
    except BaseException:
        with contextlib.suppress(RigError):
            close_chip_links(positions)
        for instrument in (source, reference):
            with contextlib.suppress(RigError):
                instrument.close()
        provider.close()
        raise
    return Bench(config=config, clock=clock, source=source, reference=reference, positions=positions,
                 provider=provider, retry=retry)


@contextlib.contextmanager
def bench_session(config: BenchConfig) -> Iterator[Bench]:
    """`with bench_session(cfg) as bench:` opens the bench and always drives it safe on exit."""
    bench = open_bench(config)
    try:
        yield bench
    finally:
        bench.close()
