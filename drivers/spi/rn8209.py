"""The Renergy RN8209 register map as data (drivers layer; imports nothing of the rig).

Source: shared/reference/spi.md. Widths are the bytes clocked on SPI, MSB first.
"""

from __future__ import annotations

from drivers.spi.registers import ChipProfile, Command, Register, SpecialCommand

# The datasheet's "special command register 0xEA" is the whole command byte: write flag 0x80 | 0x6A.
SPECIAL_COMMAND_ADDRESS = 0x6A

RN8209_REGISTERS: tuple[Register, ...] = (
    Register(name="SYSCON", address=0x00, width_bytes=2, writable=True, calibration=True, unit="bit field",
             description="PGA gains (IA bits 0-1, U bits 2-3, IB bits 4-5), ADC2ON bit 6"),
    Register(name="EMUCON", address=0x01, width_bytes=2, writable=True, calibration=True, unit="bit field",
             description="PRUN bit 0, DRUN bit 1, energy read-clear bit 15"),
    Register(name="HFConst", address=0x02, width_bytes=2, writable=True, calibration=True,
             unit="HFConst = INT(16.1079 * Vu * Vi * 1e11 / (Un * Ib * EC))",
             description="pulse constant"),
    Register(name="PStart", address=0x03, width_bytes=2, writable=True, calibration=True, unit="counts",
             description="active starting-power threshold"),
    # Two's complement in the datasheet: a gain correction may be negative.
    Register(name="GPQA", address=0x05, width_bytes=2, signed=True, writable=True, calibration=True,
             unit="gain = GPQA / 2^15", description="channel-A power gain"),
    Register(name="PFCnt", address=0x20, width_bytes=2, unit="pulses",
             description="fast pulse counter"),
    Register(name="IARMS", address=0x22, width_bytes=3, unit="I = IARMS * Ki (A)",
             description="channel-A current RMS"),
    Register(name="URMS", address=0x24, width_bytes=3, unit="U = URMS * Kv (V)",
             description="voltage RMS"),
    Register(name="UFreq", address=0x25, width_bytes=2,
             unit="f = CLKIN / 8 / UFreq, CLKIN = 3.579545 MHz (Hz)",
             description="line frequency period count (50 Hz -> 0x22F5)"),
    Register(name="PowerPA", address=0x26, width_bytes=4, signed=True,
             unit="P = PowerPA * Kp, Kp = 3.22155e12 / (2^32 * HFConst * EC) (W)",
             description="channel-A active power"),
    Register(name="EnergyP", address=0x29, width_bytes=3, unit="kWh = count / EC",
             description="active energy in pulses"),
    Register(name="EnergyP2", address=0x2A, width_bytes=3, unit="kWh = count / EC",
             description="active energy in pulses, cleared on read"),
    Register(name="EMUStatus", address=0x2D, width_bytes=3, unit="bit field",
             description="metering status and checksum of the calibration registers"),
    Register(name="SysStatus", address=0x43, width_bytes=1, unit="bit field",
             description="system status"),
    Register(name="RData", address=0x44, width_bytes=4, unit="raw",
             description="data of the last SPI read"),
    Register(name="WData", address=0x45, width_bytes=2, unit="raw",
             description="data of the last SPI write"),
    Register(name="SpecialCmd", address=SPECIAL_COMMAND_ADDRESS, width_bytes=1, writable=True, readable=False,
             unit="command code", description="special commands: write enable/disable, channel, reset"),
    Register(name="DeviceID", address=0x7F, width_bytes=3, unit="raw",
             description="device identifier, 0x820900"),
)

RN8209 = ChipProfile(
    name="RN8209",
    registers=RN8209_REGISTERS,
    device_id=0x820900,
    device_id_register="DeviceID",
    commands={
        Command.WRITE_ENABLE: SpecialCommand("SpecialCmd", 0xE5),
        Command.WRITE_DISABLE: SpecialCommand("SpecialCmd", 0xDC),
        Command.CHANNEL_A: SpecialCommand("SpecialCmd", 0x5A),
        Command.CHANNEL_B: SpecialCommand("SpecialCmd", 0xA5),
        Command.SOFT_RESET: SpecialCommand("SpecialCmd", 0xFA),
    },
    rdata="RData",
    wdata="WData",
    spi_mode=1,
    # No datasheet maximum was found; 1 MHz is what the twin promises to follow.
    max_clock_hz=1_000_000,
)
