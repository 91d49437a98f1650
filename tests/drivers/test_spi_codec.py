"""RN8209 register map and the sans-IO SPI codec: golden vectors from the reference, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import FrameError, ValidationError
from drivers.spi.codec import (
    SpiTransaction,
    decode_read,
    decode_transaction,
    encode_read,
    encode_write,
)
from drivers.spi.registers import ChipProfile, Command, Register, SpecialCommand
from drivers.spi.rn8209 import RN8209

# (address, name, width in bytes) exactly as the reference table lists them.
REFERENCE_TABLE = [
    (0x00, "SYSCON", 2), (0x01, "EMUCON", 2), (0x02, "HFConst", 2), (0x03, "PStart", 2),
    (0x05, "GPQA", 2), (0x20, "PFCnt", 2), (0x22, "IARMS", 3), (0x24, "URMS", 3), (0x25, "UFreq", 2),
    (0x26, "PowerPA", 4), (0x29, "EnergyP", 3), (0x2A, "EnergyP2", 3), (0x2D, "EMUStatus", 3),
    (0x43, "SysStatus", 1), (0x44, "RData", 4), (0x45, "WData", 2), (0x7F, "DeviceID", 3),
]


def txn(mosi: str, miso: str) -> SpiTransaction:
    return SpiTransaction(start_s=0.0, end_s=1e-5, mosi=bytes.fromhex(mosi), miso=bytes.fromhex(miso))


# --- the profile -------------------------------------------------------------------------------

@pytest.mark.parametrize(("address", "name", "width"), REFERENCE_TABLE)
def test_every_reference_register_is_in_the_profile(address: int, name: str, width: int) -> None:
    reg = RN8209.register(name)
    assert (reg.address, reg.width_bytes) == (address, width)
    assert RN8209.at(address) is reg


def test_rn8209_identity_commands_and_bus_settings() -> None:
    assert RN8209.device_id == 0x820900
    assert RN8209.register(RN8209.device_id_register).address == 0x7F
    assert RN8209.spi_mode == 1
    assert RN8209.max_clock_hz == 1_000_000
    assert (RN8209.rdata, RN8209.wdata) == ("RData", "WData")
    codes = {command: RN8209.command(command).code for command in Command}
    assert codes == {
        Command.WRITE_ENABLE: 0xE5, Command.WRITE_DISABLE: 0xDC, Command.CHANNEL_A: 0x5A,
        Command.CHANNEL_B: 0xA5, Command.SOFT_RESET: 0xFA,
    }


def test_signedness_and_calibration_flags() -> None:
    assert RN8209.register("PowerPA").signed
    assert not RN8209.register("URMS").signed
    assert {r.name for r in RN8209.calibration_registers} == {"SYSCON", "EMUCON", "HFConst", "PStart", "GPQA"}
    assert not RN8209.register("DeviceID").writable


def test_unknown_register_name_lists_the_known_ones() -> None:
    with pytest.raises(ValidationError, match=r"RN8209 has no register 'URMS2'; known: SYSCON, EMUCON"):
        RN8209.register("URMS2")


def test_profile_refuses_inconsistent_tables() -> None:
    a = Register(name="A", address=0x01, width_bytes=2, writable=True)
    with pytest.raises(ValidationError, match="B and A share address 0x01"):
        ChipProfile(name="X", registers=(a, Register(name="B", address=0x01, width_bytes=1)), device_id=0,
                    device_id_register="A", commands={}, rdata="A", wdata="A", spi_mode=1, max_clock_hz=1)
    with pytest.raises(ValidationError, match="command soft_reset goes to ID, which is not a writable"):
        ChipProfile(name="X", registers=(a, Register(name="ID", address=0x02, width_bytes=1)), device_id=0,
                    device_id_register="ID", commands={Command.SOFT_RESET: SpecialCommand("ID", 1)},
                    rdata="A", wdata="A", spi_mode=1, max_clock_hz=1)
    with pytest.raises(ValidationError, match="address 0x80 is outside"):
        Register(name="C", address=0x80, width_bytes=1)


# --- golden vectors ----------------------------------------------------------------------------

def test_read_device_id_frame() -> None:
    assert encode_read(RN8209, "DeviceID") == bytes.fromhex("7F 00 00 00")
    assert decode_read(RN8209, "DeviceID", bytes.fromhex("FF 82 09 00")) == 0x820900


def test_write_frames_put_the_write_flag_on_the_address() -> None:
    assert encode_write(RN8209, "HFConst", 0x1234) == bytes.fromhex("82 12 34")
    assert encode_write(RN8209, "SYSCON", 0x0003) == bytes.fromhex("80 00 03")


def test_special_commands_are_the_0xea_command_byte() -> None:
    special = RN8209.command(Command.WRITE_ENABLE)
    assert encode_write(RN8209, special.register, special.code) == bytes.fromhex("EA E5")
    reset = RN8209.command(Command.SOFT_RESET)
    assert encode_write(RN8209, reset.register, reset.code) == bytes.fromhex("EA FA")


def test_signed_registers_use_twos_complement() -> None:
    assert decode_read(RN8209, "PowerPA", bytes.fromhex("00 FF FF FF FE")) == -2
    assert decode_read(RN8209, "PowerPA", bytes.fromhex("00 7F FF FF FF")) == 0x7FFFFFFF
    assert encode_write(RN8209, "GPQA", -1) == bytes.fromhex("85 FF FF")
    assert encode_write(RN8209, "GPQA", -0x8000) == bytes.fromhex("85 80 00")


def test_ufreq_of_50_hz_matches_the_reference_formula() -> None:
    count = decode_read(RN8209, "UFreq", bytes.fromhex("00 22 F5"))
    assert 3.579545e6 / 8 / count == pytest.approx(50.0, abs=0.01)


# --- refusals ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "value", "message"), [
    ("HFConst", 0x10000, r"65536 does not fit HFConst \(2-byte unsigned: 0..65535\)"),
    ("HFConst", -1, "does not fit HFConst"),
    ("GPQA", 0x8000, r"32768 does not fit GPQA \(2-byte signed: -32768..32767\)"),
    ("URMS", 5, "RN8209 URMS is read-only; nothing was sent"),
    ("HFConst", True, "HFConst takes an int, got bool"),
])
def test_encode_write_refuses(name: str, value: int, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        encode_write(RN8209, name, value)


def test_special_command_register_cannot_be_read() -> None:
    with pytest.raises(ValidationError, match="SpecialCmd is write-only"):
        encode_read(RN8209, "SpecialCmd")


def test_decode_read_names_the_expected_length() -> None:
    with pytest.raises(FrameError, match=r"read of URMS needs 4 MISO bytes .* got 3: 00 12 34"):
        decode_read(RN8209, "URMS", bytes.fromhex("00 12 34"))


# --- sniffed transactions ----------------------------------------------------------------------

def test_decode_transaction_read_and_write() -> None:
    read = decode_transaction(RN8209, txn("24 00 00 00", "00 12 34 56"))
    assert (read.kind, read.register, read.value, read.raw) == ("read", RN8209.register("URMS"), 0x123456,
                                                              bytes.fromhex("12 34 56"))
    assert read.ok
    write = decode_transaction(RN8209, txn("82 12 34", "00 00 00"))
    assert (write.kind, write.register, write.value) == ("write", RN8209.register("HFConst"), 0x1234)
    assert write.ok
    unlock = decode_transaction(RN8209, txn("EA E5", "00 00"))
    assert (unlock.kind, unlock.register, unlock.value, unlock.ok) == ("write", RN8209.register("SpecialCmd"),
                                                                       0xE5, True)


def test_decode_transaction_reports_unknown_address() -> None:
    access = decode_transaction(RN8209, txn("30 00 00", "00 AB CD"))
    assert access.register is None
    assert access.address == 0x30
    assert access.value == 0xABCD
    assert access.problems == ("read of address 0x30: RN8209 has no register there",)


def test_decode_transaction_reports_wrong_length() -> None:
    short = decode_transaction(RN8209, txn("7F 00 00", "00 82 09"))
    assert short.value is None
    assert short.problems == ("read of DeviceID (0x7F) carried 2 data bytes; the register is 3 wide",)
    long = decode_transaction(RN8209, txn("82 12 34 56", "00 00 00 00"))
    assert long.value == 0x1234  # the chip takes its two bytes; the third is flagged
    assert long.problems == ("write of HFConst (0x02) carried 3 data bytes; the register is 2 wide",)


def test_decode_transaction_reports_write_to_read_only_and_duplex_mismatch() -> None:
    access = decode_transaction(RN8209, txn("A4 00 00 01", "00 00"))
    assert access.problems == (
        "MISO carried 2 bytes and MOSI 4; full duplex clocks both equally",
        "write of URMS (0x24): the register is read-only, the chip ignores it",
    )


def test_decode_transaction_refuses_only_an_empty_frame() -> None:
    with pytest.raises(FrameError, match=r"empty SPI transaction at 0\.000000000 s: no command byte"):
        decode_transaction(RN8209, txn("", ""))
    lone = decode_transaction(RN8209, txn("24", "00"))
    assert lone.value is None and not lone.ok


# --- properties --------------------------------------------------------------------------------

readable = [r for r in RN8209.registers if r.readable]
writable = [r for r in RN8209.registers if r.writable]


@given(st.sampled_from(readable).flatmap(
    lambda r: st.tuples(st.just(r), st.integers(r.min_value, r.max_value), st.integers(0, 255))))
def test_any_value_survives_a_read(case: tuple[Register, int, int]) -> None:
    register, value, junk = case
    miso = bytes([junk]) + register.to_raw(value).to_bytes(register.width_bytes, "big")
    assert decode_read(RN8209, register, miso) == value
    sniffed = decode_transaction(RN8209, SpiTransaction(0.0, 1e-5, encode_read(RN8209, register), miso))
    assert (sniffed.kind, sniffed.register, sniffed.value, sniffed.problems) == ("read", register, value, ())


@given(st.sampled_from(writable).flatmap(
    lambda r: st.tuples(st.just(r), st.integers(r.min_value, r.max_value))))
def test_any_value_survives_a_write(case: tuple[Register, int]) -> None:
    register, value = case
    mosi = encode_write(RN8209, register, value)
    assert len(mosi) == 1 + register.width_bytes
    sniffed = decode_transaction(RN8209, SpiTransaction(0.0, 1e-5, mosi, bytes(len(mosi))))
    assert (sniffed.kind, sniffed.register, sniffed.value, sniffed.problems) == ("write", register, value, ())


@given(st.binary(min_size=1, max_size=8), st.binary(max_size=8))
def test_decode_transaction_never_raises_on_nonempty_input(mosi: bytes, miso: bytes) -> None:
    access = decode_transaction(RN8209, SpiTransaction(0.0, 0.0, mosi, miso))
    assert access.address == mosi[0] & 0x7F
