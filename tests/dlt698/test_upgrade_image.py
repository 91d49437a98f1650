"""The bench file's signed firmware image for the DL/T 698.45 upgrade plan (`positions[].dlt698.upgrade`): a
lab's image needs its declared version and checksum and an existing file; `image: twin` is resolved by the twin
to an image file it signed, which its meters accept, and which goes away with the twin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rig.config import BENCHES_DIR, ConfigError, load_bench
from rig.twin.dlt698.firmware import Firmware, image_checksum
from rig.twin.runtime import Twin


def _bench(tmp_path: Path, upgrade: dict[str, Any]) -> Path:
    data = yaml.safe_load((BENCHES_DIR / "twin.yaml").read_text())
    data["positions"][0]["dlt698"] = {"upgrade": upgrade}
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_lab_image_needs_its_file_version_and_checksum(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"positions\.0\.dlt698\.upgrade: upgrade image .*missing\.bin is not a"):
        load_bench(_bench(tmp_path, {"image": str(tmp_path / "missing.bin"), "version": "0002", "checksum": "AB"}))
    image = tmp_path / "vendor.bin"
    image.write_bytes(b"image")
    with pytest.raises(ConfigError, match="give the 'version' and 'checksum' the manufacturer declares"):
        load_bench(_bench(tmp_path, {"image": str(image), "version": "0002"}))
    config = load_bench(_bench(tmp_path, {"image": str(image), "version": "0002", "checksum": "AB"}))
    upgrade = config.positions[0].dlt698.upgrade
    assert upgrade is not None and (upgrade.image, upgrade.version, upgrade.checksum) == (str(image), "0002", "AB")


def test_twin_hands_over_an_image_its_meters_accept(tmp_path: Path) -> None:
    config = load_bench(_bench(tmp_path, {"image": "twin"}))
    twin = Twin(config)
    twin.start()
    try:
        upgrade = twin.resolve(config).positions[0].dlt698.upgrade
        assert upgrade is not None and upgrade.image != "twin"
        image = Path(upgrade.image).read_bytes()
        assert upgrade.checksum == image_checksum(image) and upgrade.version == "0002"
        server = twin.meters[0].management.dlt698
        assert server is not None
        firmware: Firmware = server.firmware
        assert firmware._valid(image) and not firmware._valid(image[:-64])
        assert twin.resolve(config).positions[0].dlt698.upgrade == upgrade  # one image per run
    finally:
        twin.stop()
    assert not Path(upgrade.image).exists()
