"""The meter's identity and software, read over DL/T 645: it names its manufacturer, model and meter number,
and the software it runs is the type's declared software (version and checksum from the bench file's meter
type). A meter the lab's own upgrade plan moved to the image the bench file declares for the position
(`positions[].dlt698.upgrade`) runs that image's version and checksum instead. Per position, over the UART."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from drivers.dlt645.link import MeterLink
from rig.bench import Bench, Position
from rig.identity import read_identity
from testplans.registers import spec

pytestmark = pytest.mark.plan


def _same(record, quantity: str, read: str | None, allowed: list[str], position: Position, source: spec.Source) -> None:
    """Record 1 when the meter's text is one of `allowed`, else 0 (limits 1..1), with both texts."""
    record(quantity, int(read is not None and read in allowed), "", low=1, high=1, position=position,
           read=read, declared=" or ".join(allowed), source=source.text, check=source.check)


def test_identity_items(link: MeterLink, position: Position, record) -> None:
    """Manufacturer, model and meter number are there (not blank), and the meter number is 12 digits."""
    identity = read_identity(link)
    for name, value in (("manufacturer", identity.manufacturer), ("model", identity.model),
                        ("meter number", identity.serial), ("software version", identity.firmware)):
        record(f"{name} given", int(bool(value and value.strip())), "", low=1, high=1, position=position,
               read=value, source=spec.IDENTITY_ITEMS.text, check=spec.IDENTITY_ITEMS.check)
    serial = identity.serial or ""
    # meter_identity: what the meter said it is, as the certificate names the meter (rig.certificate.data)
    record("meter number digits", len(serial) if serial.isdigit() else 0, "digits", low=12, high=12,
           position=position, read=serial, identity=identity.describe(), meter_identity=asdict(identity))


def test_software_is_the_declared_software(bench: Bench, link: MeterLink, position: Position, record) -> None:
    """The software version and checksum the meter reports are the meter type's declared ones (or those of
    the upgrade image the bench declares for this position); skips when the type declares neither."""
    meter = bench.meter
    if meter.software_version is None and meter.software_checksum is None:
        pytest.skip("the bench file's meter type declares no software_version or software_checksum")
    versions, checksums = [meter.software_version], [meter.software_checksum]
    upgrade = position.config.dlt698.upgrade
    if upgrade is not None and upgrade.version is not None:  # the lab's upgrade plan may have loaded it
        versions.append(upgrade.version)
        checksums.append(upgrade.checksum.upper() if upgrade.checksum is not None else None)
    identity = read_identity(link)
    if meter.software_version is not None:
        _same(record, "software version is the declared one", identity.firmware,
              [v for v in versions if v is not None], position, spec.SOFTWARE_ID)
    if meter.software_checksum is not None:
        _same(record, "software checksum is the declared one", identity.checksum,
              [c for c in checksums if c is not None], position, spec.SOFTWARE_ID)
