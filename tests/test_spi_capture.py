"""The SPI sniffer: a capture written with pyvcd by hand decodes to the expected register accesses,
sigrok-cli agrees with the built-in decoder on the twin's capture, capture files and folders as a
logic analyser leaves them, and the spi_bench file's spi section."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
import yaml
from vcd.writer import VCDWriter

from drivers.errors import FrameError, InstrumentError, ValidationError
from drivers.spi.registers import Command
from drivers.spi.rn8209 import RN8209
from drivers.spi.sniffer import SpiSniffer, VcdFileCapture, VcdFolderCapture, capture_source_for
from drivers.spi.vcd import decode_vcd
from rig.bench import Bench, open_bench
from rig.config import DEFAULT_BENCH, ConfigError, load_bench, validate_bench
from rig.procedures import LoadPoint, energise
from rig.spi_link import SpiConfigError, chip_link_for
from rig.twin import spi_bus

needs_sigrok = pytest.mark.skipif(shutil.which("sigrok-cli") is None,
                                  reason="sigrok-cli is not installed (Debian package sigrok-cli)")

# (MOSI, MISO) of three frames: a read of URMS, the write-enable command, a write of HFConst.
FRAMES = [("24 00 00 00", "00 1f fd 46"), ("ea e5", "00 00"), ("82 34 6f", "00 00 00")]


def pyvcd_capture(frames: list[tuple[str, str]]) -> str:
    """Mode-1 waveforms drawn edge by edge with pyvcd's writer (not drivers.spi.vcd, not the twin).

    1 tick = 1 us; SCLK 250 kHz; data changes 1 us after each rising edge, sampled on the falling one.
    """
    out = io.StringIO()
    with VCDWriter(out, timescale="1 us", date="by hand") as writer:
        clk = writer.register_var("analyser", "clk", "wire", size=1, init=0)
        mosi = writer.register_var("analyser", "mosi", "wire", size=1, init=0)
        miso = writer.register_var("analyser", "miso", "wire", size=1, init=0)
        cs = writer.register_var("analyser", "cs", "wire", size=1, init=1)
        t = 20
        for mosi_hex, miso_hex in frames:
            out_bits = "".join(f"{b:08b}" for b in bytes.fromhex(mosi_hex))
            in_bits = "".join(f"{b:08b}" for b in bytes.fromhex(miso_hex))
            writer.change(cs, t, 0)
            for k, (o, i) in enumerate(zip(out_bits, in_bits)):
                rise = t + 2 + 4 * k
                writer.change(clk, rise, 1)
                writer.change(mosi, rise + 1, int(o))
                writer.change(miso, rise + 1, int(i))
                writer.change(clk, rise + 2, 0)
            t += 4 * len(out_bits) + 4
            writer.change(cs, t, 1)
            t += 30
        writer.close(t + 10)
    return out.getvalue()


def test_a_pyvcd_capture_drawn_by_hand_decodes_to_the_expected_register_accesses() -> None:
    bus = SpiSniffer(VcdFileCapture("unused.vcd"), profile=RN8209).decode(pyvcd_capture(FRAMES))
    assert [(f.transaction.mosi.hex(" "), f.transaction.miso.hex(" ")) for f in bus.frames] == FRAMES
    assert bus.malformed() == []
    assert bus.reads("URMS") == [(pytest.approx(20e-6), 0x1FFD46)]
    assert [c for _, c in bus.commands()] == [Command.WRITE_ENABLE]
    assert [v for _, v in bus.writes("HFConst")] == [0x346F]
    assert bus.frames[0].transaction.end_s == pytest.approx((20 + 4 * 32 + 4) * 1e-6)


def test_a_cut_frame_in_a_hand_drawn_capture_is_reported_as_malformed() -> None:
    bus = SpiSniffer(VcdFileCapture("unused.vcd")).decode(pyvcd_capture([("24 00", "00 1f"), ("6a", "00")]))
    problems = [f.describe() for f in bus.malformed()]
    assert len(problems) == 2
    assert "read of URMS (0x24) carried 1 data bytes; the register is 3 wide" in problems[0]
    assert "read of SpecialCmd (0x6A)" in problems[1] and "write-only" in problems[1]




def twin_capture_from_power_up(spi_bench: Bench, seconds: float) -> bytes:
    link = spi_bench.positions[0].spi
    assert link is not None and link.sniffer is not None
    source = link.sniffer.source
    source.begin()
    energise(spi_bench, LoadPoint(voltage_v=220.0, current_a=5.0), settle_s=seconds)
    capture = source.end()
    assert isinstance(capture, bytes)
    return capture


@needs_sigrok
def test_sigrok_cli_agrees_with_the_builtin_decoder_on_the_twins_capture(spi_bench: Bench) -> None:
    capture = twin_capture_from_power_up(spi_bench, 2.5)  # set-up and two polls
    assert b"$timescale 1 us $end" in capture  # 500 kHz bus clock
    builtin = decode_vcd(capture, mode=1, decoder="builtin")
    assert len(builtin) > 30
    assert decode_vcd(capture, mode=1, decoder="sigrok") == builtin


def test_the_twins_capture_goes_through_the_same_sniffer_as_a_file(spi_bench: Bench, tmp_path: Path) -> None:
    capture = twin_capture_from_power_up(spi_bench, 1.5)
    folder = tmp_path / "analyser"
    folder.mkdir()
    source = VcdFolderCapture(folder)
    source.begin()
    (folder / "capture-001.vcd").write_bytes(capture)
    from_file = SpiSniffer(source).decode(source.end())
    from_twin = SpiSniffer(VcdFileCapture("unused.vcd")).decode(capture)
    assert from_file == from_twin
    assert from_file.reads("DeviceID")[0][1] == RN8209.device_id


def test_capture_files_and_folders_give_clear_errors(tmp_path: Path) -> None:
    file_source = VcdFileCapture(tmp_path / "bus.vcd")
    file_source.begin()
    with pytest.raises(InstrumentError, match=r"no capture file .*bus\.vcd: is the logic analyser writing there"):
        file_source.end()
    (tmp_path / "bus.vcd").write_text(pyvcd_capture(FRAMES))
    file_source.begin()
    with pytest.raises(InstrumentError, match="was not rewritten during the capture window"):
        file_source.end()
    file_source.begin()
    (tmp_path / "bus.vcd").write_text(pyvcd_capture(FRAMES[:1]))
    os.utime(tmp_path / "bus.vcd", ns=(1, 1))  # a different time than at begin(), whatever the clock's grain
    assert file_source.end() == tmp_path / "bus.vcd"

    with pytest.raises(InstrumentError, match=r"capture folder .*missing does not exist"):
        VcdFolderCapture(tmp_path / "missing").begin()
    folder = VcdFolderCapture(tmp_path)
    with pytest.raises(InstrumentError, match=r"ended without begin\(\)"):
        folder.end()
    folder.begin()
    with pytest.raises(InstrumentError, match=r"no new \*.vcd capture in .* since the window began"):
        folder.end()
    assert isinstance(capture_source_for(tmp_path), VcdFolderCapture)
    assert isinstance(capture_source_for(f"{tmp_path}/later/"), VcdFolderCapture)
    assert isinstance(capture_source_for(tmp_path / "bus.vcd"), VcdFileCapture)


def test_a_garbage_capture_is_a_frame_error_naming_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "bus.vcd"
    path.write_text("this is not a capture")
    with pytest.raises(FrameError, match="not a readable VCD capture"):
        SpiSniffer(VcdFileCapture(path)).decode(path)


# ---------------------------------------------------------------------------------- spi_bench file


def _bench_data(**spi: object) -> dict[str, object]:
    data = yaml.safe_load(DEFAULT_BENCH.read_text())
    data["positions"][0]["spi"] = spi
    return data


@pytest.mark.parametrize(("spi", "message"), [
    ({}, "positions.0.spi: give a 'master', a 'capture', or both"),
    ({"master": "usb"}, "master 'usb': use 'spidev' (with bus and device) or 'twin'"),
    ({"master": "spidev", "speed_hz": 2_000_000}, "speed_hz 2000000 Hz is above the RN8209's 1000000 Hz maximum"),
    ({"capture": "twin", "decoder": "pulseview"}, "positions.0.spi.decoder: Input should be"),
    ({"capture": "twin", "kv_v_per_count": 0}, "positions.0.spi.kv_v_per_count: Input should be greater than 0"),
])
def test_bad_spi_sections_name_the_key(spi: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_bench(_bench_data(**spi))


def test_bad_spi_knobs_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"twin.meter.spi.cs_glitch: Input should be less than or equal to 1"):
        load_bench(None, ["twin.meter.spi.cs_glitch=2"])
    with pytest.raises(ConfigError, match=r"twin.meter.spi.mcu_poll_interval_s: Input should be greater than 0"):
        load_bench(None, ["twin.meter.spi.mcu_poll_interval_s=0"])


def test_default_scaling_follows_the_nameplate() -> None:
    config = validate_bench(_bench_data(capture="twin"))
    spi = config.positions[0].spi
    assert spi is not None
    assert spi.kv(config.meter) * 2**21 == pytest.approx(220.0)
    assert spi.ki(config.meter) * 2**22 == pytest.approx(60.0)


def test_a_twin_url_without_a_twin_is_a_clear_error() -> None:
    config = validate_bench(_bench_data(master="twin", capture="twin"))
    with pytest.raises(SpiConfigError, match=r"positions\.0\.spi\.master says 'twin' but no twin serves this bench"):
        chip_link_for(config, 0)


def test_a_missing_spidev_stops_the_bench_cleanly() -> None:
    config = validate_bench(_bench_data(master="spidev", bus=7, device=3))
    registered = dict(spi_bus._REGISTRY)
    with pytest.raises(InstrumentError, match=r"no /dev/spidev7\.3: is the SPI controller enabled\?"):
        open_bench(config)
    assert registered == spi_bus._REGISTRY, "the embedded twin was stopped"


def test_the_sniffer_listens_for_a_window_of_bench_time(spi_bench: Bench) -> None:
    link = spi_bench.positions[0].spi
    assert link is not None and link.sniffer is not None
    energise(spi_bench, LoadPoint(voltage_v=220.0, current_a=5.0), settle_s=2.0)
    start = spi_bench.clock.now()
    bus = link.sniffer.capture(spi_bench.clock, 3.0)
    assert spi_bench.clock.now() - start == pytest.approx(3.0, abs=0.01)
    assert len(bus.reads("PowerPA")) == 3 and bus.malformed() == []
    with pytest.raises(ValidationError, match="capture duration 0 s must be positive"):
        link.sniffer.capture(spi_bench.clock, 0)


def test_a_meter_constant_the_twins_chip_cannot_meter_is_a_config_error() -> None:
    data = yaml.safe_load(DEFAULT_BENCH.read_text())
    data["meter"]["constant_imp_per_kwh"] = 5
    data["positions"] = [{k: p[k] for k in ("address", "pulse_channel", "spi")} for p in data["positions"]]
    message = r"HFConst \d+ for 220 V 5\(60\) A 5 imp/kWh class 1 does not fit the RN8209's 16-bit register"
    with pytest.raises(ConfigError, match=message):
        open_bench(validate_bench(data))
