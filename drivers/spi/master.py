"""Host-side SPI master for a metering chip, over any object with spidev's `SpiDev` interface.

Drivers layer: nothing opens at import or in `__init__`; imports nothing of the rig.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, cast

from drivers.errors import InstrumentError, NotOpenError, ValidationError
from drivers.spi.codec import decode_read, encode_read, encode_write
from drivers.spi.registers import ChipProfile, Command, Register
from drivers.spi.rn8209 import RN8209


class SpiDevLike(Protocol):
    """The part of `spidev.SpiDev` the master uses; the twin offers the same."""

    mode: int
    max_speed_hz: int

    def open(self, bus: int, device: int) -> None: ...

    def xfer2(self, data: list[int]) -> list[int]: ...

    def close(self) -> None: ...


# A factory returns an already opened device for (bus, device), as `open_spidev` does.
SpiDevFactory = Callable[[int, int], SpiDevLike]


def _device_path(bus: int, device: int) -> str:
    return f"/dev/spidev{bus}.{device}"


def open_spidev(bus: int, device: int) -> SpiDevLike:
    """Open the kernel's /dev/spidevB.D through the spidev package (imported only here)."""
    try:
        import spidev
    except ImportError as exc:
        raise InstrumentError("the spidev package is not installed: pip install spidev (Linux only)") from exc
    spi: SpiDevLike = spidev.SpiDev()
    try:
        spi.open(bus, device)
    except FileNotFoundError as exc:
        raise InstrumentError(f"no {_device_path(bus, device)}: is the SPI controller enabled?") from exc
    except PermissionError as exc:
        raise InstrumentError(
            f"no permission on {_device_path(bus, device)}: add the user to its group (often 'spi')"
        ) from exc
    return spi


def _opening(device: SpiDevLike) -> SpiDevFactory:
    """A factory that opens a given (not yet opened) SpiDev-like object."""

    def factory(bus: int, dev: int) -> SpiDevLike:
        device.open(bus, dev)
        return device

    return factory


