"""DL/T 698.45 software upgrade (F001 file transfer) with the manufacturer's signed image the bench file names
(`positions[].dlt698.upgrade: {image, version, checksum}`): a corrupt and an unsigned copy are refused at the
check and the old image keeps running; the signed image is started, written block by block, checked and
executed, after which the meter reports the version and checksum declared for it; a power loss in the middle
of the transfer and one during the switch never leave the meter dead: it comes back on its old image and the
transfer completes. Over the UART only: the master station's channel (and one upgrade per position is enough).

A position without an upgrade entry is skipped, saying so. Power losses switch the source's output (the power
plans' outage), so they reach every meter of the rack."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from drivers.dlt698 import Dlt698Link
from drivers.errors import RigError
from rig.bench import Bench, Position
from rig.procedures import RackCache
from testplans.comms.helpers import power_meters
from testplans.dlt698 import spec
from testplans.dlt698.helpers import (
    CHECK,
    EXECUTE,
    block_count,
    blocks_missing,
    file_action,
    software_version,
    spoiled,
    start_transfer,
    write_blocks,
)
from testplans.power.helpers import mains_on, outage

pytestmark = pytest.mark.plan

UPGRADE = spec.STANDARD + " class 18 (file transfer, F001)"
# How long after execute the meter may take to restart into the new image, s (bench time, plus its start-up).
SWITCH_S = 30.0
# A power loss long enough that no supply hold-up bridges it, s.
POWER_LOSS_S = 30.0


@dataclass(frozen=True)
class Firmware:
    """The manufacturer's signed image and what it declares."""

    image: bytes
    version: str
    checksum: str


@pytest.fixture
def firmware(position: Position) -> Firmware:
    """The signed image the bench file names for this position; skips when it names none."""
    upgrade = position.config.dlt698.upgrade
    if not position.config.speaks_698 or position.link698 is None or upgrade is None:
        pytest.skip(f"{position.name}: the bench file gives this position no DL/T 698.45 UART link or no "
                    "dlt698.upgrade image")
    assert upgrade.version is not None and upgrade.checksum is not None  # the bench file's validation says so
    return Firmware(Path(upgrade.image).read_bytes(), upgrade.version, upgrade.checksum)


@pytest.fixture
def uart698(bench: Bench, rack: RackCache, position: Position, firmware: Firmware) -> Dlt698Link:
    """The position's DL/T 698.45 UART link, its meter powered and associated."""
    link = position.link698
    assert link is not None
    power_meters(bench, rack)
    link.connected = None
    link.connect()
    return link


def _back(bench: Bench, link: Dlt698Link) -> tuple[str, str] | None:
    """After the meter restarted: associate again and read its version and checksum (None: it stays silent)."""
    bench.clock.sleep(bench.meter.start_up_time_s)
    link.connected = None  # a restarted meter lost its association
    try:
        link.connect()
        return software_version(link)
    except RigError:
        return None


def _transfer(link: Dlt698Link, firmware: Firmware, image: bytes) -> list[int]:
    """Start and write every block; the DARs (start first)."""
    return [start_transfer(link, image, firmware.version), *write_blocks(link, image, range(block_count(image)))]


def _record_answers(record, position: Position, after: str, version: tuple[str, str] | None) -> None:
    record(f"meter answers after {after}", int(version is not None), "", low=1, high=1, position=position,
           source=UPGRADE + ": a meter is never left without a running image")


def _record_version(record, position: Position, what: str, got: tuple[str, str] | None,
                    want: tuple[str, str]) -> None:
    record(f"software version {what}", int(got is not None and got[0] == want[0]), "", low=1, high=1,
           position=position, got=got[0] if got else None, expected=want[0], source=UPGRADE + ", 4300 attribute 3")


def _record_upgraded(record, position: Position, what: str, got: tuple[str, str] | None, firmware: Firmware) -> None:
    _record_version(record, position, what, got, (firmware.version, firmware.checksum))
    record(f"software checksum {what}", int(got is not None and got[1].upper() == firmware.checksum.upper()), "",
           low=1, high=1, position=position, got=got[1] if got else None, expected=firmware.checksum,
           source=UPGRADE + ": the checksum the manufacturer declares for the image")


