"""SPI side of the metering chip: register maps, sans-IO codec, host-side master, VCD captures.

Drivers layer: imports nothing of the rig and opens no hardware at import. VCD lives in `drivers.spi.vcd`.
"""

from drivers.spi.codec import (
    RegisterAccess,
    SpiTransaction,
    decode_read,
    decode_transaction,
    encode_read,
    encode_write,
)
from drivers.spi.master import SpiDevLike, SpiMaster, open_spidev
from drivers.spi.registers import ChipProfile, Command, Register, SpecialCommand
from drivers.spi.rn8209 import RN8209

__all__ = [
    "RN8209",
    "ChipProfile",
    "Command",
    "Register",
    "RegisterAccess",
    "SpecialCommand",
    "SpiDevLike",
    "SpiMaster",
    "SpiTransaction",
    "decode_read",
    "decode_transaction",
    "encode_read",
    "encode_write",
    "open_spidev",
]