class SpiMaster:
    """Reads and writes chip registers, each access verified through the chip's RData/WData echo.

    Write verification compares WData (2 bytes) with the low 16 bits of the value written, or the
    low byte for a 1-byte register: the reference documents WData only as "last data written, 2
    bytes", and every writable RN8209 data register is at most 2 bytes wide. Special commands
    (unlock, lock, channel select, reset) are not verified: whether they pass through WData is not
    documented, and a reset clears it anyway.
    """

    def __init__(
        self,
        spi: SpiDevLike | SpiDevFactory,
        bus: int = 0,
        device: int = 0,
        *,
        speed_hz: int | None = None,
        profile: ChipProfile = RN8209,
    ) -> None:
        speed = profile.max_clock_hz if speed_hz is None else speed_hz
        if isinstance(speed, bool) or not isinstance(speed, int) or not 0 < speed <= profile.max_clock_hz:
            raise ValidationError(
                f"speed_hz {speed_hz!r} is outside 1..{profile.max_clock_hz} Hz allowed for {profile.name}"
            )
        # A class (spidev.SpiDev itself opens when given bus and device) or a function is a factory.
        if isinstance(spi, type) or not hasattr(spi, "xfer2"):
            self._factory = cast(SpiDevFactory, spi)
        else:
            self._factory = _opening(cast(SpiDevLike, spi))
        self.bus = bus
        self.device = device
        self.speed_hz = speed
        self.profile = profile
        self._spi: SpiDevLike | None = None

    @property
    def is_open(self) -> bool:
        """True between `open()` and `close()`."""
        return self._spi is not None

    def open(self) -> None:
        """Open the bus and set the chip's SPI mode and the clock (Hz)."""
        if self._spi is not None:
            return
        try:
            spi = self._factory(self.bus, self.device)
        except FileNotFoundError as exc:
            path = _device_path(self.bus, self.device)
            raise InstrumentError(f"no {path}: is the SPI controller enabled?") from exc
        spi.mode = self.profile.spi_mode
        spi.max_speed_hz = self.speed_hz
        self._spi = spi

    def close(self) -> None:
        """Close the bus; a later `open()` opens it again."""
        spi, self._spi = self._spi, None
        if spi is not None:
            spi.close()

    def __enter__(self) -> SpiMaster:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _transfer(self, mosi: bytes) -> bytes:
        if self._spi is None:
            raise NotOpenError(
                f"SPI master for {self.profile.name} on {_device_path(self.bus, self.device)} "
                "is not open: call open() first"
            )
        reply = bytes(self._spi.xfer2(list(mosi)))
        if len(reply) != len(mosi):
            raise InstrumentError(
                f"SPI transfer of {len(mosi)} bytes returned {len(reply)}: {reply.hex(' ')}"
            )
        return reply

    def _read_unverified(self, register: Register) -> int:
        return decode_read(self.profile, register, self._transfer(encode_read(self.profile, register)))

    def read(self, name: str) -> int:
        """Register value (counts), checked against RData (raises InstrumentError on mismatch)."""
        register = self.profile.register(name)
        value = self._read_unverified(register)
        rdata_reg = self.profile.register(self.profile.rdata)
        if register is rdata_reg:
            return value  # RData cannot confirm itself
        rdata = self._read_unverified(rdata_reg)
        wire = register.to_raw(value)
        # RData is wider than most registers; the read data sits in its low bytes.
        if rdata_reg.to_raw(rdata) & ((1 << register.bits) - 1) != wire:
            raise InstrumentError(
                f"read of {register.name} (0x{register.address:02X}) not confirmed: read "
                f"0x{wire:0{2 * register.width_bytes}X}, RData holds 0x{rdata_reg.to_raw(rdata):08X}; "
                f"check wiring, SPI mode {self.profile.spi_mode} and clock {self.speed_hz} Hz"
            )
        return value

    def write(self, name: str, value: int) -> None:
        """Write a register value (counts), checked against WData (raises InstrumentError on mismatch)."""
        register = self.profile.register(name)
        if any(special.register == register.name for special in self.profile.commands.values()):
            raise ValidationError(
                f"{register.name} takes special commands: use command(), unlock() or lock(); nothing was sent"
            )
        self._transfer(encode_write(self.profile, register, value))
        wdata_reg = self.profile.register(self.profile.wdata)
        wdata = wdata_reg.to_raw(self._read_unverified(wdata_reg))
        mask = (1 << (8 * min(register.width_bytes, wdata_reg.width_bytes))) - 1
        wire = register.to_raw(value)
        if wdata & mask != wire & mask:
            raise InstrumentError(
                f"write of {register.name} (0x{register.address:02X}) not confirmed: wrote "
                f"0x{wire:0{2 * register.width_bytes}X}, WData holds 0x{wdata:04X}; the chip ignores "
                "writes while protected: call unlock() first"
            )

    def command(self, command: Command) -> None:
        """Send a special command (unverified: see the class docstring)."""
        special = self.profile.command(command)
        self._transfer(encode_write(self.profile, special.register, special.code))

    def unlock(self) -> None:
        """Enable register writes."""
        self.command(Command.WRITE_ENABLE)

    def lock(self) -> None:
        """Protect registers against writes."""
        self.command(Command.WRITE_DISABLE)

    def select_channel(self, channel: str) -> None:
        """Select current channel 'A' or 'B' for the channel-dependent registers."""
        commands = {"A": Command.CHANNEL_A, "B": Command.CHANNEL_B}
        if channel not in commands:
            raise ValidationError(f"current channel {channel!r} is not 'A' or 'B'")
        self.command(commands[channel])

    def soft_reset(self) -> None:
        """Reset the chip's registers to their power-on values."""
        self.command(Command.SOFT_RESET)

    def device_id(self) -> int:
        """The chip's device identifier (RN8209: 0x820900), read and verified."""
        return self.read(self.profile.device_id_register)