@pytest.mark.parametrize("how", ["corrupt", "unsigned"])
def test_spoiled_image_refused(uart698: Dlt698Link, firmware: Firmware, position: Position, record, how: str) -> None:
    """A copy of the signed image with bytes flipped, or with its signature stripped: every block is taken,
    the check refuses it (a DAR, not success), and the old image keeps running."""
    before = software_version(uart698)
    image = spoiled(firmware.image, how)
    dars = _transfer(uart698, firmware, image)
    record(f"transfer of the {how} image (start and blocks refused)", sum(1 for d in dars if d), "", low=0, high=0,
           position=position, dars=dars, source=UPGRADE + ": blocks are taken, the check judges the file")
    dar = file_action(uart698, CHECK)
    record(f"check (F001 method 10) of the {how} image refused", int(dar != 0), "", low=1, high=1,
           position=position, dar=dar, source=UPGRADE + ": an image whose digest or signature is wrong is refused")
    if dar == 0:
        # Accepted: nothing more is asked of it (executing it would put a spoiled image on a meter).
        start_transfer(uart698, firmware.image, firmware.version)  # drops the accepted transfer
    _record_version(record, position, f"after the {how} image", software_version(uart698), before)


def test_power_loss_never_bricks(bench: Bench, rack: RackCache, uart698: Dlt698Link, firmware: Firmware,
                                 position: Position, record) -> None:
    """Mains lost halfway through the blocks, then again at once after execute (during the switch): each time
    the meter comes back on the image it ran before, and the transfer (resumed from the blocks it kept, or
    started again) completes to the declared version."""
    image, link = firmware.image, uart698
    before = software_version(link)
    try:
        half = block_count(image) // 2
        start_transfer(link, image, firmware.version)
        write_blocks(link, image, range(half))
        outage(bench, rack, POWER_LOSS_S)
        back = _back(bench, link)
        _record_answers(record, position, "a power loss during the transfer", back)
        if back is None:
            return
        _record_version(record, position, "after a power loss during the transfer", back, before)
        missing = blocks_missing(link, image)  # resume from what the meter kept
        if len(missing) == block_count(image):
            start_transfer(link, image, firmware.version)  # it kept nothing: start again
        dars = [*write_blocks(link, image, missing), file_action(link, CHECK)]
        dars.append(file_action(link, EXECUTE) if not any(dars) else -1)
        outage(bench, rack, POWER_LOSS_S)  # at once: the switch is under way
        back = _back(bench, link)
        _record_answers(record, position, "a power loss during the switch to the new image", back)
        if back is None:
            return
        _record_version(record, position, "after a power loss during the switch (the old image)", back, before)
        dars += [*_transfer(link, firmware, image), file_action(link, CHECK)]
        dars.append(file_action(link, EXECUTE) if not any(dars) else -1)
        record("resumed or restarted transfer: blocks, check and execute refused", sum(1 for d in dars if d), "",
               low=0, high=0, position=position, dars=dars, source=UPGRADE)
        bench.clock.sleep(SWITCH_S)
        after = _back(bench, link)
        _record_answers(record, position, "the completed upgrade", after)
        _record_upgraded(record, position, "after the upgrade that lost power twice", after, firmware)
    finally:
        mains_on(bench, rack)
        with contextlib.suppress(RigError):
            link.connect()


def test_signed_image_upgrades(bench: Bench, uart698: Dlt698Link, firmware: Firmware, position: Position,
                               record) -> None:
    """The signed image: start, every block, check and execute succeed; after the switch the meter reports the
    version and checksum the manufacturer declares for the image."""
    dars = [*_transfer(uart698, firmware, firmware.image), file_action(uart698, CHECK)]
    execute = file_action(uart698, EXECUTE) if not any(dars) else None
    dars.append(-1 if execute is None else execute)
    record("signed image: start, blocks, check and execute refused", sum(1 for d in dars if d), "", low=0, high=0,
           position=position, dars=dars, source=UPGRADE)
    bench.clock.sleep(SWITCH_S)
    after = _back(bench, uart698)
    _record_answers(record, position, "the upgrade", after)
    _record_upgraded(record, position, "after the upgrade", after, firmware)
