"""The bench builder: from a validated bench file to opened drivers, a clock, and the positions.

This is the one place where a bench and the twin differ: resources that say `twin` start the embedded
twin and point at its ports; everything above receives the same drivers either way.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from drivers.ble import BleBackend, BleTarget
from drivers.clock import Clock, WallClock
from drivers.dlt645.ble_link import BleMeterLink
from drivers.dlt645.link import LineSettings, MeterLink, UartTap
from drivers.errors import BenchFault, LinkError, RigError
from drivers.reference import ErrorCalculator, ReferenceStandard
from drivers.retry import RetryingTransport, RetryPolicy
from drivers.source import PowerSource
from drivers.spi.link import ChipLink
from drivers.transport import MessageTransport, PyVisaTransport, active_traffic_log, logged
from rig.config import TWIN_RESOURCE, BenchConfig, InstrumentConfig, MeterType, PositionConfig, SerialSettings
from rig.spi_link import close_chip_links, open_chip_links
from rig.twin.control import RemoteTwinControl, TwinControl
from rig.twin.runtime import Twin
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
    ble: BleMeterLink | None = None  # DL/T 645 over the meter's BLE transparent UART (bench file: ble; issue 8)

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
    retry: RetryPolicy | None = None  # bench-fault retries of every instrument and port (issue 11)
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
        faulty = True  # every error a bench fault (issue 11): reported as one, not as a failed test
        for step in (self.source.close, self.reference.close, lambda: close_chip_links(self.positions),
                     lambda: close_meter_links(self.positions)):
            try:
                step()
            except RigError as exc:
                errors.append(str(exc))
                faulty = faulty and isinstance(exc, BenchFault | LinkError)
        if isinstance(self.twin_control, RemoteTwinControl):
            self.twin_control.close()
        if self.twin is not None:
            self.twin.stop()
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
                raise RigError(f"{where}: serial port {url!r} needs the twin, but no twin serves this bench")
        if cfg.serial is not None:
            position.link = MeterLink(cfg.serial, cfg.address, clock, line=_line(cfg.line),
                                      password=cfg.write_password, traffic=traffic, retry=retry)
        if cfg.expansion_tap is not None:
            position.tap = UartTap(cfg.expansion_tap.serial, clock, _line(cfg.expansion_tap.line), traffic=traffic)
        if cfg.ble is not None:  # issue 8: opening starts its event loop; the meter is connected at the first request
            position.ble = BleMeterLink(ble_target(cfg), cfg.address, clock, backend=ble_backend(cfg, where),
                                        password=cfg.write_password, traffic=traffic, retry=retry)
    ports: list[MeterLink | UartTap] = [p for pos in positions for p in (pos.link, pos.tap, pos.ble) if p is not None]
    if not ports:
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(ports))) as pool:
        results = list(pool.map(_try_open, ports))
    problems = [problem for problem in results if problem]
    if problems:
        close_meter_links(positions)
        raise RigError("; ".join(problems))


def ble_target(cfg: PositionConfig) -> BleTarget:
    """The BLE target of a position's bench entry (issue 8)."""
    ble = cfg.ble
    assert ble is not None
    return BleTarget(ble.name, ble.address, ble.service_uuid, ble.write_uuid, ble.notify_uuid, pairing=ble.pairing,
                     scan_timeout_s=ble.scan_timeout_s, connect_timeout_s=ble.connect_timeout_s)


def ble_backend(cfg: PositionConfig, where: str) -> BleBackend:
    """The one place a bench file's `ble.backend` becomes a Bluetooth stack: bleak's default (the OS's), or
    bleak backend classes that drive a bumble central (the twin's air, or an HCI transport) (issue 8)."""
    assert cfg.ble is not None
    spec = cfg.ble.backend
    if spec == "bleak":
        return BleBackend()
    if spec == TWIN_RESOURCE:
        raise RigError(f"{where}: ble backend 'twin' needs the twin, but no twin serves this bench")
    from rig.twin.ble_central import backend_for  # bumble is imported only for a bench that asks for it

    return backend_for(spec)


def _try_open(port: MeterLink | UartTap) -> str:
    try:
        port.open()
    except RigError as exc:
        return str(exc)
    return ""


def close_meter_links(positions: Sequence[Position]) -> None:
    """Close every position's meter link and tap (in parallel: pyserial waits 0.3 s on each close)."""
    ports = [p for pos in positions for p in (pos.link, pos.tap, pos.ble) if p is not None and p.is_open]
    if ports:
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(ports))) as pool:
            list(pool.map(lambda port: port.close(), ports))


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
    retry = RetryPolicy(clock, attempts=config.run.retry_attempts, backoff_s=config.run.retry_backoff_s)
    source = PowerSource(
        transport_for(config.instrument("source"), retry),
        max_voltage_v=config.safety.max_voltage_v,
        max_current_a=config.safety.max_current_a,
    )
    reference = ReferenceStandard(transport_for(config.instrument("reference"), retry))
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
    try:
        open_chip_links(config, positions)
        open_meter_links(config, positions, clock, retry)
    except BaseException:
        with contextlib.suppress(RigError):
            close_chip_links(positions)
        for instrument in (source, reference):
            with contextlib.suppress(RigError):
                instrument.close()
        if twin is not None:
            twin.stop()
        raise
    return Bench(config=config, clock=clock, source=source, reference=reference, positions=positions,
                 twin=twin, twin_control=control, retry=retry)


@contextlib.contextmanager
def bench_session(config: BenchConfig) -> Iterator[Bench]:
    """`with bench_session(cfg) as bench:` opens the bench and always drives it safe on exit."""
    bench = open_bench(config)
    try:
        yield bench
    finally:
        bench.close()
