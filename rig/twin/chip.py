"""The twin's RN8209 metering chip: its register file behind a CS-framed SPI slave.

Written from the chip's side, from shared/reference/spi.md: it takes the register map (data) from
drivers.spi.rn8209 and nothing of the rig's host-side master. Values follow the World through the
meter's metering module; energy counters advance as the World is stepped.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from drivers.spi.registers import WRITE_FLAG, Command, Register
from drivers.spi.rn8209 import RN8209
from rig.config import ConfigError, MeterType, SpiKnobs
from rig.twin.meter import MIN_OPERATING_VOLTAGE_FRACTION, MeteringModule
from rig.twin.world import Terminals

PROFILE = RN8209
CLKIN_HZ = 3.579545e6
# The meter design's analogue front end: channel input voltages at Un and Ib (after the PGA), V.
FRONT_END_VU_V = 0.22
FRONT_END_VI_V = 0.05
# Power-on register values of the twin's chip (PRUN and DRUN set: it meters from power-up).
POWER_ON_VALUES = {"SYSCON": 0x0003, "EMUCON": 0x0003, "HFConst": 0x1000, "PStart": 0x0060, "GPQA": 0}
EMUCON_PRUN = 0x0001
EMUCON_ENERGY_READ_CLEAR = 0x8000
EMUSTATUS_REVP = 1 << 17
EMUSTATUS_NOPLD = 1 << 19
SYSSTATUS_WREN = 1 << 4  # the twin shows write enable here
# PStart compares with |PowerPA| / 256 (the twin's reading of "starting-power threshold").
PSTART_UNIT_COUNTS = 256
# Another Renergy-style identifier, for the wrong_device_id defect.
WRONG_DEVICE_ID = 0x820800
# Spread of the uncalibrated front end (1 sigma): what the factory's GPQA calibration removes.
RAW_GAIN_SPREAD = 0.015
# Residual calibration error of the RMS channels (1 sigma, fixed per meter).
RMS_RESIDUAL_SPREAD = 0.0005


class ChipDesignError(ConfigError):
    """The meter type cannot be built with the twin's front end (a register would overflow)."""


def design_hfconst(meter: MeterType) -> int:
    """HFConst = INT(16.1079 * Vu * Vi * 1e11 / (Un * Ib * EC)) for the twin's front end.

    A small meter constant makes HFConst large: the design then lowers the current channel's PGA gain
    (halving Vi) until it fits the 16-bit register, as a meter designer would.
    """
    vi = FRONT_END_VI_V
    for _ in range(5):  # PGA steps
        value = int(16.1079 * FRONT_END_VU_V * vi * 1e11 / (meter.un_v * meter.ib_a * meter.constant_imp_per_kwh))
        if value <= 0xFFFF:
            break
        vi /= 2
    if not 1 <= value <= 0xFFFF:
        raise ChipDesignError(
            f"HFConst {value} for {meter.nameplate} does not fit the RN8209's 16-bit register even at the "
            "lowest PGA gain: the twin's front end cannot meter this constant"
        )
    return value


def power_w_per_count(hfconst: int, meter_constant: float) -> float:
    """Watts per PowerPA count for a chip calibrated to `hfconst` (the reference's Kp)."""
    return 3.22155e12 / (2**32 * hfconst * meter_constant)


@dataclass(frozen=True)
class Calibration:
    """The meter's factory calibration of its chip, as the management MCU stores and writes it."""

    values: dict[str, int]

    @property
    def checksum(self) -> int:
        """What EMUStatus should show: the inverted 16-bit sum of the calibration registers."""
        return ~sum(self.values.values()) & 0xFFFF


def factory_calibration(meter: MeterType, raw_gain: float) -> Calibration:
    """Register values that calibrate a chip whose front end reads `raw_gain` too high (fraction)."""
    gpqa = round(2**15 * (1.0 / (1.0 + raw_gain) - 1.0))
    start_power_w = meter.un_v * 0.5 * 0.004 * meter.ib_a  # half of class-1 starting power at Un
    kp = power_w_per_count(design_hfconst(meter), meter.constant_imp_per_kwh)
    pstart = max(1, min(0xFFFF, round(start_power_w / kp / PSTART_UNIT_COUNTS)))
    values = {"SYSCON": 0x0003, "EMUCON": 0x0003, "HFConst": design_hfconst(meter), "PStart": pstart,
              "GPQA": PROFILE.register("GPQA").to_raw(gpqa)}
    return Calibration(values)


PowerListener = Callable[[float], None]
# Registers whose value the chip measures (rather than holds).
MEASURED = ("URMS", "IARMS", "UFreq", "PowerPA", "EnergyP", "EMUStatus")


@dataclass(frozen=True, slots=True)
class Measurement:
    """What the chip measures at one instant: its energy counter, the terminals, its power and noise."""

    energy: float
    terminals: Terminals
    power_w: float
    voltage_noise: float
    current_noise: float


