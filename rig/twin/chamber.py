"""The twin's climate chamber: air temperature that follows the set point with a first-order lag and a
limited ramp rate, a controller sensor with noise, served over Modbus TCP on loopback (pymodbus's server)
in the register map of the dialect the bench file names.

The chamber sets the World's air temperature at the meters (`World.ambient_c`); the meters' own thermal
models (rig.twin.climate) follow it. Without a chamber the World stays at the lab's 23 °C.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from drivers.chamber import CHAMBER_DIALECTS, ChamberDialect, Register, from_register, to_register
from drivers.errors import RigError
from rig.config import TWIN_RESOURCE, BenchConfig
from rig.twin.world import Terminals, World

if TYPE_CHECKING:
    from pymodbus.constants import ExcCodes

ROOM_C: Final = 23.0  # the lab around the chamber (IEC 62052-11 reference temperature)
AIR_TIME_CONSTANT_S: Final = 480.0  # the air's first-order lag towards the set point
MAX_RAMP_K_PER_S: Final = 3.0 / 60.0  # a typical chamber's heating/cooling rate, 3 K/min
SENSOR_NOISE_K: Final = 0.05  # the controller's reading (1 sigma), redrawn per read
AIR_RIPPLE_K: Final = 0.1  # the control loop's swing of the air around its mean (1 sigma, per second)
REGISTERS: Final = 512  # addresses 0..511 of each table are served (the dialect rows lie within)


@dataclass
class ChamberModel:
    """The chamber's air and controller, stepped over bench time."""

    world: World
    dialect: ChamberDialect
    rng: random.Random
    setpoint_c: float = ROOM_C
    running: bool = True
    mean_c: float = ROOM_C  # the air's mean temperature (the lag and ramp act on it)
    ripple_k: float = 0.0
    writes: list[tuple[float, str, float]] = field(default_factory=list)  # (bench time, what, value)

    def __post_init__(self) -> None:
        self.world.ambient_c = self.mean_c

    @property
    def target_c(self) -> float:
        """Where the air goes: the set point while conditioning, the room otherwise."""
        return self.setpoint_c if self.running else ROOM_C

    def step(self, t0: float, dt: float, terminals: Terminals) -> None:
        """The air follows its target: first-order lag, never faster than the ramp rate (closed form)."""
        if dt <= 0:
            return
        target = self.target_c
        lagged = target + (self.mean_c - target) * math.exp(-dt / AIR_TIME_CONSTANT_S)
        limit = MAX_RAMP_K_PER_S * dt
        self.mean_c += max(-limit, min(limit, lagged - self.mean_c))
        self.world.ambient_c = self.mean_c + self.ripple_k

    def redraw(self, _t: float) -> None:
        """The control loop's swing for the next second."""
        self.ripple_k = self.rng.gauss(0.0, AIR_RIPPLE_K)
        self.world.ambient_c = self.mean_c + self.ripple_k

    def reading_c(self) -> float:
        """What the controller's sensor reads now."""
        return self.world.ambient_c + self.rng.gauss(0.0, SENSOR_NOISE_K)

    # ---- the controller's registers

    def read(self, table: str, address: int) -> int:
        """The register value the controller serves (0 for an address it does not use)."""
        d = self.dialect
        with self.world.lock:
            if _is(d.setpoint, table, address):
                return to_register(self.setpoint_c, d)
            if _is(d.actual, table, address):
                return to_register(self.reading_c(), d)
            if d.run is not None and _is(d.run, table, address):
                return d.run_value if self.running else d.stop_value
        return 0

    def write(self, address: int, raw: int) -> bool:
        """Take a holding-register write; False for an address the controller does not take."""
        d = self.dialect
        with self.world.lock:
            if _is(d.setpoint, "holding", address):
                value = from_register(raw, d)
                if not d.min_c <= value <= d.max_c:
                    return False
                self.setpoint_c = value
                self.writes.append((self.world.time_s, "setpoint", value))
                return True
            if d.run is not None and _is(d.run, "holding", address) and raw in (d.run_value, d.stop_value):
                self.running = raw == d.run_value
                self.writes.append((self.world.time_s, "run", float(self.running)))
                return True
        return False


def _is(register: Register, table: str, address: int) -> bool:
    return register.table == table and register.address == address


class ChamberServer:
    """Serves a ChamberModel on a loopback Modbus TCP port, pymodbus's server in its own thread and loop."""

    def __init__(self, model: ChamberModel) -> None:
        self.model = model
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None  # pymodbus's ModbusTcpServer while serving (its methods are untyped)
        self._thread: threading.Thread | None = None

    @property
    def resource(self) -> str:
        """The resource a bench file names it by."""
        return f"TCPIP::127.0.0.1::{self.port}::SOCKET"

    async def _action(self, function_code: int, start: int, address: int, count: int, registers: list[int],
                      values: list[int] | list[bool] | None) -> ExcCodes | None:
        from pymodbus.constants import ExcCodes

        if values is not None:  # a write (06/16): the controller takes it or refuses the address/value
            for offset, raw in enumerate(values):
                if not self.model.write(address + offset, int(raw)):
                    return ExcCodes.ILLEGAL_VALUE
            return None
        table = "input" if function_code == 4 else "holding"
        for offset in range(count):
            registers[address - start + offset] = self.model.read(table, address + offset)
        return None

    def start(self) -> None:
        """Listen on a free loopback port and serve in a background thread."""
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        def bits() -> list[SimData]:
            return [SimData(0, count=16, values=False, datatype=DataType.BITS)]

        def words() -> list[SimData]:
            return [SimData(0, count=REGISTERS, values=0, datatype=DataType.REGISTERS)]

        device = SimDevice(self.model.dialect.unit_id, simdata=(bits(), bits(), words(), words()), action=self._action)
        ready = threading.Event()
        problem: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop

            async def serve() -> None:
                server = ModbusTcpServer(device, address=("127.0.0.1", 0))
                await server.serve_forever(background=True)
                self._server = server
                transport = server.transport
                sockets = getattr(transport, "sockets", None) or []
                self.port = int(sockets[0].getsockname()[1]) if sockets else 0

            try:
                loop.run_until_complete(serve())
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                problem.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="twin-chamber", daemon=True)
        self._thread.start()
        ready.wait(10.0)
        if problem or not self.port:
            raise RigError(f"the twin's climate chamber could not listen on loopback: {problem[0] if problem else '?'}")

    def stop(self) -> None:
        """Stop serving and close the port."""
        loop, server = self._loop, self._server
        if loop is None:
            return
        if server is not None:
            asyncio.run_coroutine_threadsafe(server.shutdown(), loop).result(5.0)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5.0)
        self._loop = self._server = self._thread = None


def chamber_dialect(bench: BenchConfig) -> ChamberDialect | None:
    """The dialect of the chamber the twin serves for `bench` (None: the bench names no chamber on the twin)."""
    chambers = [i for i in bench.instruments if i.role == "chamber"]
    if not chambers or chambers[0].resource != TWIN_RESOURCE:
        return None
    return CHAMBER_DIALECTS[chambers[0].driver]


def build_chamber(world: World, bench: BenchConfig, seed: int) -> ChamberModel | None:
    """The chamber model the bench file asks the twin for, stepped before the meters (None: no chamber)."""
    dialect = chamber_dialect(bench)
    if dialect is None:
        return None
    model = ChamberModel(world, dialect, random.Random(f"{seed}:chamber"))
    world.on_second.append(model.redraw)
    return model
