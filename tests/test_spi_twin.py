"""The twin's RN8209 chip, its MCU and its bus, through the spidev-like port and the real SpiMaster:
register values follow the World, energy follows virtual time, write protection, RData/WData, the
MCU's set-up and polling, and clear errors for misuse."""

from __future__ import annotations

import itertools

import pytest

from drivers.errors import InstrumentError, NotOpenError, ValidationError
from drivers.spi.codec import encode_read, encode_write
from drivers.spi.master import SpiMaster
from drivers.spi.registers import Command
from drivers.spi.rn8209 import RN8209
from drivers.spi.scaling import calibration_checksum
from rig.bench import Bench, bench_session
from rig.config import BenchConfig
from rig.procedures import LoadPoint, energise
from rig.twin import spi_bus
from rig.twin.provider import embedded_twin
from rig.twin.spi_bus import ChipBus, TwinSpiDev
from rig.twin.world import Terminals


def twin_bus(spi_bench: Bench) -> ChipBus:
    return embedded_twin(spi_bench).spi_buses[0]


def master_of(spi_bench: Bench) -> SpiMaster:
    link = spi_bench.positions[0].spi
    assert link is not None and link.master is not None
    return link.master


def raw_port(spi_bench: Bench) -> TwinSpiDev:
    port = TwinSpiDev(twin_bus(spi_bench))
    port.open(0, 0)
    port.mode = 1
    port.max_speed_hz = 500_000
    return port


def on(spi_bench: Bench, voltage_v: float = 220.0, current_a: float = 5.0, **kw: float) -> None:
    energise(spi_bench, LoadPoint(voltage_v=voltage_v, current_a=current_a, **kw), settle_s=2.0)


def test_device_id_through_the_real_master(spi_bench: Bench) -> None:
    on(spi_bench)
    assert master_of(spi_bench).device_id() == 0x820900


def test_measured_registers_follow_the_world_with_the_chips_scaling(spi_bench: Bench) -> None:
    on(spi_bench, 230.0, 10.0, phase_deg=60.0, frequency_hz=49.0)
    master = master_of(spi_bench)
    link = spi_bench.positions[0].spi
    assert link is not None
    readings = link.readings()
    assert readings.voltage_v == pytest.approx(230.0, rel=3e-3)
    assert readings.current_a == pytest.approx(10.0, rel=3e-3)
    assert readings.power_w == pytest.approx(230.0 * 10.0 * 0.5, rel=1e-2)
    assert readings.frequency_hz == pytest.approx(49.0, abs=0.01)
    # The register scaling itself: Kv from the spi_bench file's default (Un reads 2^21 counts).
    assert master.read("URMS") == pytest.approx(230.0 / 220.0 * 2**21, rel=3e-3)
    energise(spi_bench, LoadPoint(voltage_v=220.0, current_a=5.0, frequency_hz=50.0), settle_s=1.0)
    assert master.read("UFreq") == 0x22F5  # the reference's 50 Hz value


def test_reverse_power_is_negative_and_flagged(spi_bench: Bench) -> None:
    on(spi_bench, phase_deg=180.0)
    master = master_of(spi_bench)
    assert master.read("PowerPA") < 0
    assert master.read("EMUStatus") & (1 << 17), "REVP"


def test_energy_register_advances_with_virtual_time_only_while_powered(spi_bench: Bench) -> None:
    on(spi_bench, 220.0, 60.0)  # 13.2 kW: 4.4 pulses a second at 1200 imp/kWh
    master = master_of(spi_bench)
    start = master.read("EnergyP")
    spi_bench.clock.sleep(300.0)
    counted = master.read("EnergyP") - start
    assert counted == pytest.approx(13_200 * 300 / 3.6e6 * 1200, rel=5e-3)
    bus = twin_bus(spi_bench)
    assert bus.mcu is not None
    assert bus.mcu_readings().energy_kwh == pytest.approx(counted / 1200, rel=5e-3)
    spi_bench.source.output_off()
    spi_bench.clock.sleep(10.0)
    assert not bus.chip.powered
    assert raw_port(spi_bench).xfer2(list(encode_read(RN8209, "DeviceID"))) == [0, 0, 0, 0], "an unpowered chip"


