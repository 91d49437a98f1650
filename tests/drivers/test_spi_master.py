"""SpiMaster against a scripted SpiDev: every transfer asserted byte-exact, no hardware."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable

import pytest

from drivers.errors import InstrumentError, NotOpenError, ValidationError
from drivers.spi.master import SpiMaster, open_spidev


class ScriptedSpiDev:
    """spidev.SpiDev stand-in: each xfer2 must send the next scripted MOSI and gets its MISO reply."""

    def __init__(self, script: list[tuple[str, str]]) -> None:
        self.script = [(bytes.fromhex(mosi), bytes.fromhex(miso)) for mosi, miso in script]
        self.opened: tuple[int, int] | None = None
        self.closed = False
        self.mode = -1
        self.max_speed_hz = -1

    def open(self, bus: int, device: int) -> None:
        self.opened = (bus, device)
        self.closed = False

    def xfer2(self, data: list[int]) -> list[int]:
        sent = bytes(data)
        assert self.opened is not None and not self.closed, f"transfer {sent.hex(' ')} on a closed SpiDev"
        assert self.script, f"unexpected transfer {sent.hex(' ')}"
        expected, reply = self.script.pop(0)
        assert sent == expected, f"sent {sent.hex(' ')}, script expects {expected.hex(' ')}"
        return list(reply)

    def close(self) -> None:
        self.closed = True

    def assert_done(self) -> None:
        assert not self.script, f"{len(self.script)} scripted transfers never happened"


def opened(script: list[tuple[str, str]]) -> tuple[SpiMaster, ScriptedSpiDev]:
    spi = ScriptedSpiDev(script)
    master = SpiMaster(spi, 0, 1, speed_hz=500_000)
    master.open()
    return master, spi


def test_nothing_opens_in_init_and_open_sets_mode_and_clock() -> None:
    spi = ScriptedSpiDev([])
    master = SpiMaster(spi, 2, 3, speed_hz=250_000)
    assert (spi.opened, spi.mode, spi.max_speed_hz) == (None, -1, -1)
    assert not master.is_open
    master.open()
    assert (spi.opened, spi.mode, spi.max_speed_hz) == ((2, 3), 1, 250_000)
    master.close()
    assert spi.closed and not master.is_open


def test_read_is_confirmed_by_rdata() -> None:
    master, spi = opened([
        ("24 00 00 00", "00 12 34 56"),       # URMS
        ("44 00 00 00 00", "00 00 12 34 56"),  # RData echoes it in its low bytes
    ])
    assert master.read("URMS") == 0x123456
    spi.assert_done()


def test_signed_read_compares_the_wire_bytes() -> None:
    master, spi = opened([("26 00 00 00 00", "00 FF FF FF FE"), ("44 00 00 00 00", "00 FF FF FF FE")])
    assert master.read("PowerPA") == -2
    spi.assert_done()


def test_rdata_mismatch_names_register_value_and_rdata() -> None:
    master, spi = opened([("24 00 00 00", "00 12 34 56"), ("44 00 00 00 00", "00 00 12 34 57")])
    with pytest.raises(InstrumentError, match=r"read of URMS \(0x24\) not confirmed: read 0x123456, "
                                              r"RData holds 0x00123457"):
        master.read("URMS")
    spi.assert_done()


def test_device_id() -> None:
    master, spi = opened([("7F 00 00 00", "00 82 09 00"), ("44 00 00 00 00", "00 00 82 09 00")])
    assert master.device_id() == 0x820900
    spi.assert_done()


def test_write_is_confirmed_by_wdata() -> None:
    master, spi = opened([("82 12 34", "00 00 00"), ("45 00 00", "00 12 34")])
    master.write("HFConst", 0x1234)
    spi.assert_done()


def test_write_of_a_negative_gain_compares_the_wire_bytes() -> None:
    master, spi = opened([("85 FF 38", "00 00 00"), ("45 00 00", "00 FF 38")])
    master.write("GPQA", -200)
    spi.assert_done()


def test_wdata_mismatch_says_the_chip_may_be_locked() -> None:
    master, spi = opened([("82 12 34", "00 00 00"), ("45 00 00", "00 00 00")])
    with pytest.raises(InstrumentError, match=r"write of HFConst \(0x02\) not confirmed: wrote 0x1234, WData "
                                              r"holds 0x0000; .* call unlock\(\) first"):
        master.write("HFConst", 0x1234)
    spi.assert_done()


def test_special_commands() -> None:
    master, spi = opened([("EA E5", "00 00"), ("EA 5A", "00 00"), ("EA A5", "00 00"), ("EA FA", "00 00"),
                          ("EA DC", "00 00")])
    master.unlock()
    master.select_channel("A")
    master.select_channel("B")
    master.soft_reset()
    master.lock()
    spi.assert_done()


def test_calibration_sequence_unlock_write_lock() -> None:
    master, spi = opened([("EA E5", "00 00"), ("80 00 03", "00 00 00"), ("45 00 00", "00 00 03"),
                          ("EA DC", "00 00")])
    master.unlock()
    master.write("SYSCON", 0x0003)
    master.lock()
    spi.assert_done()


@pytest.mark.parametrize(("call", "message"), [
    (lambda m: m.write("URMS", 1), "URMS is read-only; nothing was sent"),
    (lambda m: m.write("HFConst", 0x10000), "65536 does not fit HFConst"),
    (lambda m: m.read("NoSuch"), "RN8209 has no register 'NoSuch'"),
    (lambda m: m.select_channel("C"), "current channel 'C' is not 'A' or 'B'"),
    (lambda m: m.write("SpecialCmd", 0xE5), "SpecialCmd takes special commands: use command"),
])
def test_bad_requests_send_nothing(call: Callable[[SpiMaster], object], message: str) -> None:
    master, spi = opened([])
    with pytest.raises(ValidationError, match=message):
        call(master)
    spi.assert_done()


@pytest.mark.parametrize("call", [
    lambda m: m.read("URMS"), lambda m: m.write("HFConst", 1), lambda m: m.unlock(), lambda m: m.device_id(),
])
def test_use_before_open_and_after_close(call: Callable[[SpiMaster], object]) -> None:
    spi = ScriptedSpiDev([])
    master = SpiMaster(spi, 0, 0)
    with pytest.raises(NotOpenError, match=r"SPI master for RN8209 on /dev/spidev0.0 is not open: call open"):
        call(master)
    master.open()
    master.close()
    with pytest.raises(NotOpenError):
        call(master)


def test_short_reply_is_an_instrument_error() -> None:
    master, _ = opened([("24 00 00 00", "00 12")])
    with pytest.raises(InstrumentError, match="SPI transfer of 4 bytes returned 2: 00 12"):
        master.read("URMS")


@pytest.mark.parametrize("speed", [0, 1_000_001, 2.5])
def test_clock_outside_the_chip_limit_is_refused_at_construction(speed: int) -> None:
    with pytest.raises(ValidationError, match=r"speed_hz .* is outside 1..1000000 Hz allowed for RN8209"):
        SpiMaster(ScriptedSpiDev([]), speed_hz=speed)


def test_a_factory_is_called_on_open_with_bus_and_device() -> None:
    calls: list[tuple[int, int]] = []
    spi = ScriptedSpiDev([("EA E5", "00 00")])

    def factory(bus: int, device: int) -> ScriptedSpiDev:
        calls.append((bus, device))
        spi.opened = (bus, device)
        return spi

    master = SpiMaster(factory, 1, 0)
    assert calls == []
    with master:
        master.unlock()
    assert calls == [(1, 0)] and spi.closed
    spi.assert_done()


def test_missing_device_node_on_open_is_explained() -> None:
    class Absent(ScriptedSpiDev):
        def open(self, bus: int, device: int) -> None:
            raise FileNotFoundError(2, "No such file or directory")

    master = SpiMaster(Absent([]), 0, 0)
    with pytest.raises(InstrumentError, match=r"no /dev/spidev0.0: is the SPI controller enabled\?"):
        master.open()
    assert not master.is_open


def test_open_spidev_explains_a_missing_device(monkeypatch: pytest.MonkeyPatch) -> None:
    class SpiDev:
        def open(self, bus: int, device: int) -> None:
            raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setitem(sys.modules, "spidev", types.SimpleNamespace(SpiDev=SpiDev))
    with pytest.raises(InstrumentError, match=r"^no /dev/spidev3.1: is the SPI controller enabled\?$"):
        open_spidev(3, 1)


def test_open_spidev_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "spidev", None)
    with pytest.raises(InstrumentError, match="the spidev package is not installed"):
        open_spidev(0, 0)


def test_open_spidev_on_this_host_without_the_device() -> None:
    pytest.importorskip("spidev")
    # No bus 250 exists on a rig host or CI; the real package must reach the same explanation.
    with pytest.raises(InstrumentError, match=r"no /dev/spidev250.0"):
        open_spidev(250, 0)
