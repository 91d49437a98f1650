"""Each twin meter's SPI bus: the chip, the MCU's metering task, the rig's spidev-like port, a recorder.

The recorder is the twin's logic analyser: while a capture window is open it keeps every frame on the
bus and renders them as a VCD capture (drivers.spi.vcd.write_vcd) at the bus clock. `TwinSpiDev` has
spidev's `SpiDev` interface. The bench builder reaches both through `twin-spi://` URLs (`lookup`).
"""

from __future__ import annotations

import io
import random
import threading
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from drivers.errors import InstrumentError, NotOpenError, ValidationError
from drivers.spi.codec import SpiTransaction
from drivers.spi.vcd import SpiSignalNames, write_vcd
from rig.config import TWIN_RESOURCE, MeterType, SpiKnobs, SpiPositionConfig
from rig.twin.chip import PROFILE, Measurement, Rn8209Chip, factory_calibration
from rig.twin.mcu import GLITCH_S, POLLED, McuReadings, MeteringTask
from rig.twin.meter import MeteringModule
from rig.twin.world import Terminals, World

URL_PREFIX = "twin-spi://"
# Bus time recorded before the first frame of a capture (an analyser's pre-trigger), s.
PRETRIGGER_S = 10e-6
# Frames the twin's analyser holds in one capture (its memory depth).
CAPTURE_DEPTH_FRAMES = 200_000
# CS high after a frame of the rig's master before the bus takes the next, s.
MASTER_GAP_S = 5e-6


class BusRecorder:
    """Lays frames out on the bus timeline (one at a time, CS high between) and keeps them while armed."""

    def __init__(self, clock_hz: float, names: SpiSignalNames) -> None:
        self.clock_hz = clock_hz
        self.names = names
        self.half_s = 1.0 / (2.0 * clock_hz)
        self.free_s = 0.0  # bus time when the next frame may assert CS
        self._armed_at: float | None = None
        self._frames: list[SpiTransaction] = []
        self._overflow = False

    def frame(self, mosi: bytes, miso: bytes, at_s: float, gap_s: float) -> float:
        """Put one frame on the bus at `at_s` or when the bus is free; returns when CS is released."""
        start = max(at_s, self.free_s)
        end = start + (16 * len(mosi) + 1) * self.half_s
        if self._armed_at is not None:
            if len(self._frames) < CAPTURE_DEPTH_FRAMES:
                self._frames.append(SpiTransaction(start, end, bytes(mosi), bytes(miso)))
            else:
                self._overflow = True
        self.free_s = end + max(gap_s, 2 * self.half_s)
        return end

    @property
    def armed(self) -> bool:
        """True while a capture window is open."""
        return self._armed_at is not None

    def arm(self, now_s: float) -> None:
        """Open a capture window at `now_s`."""
        self._armed_at = now_s
        self._frames = []
        self._overflow = False

    def disarm(self) -> str:
        """Close the window; its frames as VCD text, times from the window's start."""
        if self._armed_at is None:
            raise InstrumentError("the twin's SPI capture ended without begin()")
        start, frames, overflow = self._armed_at, self._frames, self._overflow
        self._armed_at, self._frames = None, []
        if overflow:
            raise InstrumentError(
                f"the twin's SPI analyser filled its memory ({CAPTURE_DEPTH_FRAMES} frames) during the "
                "capture window: capture a shorter window"
            )
        origin = min([start, *(f.start_s for f in frames)]) - PRETRIGGER_S
        shifted = [SpiTransaction(f.start_s - origin, f.end_s - origin, f.mosi, f.miso) for f in frames]
        out = io.StringIO()
        write_vcd(shifted, out, clock_hz=self.clock_hz, mode=PROFILE.spi_mode, names=self.names)
        return out.getvalue()


# A poll nobody listened to is replayed at the latest after this much bench time (energy deltas stay far
# below the 24-bit wrap of EnergyP).
MAX_REPLAY_DELAY_S = 3600.0


