"""Sans-IO codec of metering-chip SPI frames: command byte, then register data MSB first.

Drivers layer: bytes in, values and `RegisterAccess` records out; no I/O, imports nothing of the rig.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from drivers.errors import FrameError, ValidationError
from drivers.spi.registers import MAX_ADDRESS, WRITE_FLAG, ChipProfile, Register

AccessKind = Literal["read", "write"]


@dataclass(frozen=True)
class SpiTransaction:
    """One chip-select frame: what both lines carried, full duplex, with CS times in seconds."""

    start_s: float
    end_s: float
    mosi: bytes
    miso: bytes


@dataclass(frozen=True)
class RegisterAccess:
    """A decoded transaction; `problems` lists what is wrong with its structure (empty when sound)."""

    kind: AccessKind
    address: int
    register: Register | None  # None: the chip has no register at `address`
    value: int | None  # None when the data bytes cannot give one
    raw: bytes  # data bytes as carried (MOSI for writes, MISO for reads), command byte excluded
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the transaction is a well-formed access to a known register."""
        return not self.problems


def encode_read(profile: ChipProfile, reg: Register | str) -> bytes:
    """Bytes to clock out for a read: the command byte, then one dummy 0x00 per data byte."""
    register = profile.register(reg)
    if not register.readable:
        raise ValidationError(f"{profile.name} {register.name} is write-only; nothing was sent")
    return bytes([register.address]) + bytes(register.width_bytes)


def decode_read(profile: ChipProfile, reg: Register | str, miso: bytes) -> int:
    """Register value (counts) from the MISO bytes of a full-duplex read transfer."""
    register = profile.register(reg)
    expected = 1 + register.width_bytes
    if len(miso) != expected:
        raise FrameError(
            f"read of {register.name} needs {expected} MISO bytes (1 during the command, "
            f"{register.width_bytes} of data), got {len(miso)}: {miso.hex(' ')}"
        )
    return register.from_raw(int.from_bytes(miso[1:], "big"))


def encode_write(profile: ChipProfile, reg: Register | str, value: int) -> bytes:
    """Bytes of a write: 0x80 | address, then the value MSB first (two's complement if signed)."""
    register = profile.register(reg)
    if not register.writable:
        raise ValidationError(f"{profile.name} {register.name} is read-only; nothing was sent")
    raw = register.to_raw(value)
    return bytes([WRITE_FLAG | register.address]) + raw.to_bytes(register.width_bytes, "big")


def decode_transaction(profile: ChipProfile, txn: SpiTransaction) -> RegisterAccess:
    """Read a sniffed transaction as a register access; structure issues go to `problems`."""
    if not txn.mosi:
        raise FrameError(f"empty SPI transaction at {txn.start_s:.9f} s: no command byte")
    command = txn.mosi[0]
    kind: AccessKind = "write" if command & WRITE_FLAG else "read"
    address = command & MAX_ADDRESS
    register = profile.at(address)
    problems: list[str] = []
    if len(txn.miso) != len(txn.mosi):
        problems.append(
            f"MISO carried {len(txn.miso)} bytes and MOSI {len(txn.mosi)}; full duplex clocks both equally"
        )
    raw = txn.mosi[1:] if kind == "write" else txn.miso[1:]
    value: int | None = None
    if register is None:
        problems.append(f"{kind} of address 0x{address:02X}: {profile.name} has no register there")
        value = int.from_bytes(raw, "big") if raw else None
    else:
        what = f"{kind} of {register.name} (0x{address:02X})"
        if kind == "write" and not register.writable:
            problems.append(f"{what}: the register is read-only, the chip ignores it")
        if kind == "read" and not register.readable:
            problems.append(f"{what}: the register is write-only")
        if len(raw) != register.width_bytes:
            problems.append(
                f"{what} carried {len(raw)} data bytes; the register is {register.width_bytes} wide"
            )
        # Extra bytes after a full register are clocked but unused by the chip; a short one has no value.
        if len(raw) >= register.width_bytes:
            value = register.from_raw(int.from_bytes(raw[: register.width_bytes], "big"))
    return RegisterAccess(kind=kind, address=address, register=register, value=value, raw=bytes(raw),
                          problems=tuple(problems))