def test_energy_p2_clears_on_read_and_energy_p_does_not(spi_bench: Bench) -> None:
    on(spi_bench, 220.0, 60.0)
    master = master_of(spi_bench)
    spi_bench.clock.sleep(10.0)
    first_p, first_p2 = master.read("EnergyP"), master.read("EnergyP2")
    assert first_p2 > 0
    assert master.read("EnergyP2") == 0
    assert master.read("EnergyP") == first_p


def test_write_protection_and_the_wdata_echo(spi_bench: Bench) -> None:
    on(spi_bench)
    master = master_of(spi_bench)
    original = master.read("PStart")
    with pytest.raises(InstrumentError, match=r"not confirmed.*call unlock"):
        master.write("PStart", original + 7)
    assert master.read("PStart") == original
    assert master.read("SysStatus") == 0
    master.unlock()
    assert master.read("SysStatus") & (1 << 4)
    master.write("PStart", original + 7)  # confirmed through WData
    assert master.read("PStart") == original + 7
    assert master.read("WData") == original + 7
    master.write("PStart", original)
    master.lock()
    port = raw_port(spi_bench)
    port.xfer2(list(encode_write(RN8209, "PStart", original + 9)))
    assert master.read("PStart") == original


def test_rdata_holds_the_last_read_value(spi_bench: Bench) -> None:
    on(spi_bench)
    port = raw_port(spi_bench)
    urms = port.xfer2(list(encode_read(RN8209, "URMS")))
    rdata = port.xfer2(list(encode_read(RN8209, "RData")))
    assert rdata[1:] == [0, *urms[1:]]


def test_a_write_cut_short_is_not_committed_and_extra_read_bytes_are_zero(spi_bench: Bench) -> None:
    on(spi_bench)
    master, port = master_of(spi_bench), raw_port(spi_bench)
    master.unlock()
    original = master.read("PStart")
    frame = list(encode_write(RN8209, "PStart", original + 3))
    port.xfer2(frame[:2])  # CS rises after one of the two data bytes
    assert master.read("PStart") == original
    master.lock()
    assert port.xfer2([*encode_read(RN8209, "DeviceID"), 0, 0]) == [0, 0x82, 0x09, 0x00, 0, 0]
    assert port.readbytes(2) == [0, (master.read("SYSCON") >> 8) & 0xFF]  # 0x00 is a read of SYSCON
    assert port.xfer2([0x7E, 0, 0]) == [0, 0, 0], "no register at 0x7E"


def test_soft_reset_needs_unlock_and_the_mcu_restores_the_calibration(spi_bench: Bench) -> None:
    on(spi_bench)
    master = master_of(spi_bench)
    bus = twin_bus(spi_bench)
    assert bus.mcu is not None
    calibrated = calibration_checksum(master.read("EMUStatus"))
    assert calibrated == bus.mcu.calibration.checksum
    master.soft_reset()  # protected: ignored
    assert calibration_checksum(master.read("EMUStatus")) == calibrated
    master.unlock()
    master.soft_reset()
    assert master.read("HFConst") == 0x1000, "power-on value"
    assert calibration_checksum(master.read("EMUStatus")) != calibrated
    recalibrations = bus.mcu.recalibrations
    spi_bench.clock.sleep(1.5)
    assert bus.mcu.recalibrations == recalibrations + 1
    assert calibration_checksum(master.read("EMUStatus")) == calibrated
    assert master.read("SysStatus") == 0, "the MCU locks after writing"


def test_the_mcu_sets_the_chip_up_after_power_up_and_polls_every_second(spi_bench: Bench) -> None:
    link = spi_bench.positions[0].spi
    assert link is not None and link.sniffer is not None
    link.sniffer.begin()
    on(spi_bench)
    spi_bench.clock.sleep(3.0)
    bus = link.sniffer.end()
    assert bus.malformed() == []
    assert bus.reads("DeviceID")[0][1] == RN8209.device_id
    commands = [c for _, c in bus.commands()]
    assert commands == [Command.WRITE_ENABLE, Command.SOFT_RESET, Command.WRITE_ENABLE, Command.WRITE_DISABLE]
    assert [name for name in ("SYSCON", "EMUCON", "HFConst", "PStart", "GPQA") if bus.writes(name)] == [
        "SYSCON", "EMUCON", "HFConst", "PStart", "GPQA"]
    times = [t for t, _ in bus.reads("URMS")]
    assert len(times) >= 4
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([1.0] * (len(times) - 1), abs=0.02)