@dataclass
class ChipBus:
    """One meter's metering chip, the MCU task that polls it, and the bus between them (a stepped model).

    While nothing can tell (no capture window open, no defect that disturbs the MCU's frames, the chip
    calibrated as the MCU expects), a poll is not put on the wire frame by frame: the bus notes what the
    chip measured at that instant and replays the poll's outcome (MCU readings, RData) the moment
    anything looks: the rig's master, a capture, the MCU's readings, a power change. The outcome is the
    same; a rack of meters polling every second then costs microseconds per poll, not a millisecond.
    """

    world: World
    chip: Rn8209Chip
    recorder: BusRecorder
    mcu: MeteringTask | None = None
    _terminals: Terminals = field(default_factory=Terminals)
    _pending: tuple[float, Measurement] | None = None
    _pending_polls: int = 0

    def mcu_transfer(self, mosi: bytes, at_s: float, cs_break_after: int | None) -> tuple[bytes, float]:
        """A frame of the MCU; with `cs_break_after` CS rises after that many bytes, then falls again."""
        if cs_break_after is None:
            miso = self.chip.transfer(mosi, self._terminals)
            return miso, self.recorder.frame(mosi, miso, at_s, 0.0)
        first, rest = mosi[:cs_break_after], mosi[cs_break_after:]
        miso_first = self.chip.transfer(first, self._terminals)
        end = self.recorder.frame(first, miso_first, at_s, GLITCH_S)
        miso_rest = self.chip.transfer(rest, self._terminals)
        return miso_first + miso_rest, self.recorder.frame(rest, miso_rest, end, 0.0)

    def _quiet(self, mcu: MeteringTask) -> bool:
        knobs = self.chip.knobs
        return (mcu.booted and not self.recorder.armed and not knobs.cs_glitch and not knobs.msb_last
                and not knobs.rdata_not_updated and not self.chip.energy_read_clears
                and self.chip.calibration_checksum == mcu.calibration.checksum)

    def sync(self) -> None:
        """Replay the last poll nobody listened to (its outcome is what the frames would have left)."""
        if self._pending is None or self.mcu is None:
            return
        at_s, measurement = self._pending
        polls, self._pending, self._pending_polls = self._pending_polls, None, 0
        raw = {name: self.chip.measured(name, measurement) for name in POLLED}
        self.chip.rdata = raw[POLLED[-1]]  # the poll ends reading RData after its last register
        self.mcu.take({name: PROFILE.register(name).from_raw(v) for name, v in raw.items()}, at_s, polls)

    def step(self, t0: float, dt: float, terminals: Terminals) -> None:
        """Integrate the chip over the step, running the MCU's polls at their instants within it."""
        self._terminals = terminals
        chip, mcu = self.chip, self.mcu
        if self._pending is not None and (chip.supply_ok(terminals) != chip.powered
                                          or t0 - self._pending[0] > MAX_REPLAY_DELAY_S):
            self.sync()
        chip.sync_power(t0, terminals)
        if mcu is not None and not chip.powered:
            mcu.halt()
        t, end = t0, t0 + dt
        while mcu is not None and mcu.next_event_s is not None and mcu.next_event_s < end:
            at = max(mcu.next_event_s, t)
            chip.integrate(at - t, terminals)
            t = at
            if self._quiet(mcu):
                self._pending = (at, chip.snapshot(terminals))
                self._pending_polls += 1
                mcu.pass_poll(at)
            else:
                self.sync()
                mcu.run(at)
        chip.integrate(end - t, terminals)

    def master_transfer(self, mosi: bytes) -> bytes:
        """A frame of the rig's master, at the World's current time."""
        with self.world.lock:
            self.sync()
            terminals = self.world.terminals()
            self._terminals = terminals
            self.chip.sync_power(self.world.time_s, terminals)
            miso = self.chip.transfer(mosi, terminals)
            self.recorder.frame(mosi, miso, self.world.time_s, MASTER_GAP_S)
            return miso

    def mcu_readings(self) -> McuReadings:
        """What the MCU last read from the chip (for its display and DL/T 645 server)."""
        with self.world.lock:
            self.sync()
            if self.mcu is None:
                return McuReadings()
            return replace(self.mcu.readings)


def build_bus(world: World, meter: MeterType, metering: MeteringModule, knobs: SpiKnobs,
              spi: SpiPositionConfig | None, seed: str) -> ChipBus:
    """A meter's chip and MCU task on a recorded bus, following the position's SPI settings."""
    spi = spi if spi is not None else SpiPositionConfig(capture=TWIN_RESOURCE)
    kv, ki = spi.kv(meter), spi.ki(meter)
    chip = Rn8209Chip(meter=meter, metering=metering, knobs=knobs, kv_v_per_count=kv, ki_a_per_count=ki,
                      rng=random.Random(f"{seed}:chip"))
    names = SpiSignalNames(**spi.signals.model_dump())
    bus = ChipBus(world=world, chip=chip, recorder=BusRecorder(spi.speed_hz, names))
    bus.mcu = MeteringTask(meter=meter, calibration=factory_calibration(meter, chip.raw_gain), knobs=knobs,
                           kv_v_per_count=kv, ki_a_per_count=ki, transfer=bus.mcu_transfer,
                           rng=random.Random(f"{seed}:mcu"))
    chip.power_up_listeners.append(bus.mcu.power_up)
    world.on_second.append(chip.redraw)
    return bus


# ---------------------------------------------------------------------- the rig's side of the bus


def _bit_reverse(byte: int) -> int:
    return int(f"{byte:08b}"[::-1], 2)


def _late_by_one_bit(data: bytes) -> bytes:
    """The bits as a receiver sampling on the wrong edge sees them: one bit late."""
    value = int.from_bytes(data, "big") >> 1
    return value.to_bytes(len(data), "big")


