"""Builds and runs a twin from a bench file: World, meters, instruments, servers on loopback ports.

`Twin.resolve(bench)` returns the bench with every `twin` resource replaced by the port that serves
it; this is the one place where "twin" turns into real addresses.
"""

from __future__ import annotations

import functools
import random
from typing import Any

from rig.config import TWIN_RESOURCE, BenchConfig, TwinConfig
from rig.twin.control import ControlServer, TwinControl
from rig.twin.meter import MeteringModule, MeterModel
from rig.twin.reference import ReferenceModel
from rig.twin.scpi import ScpiTcpServer
from rig.twin.source import SourceModel
from rig.twin.world import VirtualClock, World


class Twin:
    """The meters and instruments of one bench file, simulated."""

    def __init__(self, bench: BenchConfig) -> None:
        config = bench.twin if bench.twin is not None else TwinConfig()
        self.bench = bench
        self.config = config
        self.world = World(seed=config.seed, epoch=config.epoch)
        self.clock = VirtualClock(self.world)
        # Independent, reproducible streams so adding a meter does not change another's noise.
        self.source = SourceModel(self.world, config.source)
        self.reference = ReferenceModel(self.world, config.reference, random.Random(f"{config.seed}:reference"))
        self.meters: list[MeterModel] = []
        self.world.models.append(self.reference)  # stepped first: meters' edges read its energy
        for index, position in enumerate(bench.positions):
            knobs = config.knobs_for(index)
            metering = MeteringModule(bench.meter, knobs.metering, random.Random(f"{config.seed}:meter:{index}"))
            metering.pulse_listeners.append(functools.partial(self.reference.pulse_edge, position.pulse_channel))
            self.world.on_second.append(metering.redraw)
            meter = MeterModel(index=index, address=position.address, metering=metering)
            self.meters.append(meter)
            self.world.models.append(meter)
        self.control = TwinControl(self)
        self._servers: dict[str, Any] = {}

    def start(self, *, control: bool = False) -> None:
        """Serve the instruments (and the control channel when asked) on loopback ports."""
        source = ScpiTcpServer(self.source)
        reference = ScpiTcpServer(self.reference)
        source.start()
        reference.start()
        self._servers = {"source": source, "reference": reference}
        if control:
            server = ControlServer(self.control)
            server.start()
            self._servers["control"] = server

    def stop(self) -> None:
        """Stop every server."""
        for server in self._servers.values():
            server.stop()
        self._servers = {}

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
        return BenchConfig.model_validate(data)