def test_unobserved_polls_leave_the_same_outcome_as_polls_on_the_wire(spi_only_config: BenchConfig) -> None:
    """The bus replays polls nobody listened to: same MCU readings, RData and energy as frame by frame."""
    outcomes = []
    for listen in (False, True):
        with bench_session(spi_only_config) as spi_bench:
            bus = twin_bus(spi_bench)
            if listen:
                bus.recorder.arm(0.0)  # an open capture window puts every poll on the wire
            spi_bench.source.identity()  # the instruments' *CLS at open advances the World in their server
            spi_bench.reference.identity()  # threads: a query on each waits for that to be done
            world = bus.world
            with world.lock:  # straight into the World: SCPI latency would blur the instant of power-up
                world.set_point = Terminals(voltage_v=220.0, current_a=30.0, phase_deg=30.0)
                world.output_on = True
            spi_bench.clock.sleep(57.3)
            readings = bus.mcu_readings()
            assert bus.mcu is not None
            outcomes.append((readings, bus.mcu.polls, bus.chip.rdata, bus.chip.energy_count()))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1] >= 55  # a poll a second from 0.3 s after power-up


def test_spidev_interface_misuse_is_a_clear_error(spi_bench: Bench) -> None:
    port = TwinSpiDev(twin_bus(spi_bench))
    with pytest.raises(NotOpenError, match=r"twin SPI device is not open: call open\(bus, device\) first"):
        port.xfer2([0])
    with pytest.raises(ValidationError, match="spidev bus -1 must be a non-negative int"):
        port.open(-1, 0)
    port.open(0, 1)
    for bad, message in (([], "non-empty list"), ([256], "256 is not a byte value"), ([True], "True is not a byte"),
                         (["a"], "'a' is not a byte value"), (b"\x01", "list of byte values")):
        with pytest.raises(ValidationError, match=message):
            port.xfer2(bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="readbytes takes a positive length"):
        port.readbytes(0)
    port.bits_per_word = 16
    with pytest.raises(InstrumentError, match="the chip takes 8-bit words"):
        port.xfer2([0])
    port.close()
    with pytest.raises(NotOpenError):
        port.writebytes([0])


@pytest.mark.parametrize(("setting", "value"), [("mode", 0), ("max_speed_hz", 2_000_000), ("lsbfirst", True)])
def test_settings_the_chip_cannot_follow_garble_the_transfer(spi_bench: Bench, setting: str, value: object) -> None:
    on(spi_bench)
    port = TwinSpiDev(twin_bus(spi_bench))
    master = SpiMaster(port, speed_hz=500_000)
    master.open()
    setattr(port, setting, value)  # mis-set behind the master's back
    with pytest.raises(InstrumentError, match="not confirmed"):
        master.device_id()


def test_twin_urls_resolve_only_while_the_twin_runs(spi_only_config: BenchConfig) -> None:
    with bench_session(spi_only_config) as spi_bench:
        spi = spi_bench.config.positions[0].spi
        assert spi is not None and spi.master is not None and spi.master.startswith("twin-spi://")
        url = spi.master
        assert spi_bus.lookup(url) is twin_bus(spi_bench)
    with pytest.raises(InstrumentError, match="its twin is not running in this process"):
        spi_bus.lookup(url)


def test_the_twins_analyser_memory_and_window_errors(spi_bench: Bench, monkeypatch: pytest.MonkeyPatch) -> None:
    link = spi_bench.positions[0].spi
    assert link is not None and link.sniffer is not None
    with pytest.raises(InstrumentError, match=r"ended without begin\(\)"):
        link.sniffer.end()
    monkeypatch.setattr(spi_bus, "CAPTURE_DEPTH_FRAMES", 10)
    link.sniffer.begin()
    on(spi_bench)
    with pytest.raises(InstrumentError, match=r"filled its memory \(10 frames\).*shorter window"):
        link.sniffer.end()
