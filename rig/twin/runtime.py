"""Builds and runs a twin from a bench file: World, meters, instruments, servers on loopback ports.

`Twin.resolve(bench)` returns the bench with every `twin` resource replaced by the port that serves
it; this is the one place where "twin" turns into real addresses.
"""

from __future__ import annotations

import contextlib
import functools
import random
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from drivers.errors import RigError
from rig.config import ESAM_MASTER_KEY, TWIN_RESOURCE, BenchConfig, TwinConfig
from rig.twin.ble import build_air, resolve_ble
from rig.twin.chamber import ChamberServer, build_chamber
from rig.twin.climate import attach_thermal
from rig.twin.control import ControlServer, TwinControl
from rig.twin.dlt698.firmware import UPGRADE_VERSION, firmware_signing_keypair, image_checksum, upgrade_image
from rig.twin.dlt698.server import Dlt698Server
from rig.twin.expansion import EXPANSION_LINE, ExpansionModule
from rig.twin.faults import FaultSchedule
from rig.twin.harmonics import attach_harmonics
from rig.twin.keys import TwinEsamKey
from rig.twin.management import ManagementModule
from rig.twin.meter import MeteringModule, MeterModel
from rig.twin.meter_uart import MeterUart
from rig.twin.power import MeterPower
from rig.twin.reference import REFERENCE_PERSONALITIES, ReferenceModel
from rig.twin.registers import attach_registers
from rig.twin.scpi import ScpiTcpServer
from rig.twin.security import build_security
from rig.twin.serial_port import TWIN_SERIALS, serve_port
from rig.twin.source import PERSONALITIES, SourceModel
from rig.twin.spi_bus import ChipBus, build_bus, register, resolve_positions, unregister
from rig.twin.spi_served import SpiServer
from rig.twin.world import VirtualClock, World


def served_driver(bench: BenchConfig, role: str, speaks: Iterable[str], default: str) -> str:
    """The dialect the twin's instrument with `role` speaks: the bench file's driver when the twin serves
    that instrument (RigError when it cannot speak it), else its own (`default`)."""
    instrument = bench.instrument(role)
    if instrument.resource != TWIN_RESOURCE:
        return default
    if instrument.driver not in speaks:
        raise RigError(f"instruments: the twin cannot serve {role} driver {instrument.driver!r} (it serves "
                       f"{', '.join(speaks)}); give that {role} a real resource")
    return instrument.driver


