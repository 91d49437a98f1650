"""The twin's management MCU, metering task: sets the chip up at power-up, then polls it over SPI.

Written from the MCU firmware's side: frames come from the shared codec (pinned by the reference),
verification, scaling and retries are its own (the rig's host-side SpiMaster is not used here).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from drivers.errors import FrameError
from drivers.spi.codec import decode_read, encode_read, encode_write
from drivers.spi.registers import Command
from rig.config import MeterType, SpiKnobs
from rig.twin.chip import CLKIN_HZ, PROFILE, Calibration, power_w_per_count

# Bench time from power-up until the firmware starts the metering task, s.
BOOT_S = 0.3
# The chip needs this long after a soft reset before it takes writes, s.
RESET_WAIT_S = 0.002
# CS high between two frames of the MCU's SPI driver, s.
FRAME_GAP_S = 10e-6
# CS high for this long when it glitches mid-frame, s.
GLITCH_S = 4e-6
READ_ATTEMPTS = 3
ENERGY_WRAP = 1 << 24
# Polled every cycle, in this order; EMUStatus last (its checksum decides on a recalibration).
POLLED = ("EnergyP", "PowerPA", "URMS", "IARMS", "UFreq", "EMUStatus")

# transfer(mosi, at_s, cs_break_after) -> (miso, end_s): one CS-framed transfer on the bus.
BusTransfer = Callable[[bytes, float, int | None], tuple[bytes, float]]


@dataclass
class McuReadings:
    """What the MCU last took from the chip, in SI units (for its display; see `ChipBus.mcu_readings`)."""

    energy_kwh: float = 0.0  # accumulated from EnergyP deltas since the first power-up
    power_w: float = 0.0
    voltage_v: float = 0.0
    current_a: float = 0.0
    frequency_hz: float = 0.0
    updated_s: float | None = None  # bench time of the last complete poll


class MeteringTask:
    """Chip set-up and periodic polling; `next_event_s` says when it next wants the bus."""

    def __init__(self, *, meter: MeterType, calibration: Calibration, knobs: SpiKnobs, kv_v_per_count: float,
                 ki_a_per_count: float, transfer: BusTransfer, rng: random.Random) -> None:
        self.meter = meter
        self.calibration = calibration
        self.knobs = knobs
        self.kv = kv_v_per_count
        self.ki = ki_a_per_count
        self._transfer = transfer
        self.rng = rng
        self.readings = McuReadings()
        self.next_event_s: float | None = None
        self._booted = False
        self._cursor = 0.0  # bench time of the MCU's next SPI frame
        self._last_energy: int | None = None
        self._energy_counts = 0  # pulses counted since the first power-up
        self.chip_id_ok: bool | None = None
        self.polls = 0
        self.read_errors = 0
        self.write_errors = 0
        self.recalibrations = 0

    # ------------------------------------------------------------------ scheduling

    def power_up(self, t_s: float) -> None:
        """The meter's supply came up at `t_s`: boot, then set the chip up."""
        self._booted = False
        self._last_energy = None
        self.next_event_s = t_s + BOOT_S

    def halt(self) -> None:
        """The supply is gone: nothing runs."""
        self.next_event_s = None

    @property
    def booted(self) -> bool:
        """True once the chip is set up and the task polls."""
        return self._booted

    def run(self, t_s: float) -> None:
        """Do what is due at `t_s` (set-up after boot, or a poll) and schedule the next poll."""
        self._cursor = max(self._cursor, t_s)
        if not self._booted:
            self._set_up()
            self._booted = True
        else:
            self._poll()
        self._schedule(t_s)

    def pass_poll(self, t_s: float) -> None:
        """Schedule past a poll whose frames the bus replays later through `take` (nobody listens)."""
        self._schedule(t_s)

    def _schedule(self, t_s: float) -> None:
        interval = self.knobs.mcu_poll_interval_s + self.rng.gauss(0.0, self.knobs.mcu_poll_jitter_s)
        self.next_event_s = max(t_s + max(interval, 0.0), self._cursor)

    # ------------------------------------------------------------------ SPI frames

    def _frame(self, mosi: bytes) -> bytes:
        glitch = None
        if len(mosi) > 1 and self.knobs.cs_glitch > 0 and self.rng.random() < self.knobs.cs_glitch:
            glitch = self.rng.randint(1, len(mosi) - 1)
        miso, end_s = self._transfer(mosi, self._cursor, glitch)
        self._cursor = end_s + FRAME_GAP_S
        return miso

    def _read(self, name: str) -> int | None:
        """A register read confirmed by RData; None after READ_ATTEMPTS mismatches."""
        register = PROFILE.register(name)
        rdata = PROFILE.register(PROFILE.rdata)
        mask = (1 << register.bits) - 1
        for _ in range(READ_ATTEMPTS):
            try:
                value = decode_read(PROFILE, register, self._frame(encode_read(PROFILE, register)))
                echo = decode_read(PROFILE, rdata, self._frame(encode_read(PROFILE, rdata)))
            except FrameError:
                continue
            if rdata.to_raw(echo) & mask == register.to_raw(value):
                return value
        self.read_errors += 1
        return None

    def _command(self, command: Command) -> None:
        special = PROFILE.command(command)
        self._frame(encode_write(PROFILE, special.register, special.code))

    def _write(self, name: str, raw: int) -> None:
        register = PROFILE.register(name)
        self._frame(encode_write(PROFILE, register, register.from_raw(raw)))
        wdata = self._read(PROFILE.wdata)
        if wdata is None or wdata & 0xFFFF != raw & 0xFFFF:
            self.write_errors += 1

    # ------------------------------------------------------------------ the firmware

    def _calibrate(self) -> None:
        self._command(Command.WRITE_ENABLE)
        for name, raw in self.calibration.values.items():
            self._write(name, raw)
        self._command(Command.WRITE_DISABLE)
        self.recalibrations += 1

    def _set_up(self) -> None:
        device_id = self._read(PROFILE.device_id_register)
        self.chip_id_ok = device_id == PROFILE.device_id
        self._command(Command.WRITE_ENABLE)
        self._command(Command.SOFT_RESET)
        self._cursor += RESET_WAIT_S
        self._calibrate()
        self._last_energy = self._read("EnergyP")

    def _poll(self) -> None:
        start = self._cursor
        self.take({name: self._read(name) for name in POLLED}, start)

    def take(self, values: dict[str, int | None], at_s: float, polls: int = 1) -> None:
        """What the firmware does with one poll's register values (None: the read failed)."""
        energy = values["EnergyP"]
        if energy is not None:
            if self._last_energy is not None:
                self._energy_counts += (energy - self._last_energy) % ENERGY_WRAP
                self.readings.energy_kwh = self._energy_counts / self.meter.constant_imp_per_kwh
            self._last_energy = energy
        hfconst = self.calibration.values["HFConst"]
        power, urms, iarms, ufreq = (values[n] for n in ("PowerPA", "URMS", "IARMS", "UFreq"))
        if power is not None:
            self.readings.power_w = power * power_w_per_count(hfconst, self.meter.constant_imp_per_kwh)
        if urms is not None:
            self.readings.voltage_v = urms * self.kv
        if iarms is not None:
            self.readings.current_a = iarms * self.ki
        if ufreq:
            self.readings.frequency_hz = CLKIN_HZ / 8 / ufreq
        self.readings.updated_s = at_s
        self.polls += polls
        status = values["EMUStatus"]
        if status is not None and status & 0xFFFF != self.calibration.checksum:
            self._calibrate()  # the chip lost its calibration (reset, stray write): load it again