class Rn8209Chip:
    """Register file and SPI slave of one meter's chip. Every method runs under the World's lock."""

    def __init__(self, *, meter: MeterType, metering: MeteringModule, knobs: SpiKnobs, kv_v_per_count: float,
                 ki_a_per_count: float, rng: random.Random) -> None:
        self.meter = meter
        self.metering = metering
        # The chip is the meter's front end: its energy scale is the scale of the registers and pulses too.
        metering.energy_scale = 1.0 + knobs.energy_scale_error_pct / 100.0
        self.knobs = knobs
        self.kv = kv_v_per_count
        self.ki = ki_a_per_count
        self.rng = rng
        self.raw_gain = rng.gauss(0.0, RAW_GAIN_SPREAD)
        self.hfconst_design = design_hfconst(meter)
        self.kp_design = power_w_per_count(self.hfconst_design, meter.constant_imp_per_kwh)
        self._voltage_residual = rng.gauss(0.0, RMS_RESIDUAL_SPREAD)
        self._current_residual = rng.gauss(0.0, RMS_RESIDUAL_SPREAD)
        self._voltage_noise = 0.0
        self._current_noise = 0.0
        self.powered = False
        self.power_up_listeners: list[PowerListener] = []
        self.registers: dict[str, int] = {}
        self.write_enabled = False
        self.channel = "A"
        self.rdata = 0
        self.wdata = 0
        self._energy = 0.0  # EnergyP, pulses (with the fraction of the next)
        self._energy2 = 0.0  # EnergyP2, pulses
        self._reset()

    # ------------------------------------------------------------------ power, time, noise

    def _reset(self) -> None:
        self._power_cache: tuple[Terminals | None, float] = (None, 0.0)
        self.registers = {name: PROFILE.register(name).to_raw(v) for name, v in POWER_ON_VALUES.items()}
        self.write_enabled = False
        self.channel = "A"
        self.rdata = 0
        self.wdata = 0
        self._energy = 0.0
        self._energy2 = 0.0

    def sync_power(self, t_s: float, terminals: Terminals) -> None:
        """Follow the supply: the chip runs from the meter's mains input and resets on power-up."""
        on = self.supply_ok(terminals)
        if on and not self.powered:
            self.powered = True
            self._reset()
            for listener in self.power_up_listeners:
                listener(t_s)
        elif not on:
            self.powered = False

    def redraw(self, _t: float) -> None:
        """New random error of the RMS channels for the next second of bench time."""
        sigma = self.knobs.rms_noise_pct / 100.0
        self._voltage_noise = self.rng.gauss(0.0, sigma)
        self._current_noise = self.rng.gauss(0.0, sigma)

    def _gain(self) -> float:
        """Power gain of the chip now: the raw front end corrected by whatever GPQA holds."""
        gpqa = PROFILE.register("GPQA").from_raw(self.registers["GPQA"])
        return (1.0 + self.raw_gain) * (1.0 + gpqa / 2**15)

    def supply_ok(self, terminals: Terminals) -> bool:
        """True when the meter's supply runs the chip."""
        return terminals.voltage_v >= MIN_OPERATING_VOLTAGE_FRACTION * self.meter.un_v

    def power_w(self, terminals: Terminals) -> float:
        """Active power the chip measures (signed), W."""
        if not self.powered:
            return 0.0
        cached_terminals, cached = self._power_cache
        if cached_terminals is terminals:
            return cached  # noise and gains change only between steps (each step has its own terminals)
        power = self.metering.registered_power_w(terminals) * self._gain()
        self._power_cache = (terminals, power)
        return power

    def integrate(self, dt_s: float, terminals: Terminals) -> None:
        """Advance the energy counters over `dt_s` with the terminals constant."""
        if dt_s <= 0 or not self.powered or not self.registers["EMUCON"] & EMUCON_PRUN:
            return
        hfconst = max(1, self.registers["HFConst"])
        # The same integrated energy as the meter's registers and pulse output (one energy path), in the
        # counter's units as HFConst sets them.
        rate = self.meter.constant_imp_per_kwh * self.hfconst_design / hfconst
        pulses = abs(self.metering.energy_kwh(terminals, dt_s)) * rate
        self._energy += pulses
        self._energy2 += pulses

    # ------------------------------------------------------------------ register values

    def snapshot(self, terminals: Terminals) -> Measurement:
        """What the chip measures now (the source of every measured register)."""
        return Measurement(self._energy, terminals, self.power_w(terminals), self._voltage_noise,
                           self._current_noise)

    def measured(self, name: str, m: Measurement) -> int:
        """The unsigned wire word of a measured register as of `m` (no read side effects)."""
        register = PROFILE.register(name)
        if name == "URMS":
            counts = m.terminals.voltage_v * (1 + self._voltage_residual + m.voltage_noise) / self.kv
        elif name == "IARMS":
            counts = m.terminals.current_a * (1 + self._current_residual + m.current_noise) / self.ki
        elif name == "UFreq":
            counts = CLKIN_HZ / 8 / m.terminals.frequency_hz
        elif name == "PowerPA":
            counts = m.power_w / self.kp_design
        elif name == "EnergyP":
            return int(m.energy) & 0xFFFFFF
        elif name == "EMUStatus":
            return self._emu_status(m.power_w)
        else:
            raise KeyError(f"{name} is not a measured register")
        return register.to_raw(min(register.max_value, max(register.min_value, round(counts))))

    def _value(self, register: Register, terminals: Terminals) -> int:
        """The unsigned wire word of a register now (reading it may clear it)."""
        name = register.name
        if name in self.registers:
            return self.registers[name]
        if name in MEASURED:
            value = self.measured(name, self.snapshot(terminals))
            if name == "EnergyP" and self.registers["EMUCON"] & EMUCON_ENERGY_READ_CLEAR:
                self._energy -= int(self._energy)
            return value
        if name == "EnergyP2":
            count = int(self._energy2)
            self._energy2 -= count
            return count & 0xFFFFFF
        if name == "PFCnt":
            return int((self._energy % 1.0) * self.registers["HFConst"]) & 0xFFFF
        if name == "SysStatus":
            return SYSSTATUS_WREN if self.write_enabled else 0
        if name == "RData":
            return self.rdata
        if name == "WData":
            return self.wdata
        if name == "DeviceID":
            return WRONG_DEVICE_ID if self.knobs.wrong_device_id else PROFILE.device_id
        return 0

    def _emu_status(self, power_w: float) -> int:
        power_counts = power_w / self.kp_design
        status = self.calibration_checksum
        if power_counts < 0:
            status |= EMUSTATUS_REVP
        if abs(power_counts) < self.registers["PStart"] * PSTART_UNIT_COUNTS:
            status |= EMUSTATUS_NOPLD
        return status

    @property
    def energy_read_clears(self) -> bool:
        """True when EMUCON makes EnergyP clear on read."""
        return bool(self.registers["EMUCON"] & EMUCON_ENERGY_READ_CLEAR)

    # ------------------------------------------------------------------ the SPI slave

    def _order(self, data: bytes) -> bytes:
        return data[::-1] if self.knobs.msb_last else data

    def transfer(self, mosi: bytes, terminals: Terminals) -> bytes:
        """One CS-framed transfer: the command byte, then data; returns what the chip drove on MISO."""
        if not self.powered or not mosi:
            return bytes(len(mosi))  # an unpowered chip drives nothing: the line reads low
        command = mosi[0]
        address = command & ~WRITE_FLAG & 0xFF
        register = PROFILE.at(address)
        if command & WRITE_FLAG:
            if register is not None:
                self._write(register, mosi[1:])
            return bytes(len(mosi))
        if register is None or not register.readable:
            return bytes(len(mosi))
        value = self._value(register, terminals)
        if register.name != PROFILE.rdata and not self.knobs.rdata_not_updated:
            self.rdata = value
        data = self._order(value.to_bytes(register.width_bytes, "big"))
        miso = bytes(1) + data[: len(mosi) - 1]
        return miso + bytes(len(mosi) - len(miso))

    def _write(self, register: Register, data: bytes) -> None:
        if len(data) < register.width_bytes:
            return  # CS rose before the last data byte: nothing is committed
        value = int.from_bytes(self._order(data[: register.width_bytes]), "big")
        special = {(s.register, s.code): command for command, s in PROFILE.commands.items()}
        if (register.name, value) in special:
            self._command(special[(register.name, value)])
            return
        if not register.writable or register.name not in self.registers:
            return
        if not self.write_enabled and not self.knobs.write_protect_ignored:
            return
        self.registers[register.name] = value
        self.wdata = value & 0xFFFF
        self._power_cache = (None, 0.0)  # GPQA may have changed

    def _command(self, command: Command) -> None:
        if command is Command.WRITE_ENABLE:
            self.write_enabled = True
        elif command is Command.WRITE_DISABLE:
            self.write_enabled = False
        elif command is Command.CHANNEL_A:
            self.channel = "A"
        elif command is Command.CHANNEL_B:
            self.channel = "B"
        elif command is Command.SOFT_RESET and self.write_enabled:
            self._reset()

    @property
    def calibration_checksum(self) -> int:
        """The checksum EMUStatus shows now: the inverted 16-bit sum of the calibration registers."""
        return ~sum(self.registers[name] for name in POWER_ON_VALUES) & 0xFFFF

    def energy_count(self) -> int:
        """Ground truth: EnergyP without reading (and clearing) it."""
        return int(self._energy) & 0xFFFFFF
