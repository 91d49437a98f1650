"""The metering chip's SPI bus as a logic analyser sees it, from the meter's power-up: the structure of
every frame, the management MCU's polling rate (and, over a longer capture of steady polling, its timer's
period and jitter), its handling of write protection, and the calibration checksum it reads back. Needs the
position's `spi.capture`."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest

from drivers.spi.registers import Command
from drivers.spi.scaling import calibration_checksum
from drivers.spi.sniffer import SniffedBus, SpiSniffer
from rig.bench import Bench, Position
from rig.procedures import RackCache
from testplans.spi import spec
from testplans.spi.helpers import polling_capture, power_up_capture

pytestmark = pytest.mark.plan


def test_frame_structure(bench: Bench, rack: RackCache, position: Position, sniffer: SpiSniffer, record) -> None:
    """Every frame on the bus is one whole register access: command byte (R/W bit, a known address),
    then exactly the register's width of data, MOSI and MISO equally long, within one CS assertion,
    decoded in the chip's SPI mode."""
    bus = power_up_capture(bench, rack).of(position)
    bad = bus.malformed()
    record("SPI frames captured from power-up", len(bus.frames), "frames", low=1, position=position,
           capture_s=spec.CAPTURE_S)
    record("malformed SPI frames", len(bad), "frames", low=0, high=0, position=position,
           spi_mode=bus.profile.spi_mode, first_malformed=[f.describe() for f in bad[:5]])


def test_mcu_polling_rate(bench: Bench, rack: RackCache, position: Position, sniffer: SpiSniffer, record) -> None:
    """The management MCU polls energy, power, Vrms and Irms from soon after power-up, then steadily: over
    spec.SPREAD_SAMPLES intervals between its reads (enough to tell 1.1x a limit from 0.8x), its timer's period
    (the mean interval) within the once-a-second allowance and its jitter (their standard deviation) within the
    jitter limit."""
    power_up = power_up_capture(bench, rack).of(position)
    steady = polling_capture(bench, rack).of(position)
    expected_reads = math.floor((spec.CAPTURE_S - spec.MAX_FIRST_POLL.value) / spec.MAX_POLL_INTERVAL.value) - 1
    for name in spec.POLLED_REGISTERS:
        times = [at for at, _ in power_up.reads(name)]
        record(f"MCU reads of {name} in {spec.CAPTURE_S:g} s from power-up", len(times), "reads",
               low=expected_reads, position=position)
        record(f"first MCU read of {name} after power-up", times[0] if times else math.nan, "s", low=0.0,
               high=spec.MAX_FIRST_POLL.value, position=position, source=spec.MAX_FIRST_POLL.source)
        gaps = [b - a for a, b in itertools.pairwise(at for at, _ in steady.reads(name))]
        record(f"intervals between MCU reads of {name} in {spec.POLLING_CAPTURE_S:g} s of steady polling",
               len(gaps), "intervals", low=spec.SPREAD_SAMPLES, position=position)
        record(f"MCU polling period of {name} (mean interval between reads)",
               statistics.fmean(gaps) if gaps else math.nan, "s", low=0.0, high=spec.MAX_POLL_INTERVAL.value,
               position=position, source=spec.MAX_POLL_INTERVAL.source, intervals=len(gaps),
               longest_interval_s=max(gaps, default=math.nan))
        record(f"MCU polling jitter of {name} (standard deviation of the intervals)",
               statistics.stdev(gaps) if len(gaps) > 1 else math.nan, "s", low=0.0,
               high=spec.MAX_POLL_JITTER.value, position=position, source=spec.MAX_POLL_JITTER.source,
               intervals=len(gaps))


def write_protection_walk(bus: SniffedBus) -> tuple[int, bool]:
    """(register writes sent while the chip was write-protected, chip left write-enabled at the end).

    The chip powers up protected; WRITE_ENABLE lifts protection, WRITE_DISABLE and SOFT_RESET restore it.
    """
    codes = {(s.register, s.code): command for command, s in bus.profile.commands.items()}
    protected, stray = True, 0
    for frame in bus.frames:
        access = frame.access
        if not frame.ok or access.kind != "write" or access.register is None:
            continue
        command = codes.get((access.register.name, access.value if access.value is not None else -1))
        if command is Command.WRITE_ENABLE:
            protected = False
        elif command in (Command.WRITE_DISABLE, Command.SOFT_RESET):
            protected = True
        elif command is None and protected:
            stray += 1
    return stray, not protected


def test_mcu_keeps_the_chip_write_protected(bench: Bench, rack: RackCache, position: Position,
                                            sniffer: SpiSniffer, record) -> None:
    """The MCU writes registers only between an unlock and a lock, and leaves the chip locked."""
    bus = power_up_capture(bench, rack).of(position)
    stray, left_open = write_protection_walk(bus)
    record("register writes sent while the chip was write-protected", stray, "writes", low=0, high=0,
           position=position)
    record("chip left write-enabled by the MCU", int(left_open), "", low=0, high=0, position=position)


def test_calibration_checksum_as_polled(bench: Bench, rack: RackCache, position: Position, sniffer: SpiSniffer,
                                        record) -> None:
    """Every EMUStatus the MCU reads after setting the chip up carries the same calibration checksum."""
    bus = power_up_capture(bench, rack).of(position)
    checksums = [calibration_checksum(value) for _, value in bus.reads("EMUStatus")]
    record("distinct calibration checksums in the MCU's EMUStatus reads", len(set(checksums)), "values", low=1,
           high=1, position=position, reads=len(checksums), checksums=sorted(set(checksums)))