class TwinSpiDev:
    """spidev.SpiDev's interface, wired to a twin meter's chip. Settings the chip cannot follow (mode,
    clock above its maximum, LSB-first, word size) garble the transfer as on a real bus."""

    def __init__(self, bus: ChipBus) -> None:
        self._bus = bus
        self._open = False
        self.mode = 0  # as spidev opens: the chip needs mode 1, set it
        self.max_speed_hz = PROFILE.max_clock_hz
        self.bits_per_word = 8
        self.lsbfirst = False
        self.cshigh = False
        self.where = "twin SPI device"

    def open(self, bus: int, device: int) -> None:
        """Open the chip's port (bus and device are the bench's numbers; the twin has one chip here)."""
        for name, value in (("bus", bus), ("device", device)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValidationError(f"spidev {name} {value!r} must be a non-negative int")
        self.where = f"twin SPI device {bus}.{device}"
        self._open = True

    def close(self) -> None:
        """Close the port."""
        self._open = False

    def _check(self, values: Any) -> bytes:
        if not self._open:
            raise NotOpenError(f"{self.where} is not open: call open(bus, device) first")
        if not isinstance(values, list | tuple) or not values:
            raise ValidationError(f"{self.where}: a transfer takes a non-empty list of byte values, got {values!r}")
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
                raise ValidationError(f"{self.where}: {value!r} is not a byte value (0-255); nothing was sent")
        if self.bits_per_word != 8:
            raise InstrumentError(f"{self.where}: the chip takes 8-bit words, bits_per_word is {self.bits_per_word}")
        return bytes(values)

    def xfer2(self, values: list[int], speed_hz: int = 0, delay_usecs: int = 0, bits_per_word: int = 0) -> list[int]:
        """Full-duplex transfer with CS held for the whole list; returns the MISO bytes."""
        mosi = self._check(values)
        speed = speed_hz or self.max_speed_hz
        garbled = self.mode != PROFILE.spi_mode or not 0 < speed <= PROFILE.max_clock_hz
        seen = bytes(_bit_reverse(b) for b in mosi) if self.lsbfirst else mosi
        if garbled:
            seen = _late_by_one_bit(seen)
        miso = self._bus.master_transfer(seen)
        if garbled:
            miso = _late_by_one_bit(miso)
        if self.lsbfirst:
            miso = bytes(_bit_reverse(b) for b in miso)
        return list(miso)

    def readbytes(self, length: int) -> list[int]:
        """Clock `length` bytes in (MOSI low)."""
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValidationError(f"{self.where}: readbytes takes a positive length, got {length!r}")
        return self.xfer2([0] * length)

    def writebytes(self, values: list[int]) -> None:
        """Clock bytes out, ignoring MISO."""
        self.xfer2(values)


class TwinCapture:
    """The twin's logic analyser on one bus, as a capture source: begin() arms it, end() gives the VCD."""

    def __init__(self, bus: ChipBus) -> None:
        self._bus = bus

    def begin(self) -> None:
        """Open the capture window now."""
        with self._bus.world.lock:
            self._bus.sync()
            self._bus.recorder.arm(self._bus.world.time_s)

    def end(self) -> bytes:
        """The VCD capture of the window."""
        with self._bus.world.lock:
            return self._bus.recorder.disarm().encode("ascii")


# ---------------------------------------------------------------------- in-process registry

_REGISTRY: dict[str, ChipBus] = {}
_REGISTRY_LOCK = threading.Lock()


def register(buses: list[ChipBus]) -> list[str]:
    """Make buses reachable by the bench builder; returns their `twin-spi://` URLs."""
    token = uuid.uuid4().hex[:12]
    urls = [f"{URL_PREFIX}{token}/{index}" for index in range(len(buses))]
    with _REGISTRY_LOCK:
        _REGISTRY.update(zip(urls, buses))
    return urls


def unregister(urls: list[str]) -> None:
    """Forget buses of a stopped twin."""
    with _REGISTRY_LOCK:
        for url in urls:
            _REGISTRY.pop(url, None)


def lookup(url: str) -> ChipBus:
    """The bus behind a `twin-spi://` URL; InstrumentError if its twin is not running in this process."""
    with _REGISTRY_LOCK:
        bus = _REGISTRY.get(url)
    if bus is None:
        raise InstrumentError(f"no twin SPI bus at {url}: its twin is not running in this process")
    return bus


def resolve_positions(positions: list[dict[str, Any]], urls: list[str]) -> None:
    """Replace `twin` in each position's spi master/capture with the URL of its bus (in place)."""
    for position, url in zip(positions, urls):
        spi = position.get("spi")
        if not spi:
            continue
        for key in ("master", "capture"):
            if spi.get(key) == TWIN_RESOURCE:
                spi[key] = url
