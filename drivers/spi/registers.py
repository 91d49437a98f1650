"""Register maps of SPI metering chips, held as data (drivers layer; imports nothing of the rig).

A `ChipProfile` is everything the codec, the host-side master and a twin need to know about one chip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from drivers.errors import ValidationError

# Bit 7 of the command byte is the write flag, so seven address bits remain.
MAX_ADDRESS = 0x7F
WRITE_FLAG = 0x80


@dataclass(frozen=True, kw_only=True)
class Register:
    """One chip register: address, width on the wire, meaning and access rules."""

    name: str
    address: int
    width_bytes: int
    signed: bool = False
    description: str = ""
    unit: str = ""  # unit, or the formula that scales the raw count to one
    writable: bool = False
    calibration: bool = False  # covered by the chip's calibration checksum
    readable: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.address <= MAX_ADDRESS:
            raise ValidationError(
                f"register {self.name}: address 0x{self.address:X} is outside 0x00-0x{MAX_ADDRESS:02X}"
            )
        if not 1 <= self.width_bytes <= 4:
            raise ValidationError(f"register {self.name}: width {self.width_bytes} bytes is outside 1-4")

    @property
    def bits(self) -> int:
        """Width of the register in bits."""
        return 8 * self.width_bytes

    @property
    def min_value(self) -> int:
        """Smallest value the register holds (counts)."""
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max_value(self) -> int:
        """Largest value the register holds (counts)."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def to_raw(self, value: int) -> int:
        """Value (counts) to the unsigned word sent on the wire; ValidationError if it does not fit."""
        # bool is an int subclass; True written to a gain register is a caller bug, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(f"{self.name} takes an int, got {type(value).__name__} {value!r}")
        if not self.min_value <= value <= self.max_value:
            kind = "signed" if self.signed else "unsigned"
            raise ValidationError(
                f"{value} does not fit {self.name} ({self.width_bytes}-byte {kind}: "
                f"{self.min_value}..{self.max_value}); nothing was sent"
            )
        return value & ((1 << self.bits) - 1)

    def from_raw(self, raw: int) -> int:
        """Unsigned wire word to the register value (counts), two's complement if signed."""
        if self.signed and raw & (1 << (self.bits - 1)):
            return raw - (1 << self.bits)
        return raw


class Command(Enum):
    """Special commands a metering chip takes through its command register(s)."""

    WRITE_ENABLE = "write_enable"
    WRITE_DISABLE = "write_disable"
    CHANNEL_A = "channel_a"
    CHANNEL_B = "channel_b"
    SOFT_RESET = "soft_reset"


@dataclass(frozen=True)
class SpecialCommand:
    """A command code and the register it is written to."""

    register: str
    code: int


@dataclass(frozen=True, eq=False, kw_only=True)
class ChipProfile:
    """One chip's register map, identity, special commands and SPI settings.

    Commands name their own register because chips differ there: the RN8209 takes all of them in one
    command register, the HT7017 unlocks through WPREG (0x32) but resets through SRSTREG (0x33).
    `rdata`/`wdata` name the registers echoing the last read and written data (RN8209 style).
    Extension point for the HT7017 dialect: it verifies a read through a checksum register instead of
    RData/WData and pads writes with a zero byte, so it needs a verification field here and a branch in
    the codec/master before a profile of it can be used (not done yet).
    """

    name: str
    registers: tuple[Register, ...]
    device_id: int
    device_id_register: str
    commands: Mapping[Command, SpecialCommand]
    rdata: str
    wdata: str
    spi_mode: int
    max_clock_hz: int
    by_name: Mapping[str, Register] = field(init=False, repr=False)
    by_address: Mapping[int, Register] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Register] = {}
        by_address: dict[int, Register] = {}
        for reg in self.registers:
            if reg.name in by_name:
                raise ValidationError(f"{self.name}: register name {reg.name} appears twice")
            if reg.address in by_address:
                other = by_address[reg.address].name
                raise ValidationError(
                    f"{self.name}: {reg.name} and {other} share address 0x{reg.address:02X}"
                )
            by_name[reg.name] = reg
            by_address[reg.address] = reg
        # frozen dataclass: the lookup tables are derived once here.
        object.__setattr__(self, "by_name", MappingProxyType(by_name))
        object.__setattr__(self, "by_address", MappingProxyType(by_address))
        object.__setattr__(self, "commands", MappingProxyType(dict(self.commands)))
        for role, name in (("device_id_register", self.device_id_register), ("rdata", self.rdata),
                           ("wdata", self.wdata)):
            if name not in by_name:
                raise ValidationError(f"{self.name}: {role} names {name}, which is not in the register table")
        for command, special in self.commands.items():
            target = by_name.get(special.register)
            if target is None or not target.writable:
                raise ValidationError(
                    f"{self.name}: command {command.value} goes to {special.register}, "
                    "which is not a writable register of the table"
                )
            target.to_raw(special.code)
        if self.spi_mode not in (0, 1, 2, 3):
            raise ValidationError(f"{self.name}: SPI mode {self.spi_mode} is not 0-3")

    def register(self, reg: Register | str) -> Register:
        """The register of this chip with that name (a Register is checked to belong to the chip)."""
        name = reg.name if isinstance(reg, Register) else reg
        found = self.by_name.get(name)
        if found is None:
            known = ", ".join(self.by_name)
            raise ValidationError(f"{self.name} has no register {name!r}; known: {known}")
        if isinstance(reg, Register) and reg != found:
            raise ValidationError(f"register {reg.name} at 0x{reg.address:02X} is not {self.name}'s {name}")
        return found

    def at(self, address: int) -> Register | None:
        """The register at a 7-bit address, or None when the chip has none there."""
        return self.by_address.get(address)

    def command(self, command: Command) -> SpecialCommand:
        """Register and code of a special command; ValidationError if this chip lacks it."""
        special = self.commands.get(command)
        if special is None:
            raise ValidationError(f"{self.name} has no {command.value} command")
        return special

    @property
    def calibration_registers(self) -> tuple[Register, ...]:
        """Registers covered by the chip's calibration checksum, in address order."""
        return tuple(sorted((r for r in self.registers if r.calibration), key=lambda r: r.address))
