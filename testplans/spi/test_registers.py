"""The metering chip's register protocol driven directly (an FPGA-emulated chip, or a metering module
on the rig's SPI master): identity, the RData/WData echo, write protection through the special
command register, and a calibration checksum that nothing but an unlocked write may change.
Needs the position's `spi.master`."""

from __future__ import annotations

import contextlib

import pytest

from drivers.errors import InstrumentError
from drivers.spi.master import SpiMaster
from drivers.spi.scaling import calibration_checksum
from rig.bench import Bench, Position
from rig.procedures import RackCache
from testplans.spi import spec
from testplans.spi.helpers import powered

pytestmark = pytest.mark.plan


def _probe_value(master: SpiMaster, original: int) -> int:
    """A value of the probe register that differs from `original`."""
    register = master.profile.register(spec.PROBE_REGISTER)
    return original + 1 if original < register.max_value else original - 1


def _restore(master: SpiMaster, original: int) -> None:
    """Put the probe register back and lock the chip, whatever state a failed step left."""
    with contextlib.suppress(InstrumentError):
        master.unlock()
        master.write(spec.PROBE_REGISTER, original)
    master.lock()


def test_device_id(bench: Bench, rack: RackCache, position: Position, master: SpiMaster, record) -> None:
    """The chip identifies as the profile's chip (read and confirmed through RData)."""
    powered(bench, rack)
    expected = master.profile.device_id
    record(f"{master.profile.name} DeviceID", master.device_id(), "", low=expected, high=expected,
           position=position, expected=f"{expected:#08x}")


def test_rdata_wdata_echo(bench: Bench, rack: RackCache, position: Position, master: SpiMaster, record) -> None:
    """After every read RData holds the data read; after an unlocked write WData holds the data written."""
    powered(bench, rack)
    profile = master.profile
    names = [r.name for r in profile.registers if r.readable and r.name != profile.rdata]
    unconfirmed = []
    for name in names:
        try:
            master.read(name)
        except InstrumentError as exc:
            unconfirmed.append(str(exc))
    record("register reads not confirmed by RData", len(unconfirmed), "reads", low=0, high=0, position=position,
           registers=len(names), first_unconfirmed=unconfirmed[:3])
    original = master.read(spec.PROBE_REGISTER)
    failed = []
    try:
        master.unlock()
        for value in (_probe_value(master, original), original):
            try:
                master.write(spec.PROBE_REGISTER, value)
            except InstrumentError as exc:
                failed.append(str(exc))
    finally:
        _restore(master, original)
    record("unlocked writes not confirmed by WData", len(failed), "writes", low=0, high=0, position=position,
           register=spec.PROBE_REGISTER, first_unconfirmed=failed[:2])


def test_write_protection(bench: Bench, rack: RackCache, position: Position, master: SpiMaster, record) -> None:
    """A write while the chip is protected changes nothing; unlock lets a write through; lock protects again."""
    powered(bench, rack)
    name = spec.PROBE_REGISTER
    master.lock()
    original = master.read(name)
    trial = _probe_value(master, original)

    def attempt() -> tuple[bool, int]:
        try:
            master.write(name, trial)
            confirmed = True
        except InstrumentError:
            confirmed = False
        return confirmed, master.read(name)

    try:
        locked_confirmed, locked_value = attempt()
        master.unlock()
        open_confirmed, open_value = attempt()
        master.write(name, original)
        master.lock()
        relocked_confirmed, relocked_value = attempt()
    finally:
        _restore(master, original)
    record("protected write taken by the chip", int(locked_value != original), "", low=0, high=0,
           position=position, register=name, confirmed_by_wdata=locked_confirmed)
    record("write after unlock taken by the chip", int(open_value == trial and open_confirmed), "", low=1, high=1,
           position=position, register=name)
    record("write after lock taken by the chip", int(relocked_value != original), "", low=0, high=0,
           position=position, register=name, confirmed_by_wdata=relocked_confirmed)


def test_calibration_checksum_stable(bench: Bench, rack: RackCache, position: Position, master: SpiMaster,
                                     record) -> None:
    """The calibration checksum in EMUStatus does not move while the meter runs, nor when a write to a
    calibration register arrives while the chip is protected."""
    powered(bench, rack)
    master.lock()
    before = calibration_checksum(master.read("EMUStatus"))
    bench.clock.sleep(2 * spec.MAX_POLL_INTERVAL.value)  # the MCU polls in between
    running = calibration_checksum(master.read("EMUStatus"))
    original = master.read(spec.PROBE_REGISTER)
    try:
        with contextlib.suppress(InstrumentError):  # WData will not confirm it: that is the point
            master.write(spec.PROBE_REGISTER, _probe_value(master, original))
        after_write = calibration_checksum(master.read("EMUStatus"))
    finally:
        _restore(master, original)
    record("calibration checksum change while running", int(running != before), "", low=0, high=0,
           position=position, checksum=before)
    record("calibration checksum change after a protected write", int(after_write != before), "", low=0, high=0,
           position=position, register=spec.PROBE_REGISTER)
