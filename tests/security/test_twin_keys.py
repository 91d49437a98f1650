"""The twin's ESAM master key reaches the rig by reference only: derived from the seed and handed over
in an environment variable of the process (embedded twin) or a temporary file only this user can read
(served twin), both gone when the twin stops; or read from the bench file's own `keys.esam_master` (file
or environment variable). A bad reference is a ConfigError naming it; `rig twin serve` prints the
reference, never the key."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from rig.config import ESAM_MASTER_KEY, ConfigError, KeyRef, dump_bench, load_bench
from rig.security import key_source_for
from rig.twin.esam import twin_master_key
from rig.twin.runtime import Twin


def test_embedded_twin_hands_its_derived_key_over_in_this_process_only() -> None:
    bench = load_bench(overrides=["twin.seed=5"])
    twin = Twin(bench)
    twin.start()
    try:
        ref = twin.resolve(bench).keys[ESAM_MASTER_KEY]
        assert ref.env is not None and ref.file is None and ref.env.startswith("RIG_TWIN_ESAM_KEY_")
        assert ref.read() == twin_master_key(5) != twin_master_key(6)
        keys = key_source_for(twin.resolve(bench))
        assert keys.appears_in(twin_master_key(5)) and "environment variable" in keys.description
        assert twin_master_key(5).hex() not in repr(twin.esam_key) + repr(twin.meters[0].management.security)
        assert twin_master_key(5).hex() not in dump_bench(twin.resolve(bench))
    finally:
        twin.stop()
    assert ref.env not in os.environ


def test_served_twin_hands_its_derived_key_over_in_a_private_file() -> None:
    bench = load_bench(overrides=["twin.seed=5"])
    twin = Twin(bench)
    twin.start(control=True)
    try:
        ref = twin.resolve(bench, served=True).keys[ESAM_MASTER_KEY]
        assert ref.file is not None and ref.env is None
        assert stat.S_IMODE(ref.file.stat().st_mode) == 0o600
        assert stat.S_IMODE(ref.file.parent.stat().st_mode) == 0o700
        assert ref.read() == twin_master_key(5)
    finally:
        twin.stop()
    assert not ref.file.exists() and not ref.file.parent.exists()


def test_bench_key_by_environment_variable_provisions_the_esams(monkeypatch: pytest.MonkeyPatch) -> None:
    key = bytes(range(16))
    monkeypatch.setenv("RIG_TEST_ESAM_KEY", key.hex())
    bench = load_bench(overrides=["keys.esam_master.env=RIG_TEST_ESAM_KEY"])
    twin = Twin(bench)
    twin.start()
    try:
        resolved = twin.resolve(bench)
        assert resolved.keys[ESAM_MASTER_KEY] == KeyRef(env="RIG_TEST_ESAM_KEY")
        assert twin.meters[0].management.security.esam.master_key == key  # type: ignore[union-attr]
    finally:
        twin.stop()


def test_bad_key_references_name_the_reference_not_the_key(tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    short.write_text("00112233445566778899aabbccddee\n")
    with pytest.raises(ConfigError, match=f"key file {short}.*32 hex digits") as caught:
        Twin(load_bench(overrides=[f"keys.esam_master.file={short}"]))
    assert "00112233" not in str(caught.value)
    with pytest.raises(ConfigError, match="RIG_TEST_NOT_SET is not set"):
        Twin(load_bench(overrides=["keys.esam_master.env=RIG_TEST_NOT_SET"]))
    with pytest.raises(ConfigError, match=r"names no keys\.esam_master"):
        key_source_for(load_bench())  # the bench file itself names none: only a started twin does


def test_served_twin_prints_the_reference_and_removes_the_file(served_twin: Any) -> None:
    served = served_twin.bench
    path = Path(served["keys"][ESAM_MASTER_KEY]["file"])
    assert path.read_text().strip() == twin_master_key(1).hex()
    assert twin_master_key(1).hex() not in served_twin.out.read_text()
    assert served_twin.stop() == 0 and not path.exists()
    assert os.environ.get("RIG_TEST_ESAM_KEY") is None