class Twin:
    """The meters and instruments of one bench file, simulated."""

    def __init__(self, bench: BenchConfig) -> None:
        config = bench.twin if bench.twin is not None else TwinConfig()
        self.bench = bench
        self.config = config
        self.world = World(seed=config.seed, epoch=config.epoch)
        self.clock = VirtualClock(self.world)
        # Independent, reproducible streams so adding a meter does not change another's noise.
        self.source = SourceModel(self.world, config.source,
                                  served_driver(bench, "source", PERSONALITIES, "scpi-phantom-source"))
        self.reference = ReferenceModel(self.world, config.reference, random.Random(f"{config.seed}:reference"),
                                        served_driver(bench, "reference", REFERENCE_PERSONALITIES, "scpi-reference"))
        self.meters: list[MeterModel] = []
        self.uarts: list[MeterUart] = []
        self.world.models.append(self.reference)  # stepped first: meters' edges read its energy
        self.chamber = build_chamber(self.world, bench, config.seed)  # when the bench names a chamber on the twin
        self.world.models.extend([self.chamber] if self.chamber is not None else [])
        # Bench faults: scheduled on the virtual clock, acting in the servers below the transports.
        self.faults = FaultSchedule(self.world, config.faults, random.Random(f"{config.seed}:faults"))
        self.faults.on_reference_reset.append(self.reference.power_on_reset)
        self.world.models.append(self.faults)
        self.esam_key = TwinEsamKey(bench, config.seed)  # ESAM master key: the bench's or the seed's
        firmware_key = firmware_signing_keypair(config.seed)  # the vendor key its meters' images are signed with
        self._firmware_key = firmware_key
        self._image_folder: Path | None = None
        for index, position in enumerate(bench.positions):
            knobs = config.knobs_for(index)
            metering = MeteringModule(bench.meter, knobs.metering, random.Random(f"{config.seed}:meter:{index}"))
            metering.pulse_listeners.append(functools.partial(self.reference.pulse_edge, position.pulse_channel))
            self.world.on_second.append(metering.redraw)
            # The management MCU (DL/T 645 on RS-485) and the expansion module polling it.
            management = ManagementModule(bench.meter, knobs.uart, position.address, metering, self.world,
                                          random.Random(f"{config.seed}:uart:{index}"))
            expansion = ExpansionModule(management, random.Random(f"{config.seed}:expansion:{index}"))
            # Its ESAM and security firmware; the expansion module's relay in the series current loop.
            build_security(management, expansion.relay, self.world.loop_breakers, knobs.security,
                           self.esam_key.key, f"{config.seed}:esam:{index}")
            # Its power side: supply hold-up, power-down events, RTC on the battery, the battery.
            management.attach_power(MeterPower(bench.meter, knobs.power, metering, management.rtc, self.world,
                                               random.Random(f"{config.seed}:power:{index}")))
            metering.dip_power_w = knobs.power.counts_during_dip
            self.world.models.append(attach_harmonics(management, knobs.harmonics))  # harmonic metering
            # The same firmware's DL/T 698.45 server: tariffs and freezes on the meter's clock, stepped after it.
            management.dlt698 = Dlt698Server(management, knobs.dlt698, firmware_key.public_hex)
            self.uarts.append(MeterUart(management))
            meter = MeterModel(index=index, address=position.address, metering=metering, management=management,
                               expansion=expansion)
            self.meters.append(meter)
            self.world.models.append(meter)
            self.world.models.append(management.dlt698)
            # Its register functions: identity, direction bit, tariffs, display, clock-setting log.
            self.world.models.append(attach_registers(management, knobs.registers, expansion.relay))
        # Each meter's metering chip and the MCU task polling it over SPI (stepped after the meters).
        self.spi_buses: list[ChipBus] = [
            build_bus(self.world, bench.meter, meter.metering, config.knobs_for(meter.index).spi,
                      bench.positions[meter.index].spi, f"{config.seed}:spi:{meter.index}")
            for meter in self.meters
        ]
        self.world.models.extend(self.spi_buses)
        self.thermals = attach_thermal(self.world, self.meters, config)  # each meter at its own temperature
        # Each meter's BLE module on a virtual controller, for positions whose bench entry says ble: twin.
        self.air = build_air([(m.index, bench.positions[m.index].ble, m.management, config.knobs_for(m.index).ble)
                              for m in self.meters if m.management is not None], self.faults)
        self._spi_urls: list[str] = []
        self.control = TwinControl(self)
        self._servers: dict[str, Any] = {}

    def start(self, *, control: bool = False) -> None:
        """Serve the instruments (and the control channel when asked) on loopback ports."""
        self.esam_key.publish(to_file=control)  # a derived ESAM key goes where the rig reads it
        source = ScpiTcpServer(self.source, faults=self.faults, name="source")
        reference = ScpiTcpServer(self.reference, faults=self.faults, name="reference")
        source.start()
        reference.start()
        self._servers = {"source": source, "reference": reference}
        if self.chamber is not None:  # the climate chamber's controller on Modbus TCP
            self._servers["chamber"] = ChamberServer(self.chamber)
            self._servers["chamber"].start()
        self._serve_serial_ports()
        if self.air is not None:  # the meters' BLE modules on the air; for another process an HCI controller
            self.air.start()
            self._servers["ble"] = self.air
            if control:
                self.air.serve_hci()
        self._spi_urls = register(self.spi_buses)
        if control:
            server = ControlServer(self.control)
            server.start()
            self._servers["control"] = server
            spi_server = SpiServer(self.spi_buses)  # the chips' SPI buses for a rig in another process
            spi_server.start()
            self._servers["spi"] = spi_server

    def _serve_serial_ports(self) -> None:
        """Each position's RS-485 port and expansion-link tap whose bench entry says 'twin' or 'twin+pty'."""
        for index, position in enumerate(self.bench.positions):
            seed = f"{self.config.seed}:line:{index}"
            if position.serial in TWIN_SERIALS:
                uart = self.uarts[index]
                self._servers[f"serial:{index}"] = serve_port(position.serial, uart, line=uart.line,
                                                              name=f"P{index + 1}", rng=random.Random(seed),
                                                              faults=self.faults, target=str(index))
                if uart.management.dlt698 is not None:  # its event reports go out on this port
                    uart.management.dlt698.report_sinks.append(self._servers[f"serial:{index}"].send)
            tap = position.expansion_tap
            expansion = self.meters[index].expansion
            if tap is not None and tap.serial in TWIN_SERIALS and expansion is not None:
                port = serve_port(tap.serial, None, line=EXPANSION_LINE, name=f"P{index + 1}-tap",
                                  rng=random.Random(seed + ":tap"))
                self._servers[f"tap:{index}"] = port
                expansion.tap = port.send

    def stop(self) -> None:
        """Stop every server."""
        for meter in self.meters:
            if meter.expansion is not None:
                meter.expansion.tap = None
        for server in self._servers.values():
            server.stop()
        self._servers = {}
        unregister(self._spi_urls)
        self._spi_urls = []
        self.esam_key.withdraw()  # the derived key file goes with the twin
        folder, self._image_folder = self._image_folder, None
        if folder is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(folder)

    def _upgrade_image(self) -> dict[str, str]:
        """The image file a manufacturer would hand the lab, signed with the twin's vendor key (which stays
        here), written once while the twin runs; its path, version and checksum."""
        path = self._image_folder / "meter-firmware.bin" if self._image_folder is not None else None
        if path is None:  # SM2 signatures are randomised: one image, written once, is the one declared
            self._image_folder = Path(tempfile.mkdtemp(prefix="rig-twin-firmware-"))  # mode 0700
            path = self._image_folder / "meter-firmware.bin"
            path.write_bytes(upgrade_image(self._firmware_key, self.config.seed))
        return {"image": str(path), "version": UPGRADE_VERSION, "checksum": image_checksum(path.read_bytes())}

    def __enter__(self) -> Twin:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def resolve(self, bench: BenchConfig, *, served: bool = False) -> BenchConfig:
        """The bench with `twin` resources pointing at this twin's ports (and its clock when served)."""
        if not self._servers:
            raise RuntimeError("start() the twin before resolving a bench against it")
        data = bench.model_dump(mode="python")
        for instrument in data["instruments"]:
            if instrument["resource"] == TWIN_RESOURCE:
                instrument["resource"] = self._servers[instrument["role"]].resource
        if served:
            data["clock"] = "twin+" + self._servers["control"].url
        for index, position in enumerate(data["positions"]):
            # serial: twin -> rfc2217://127.0.0.1:PORT (or the pty's /dev/pts/N for twin+pty)
            if f"serial:{index}" in self._servers:
                position["serial"] = self._servers[f"serial:{index}"].url
            if f"tap:{index}" in self._servers:
                position["expansion_tap"]["serial"] = self._servers[f"tap:{index}"].url
        if "ble" in self._servers:  # ble.backend: twin -> twin-ble://N (bumble:tcp-client:... when served)
            resolve_ble(data["positions"], self._servers["ble"], served=served)
        spi_server = self._servers.get("spi")
        resolve_positions(data["positions"], spi_server.urls if served and spi_server else self._spi_urls)
        for position in data["positions"]:  # dlt698.upgrade.image: twin -> a signed image file, as a vendor's
            upgrade = position["dlt698"].get("upgrade")
            if upgrade is not None and upgrade["image"] == TWIN_RESOURCE:
                upgrade.update(self._upgrade_image())
        esam_key = self.esam_key.reference()  # the derived ESAM key, by reference (never its value)
        if esam_key is not None:
            data.setdefault("keys", {})[ESAM_MASTER_KEY] = esam_key.model_dump(mode="python")
        return BenchConfig.model_validate(data)
