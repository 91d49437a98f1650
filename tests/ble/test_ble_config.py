"""The bench file's `ble:` entry: UUIDs in bleak's 128-bit form, and every bad entry named by its key; the
backend chosen in one place (the bench builder); the BLE knobs listed and each in the defect catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.errors import RigError
from rig.bench import ble_backend
from rig.cli import iter_knobs
from rig.config import BleConfig, BleKnobs, ConfigError, ble_uuid, load_bench
from testplans.mutations import BLE_MUTATIONS, MUTATIONS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("given", "expected"), [
    ("fff0", "0000fff0-0000-1000-8000-00805f9b34fb"),
    ("0xFFE1", "0000ffe1-0000-1000-8000-00805f9b34fb"),
    ("0000FFF0", "0000fff0-0000-1000-8000-00805f9b34fb"),
    ("6E400001-B5A3-F393-E0A9-E50E24DCCA9E", "6e400001-b5a3-f393-e0a9-e50e24dcca9e"),
])
def test_uuids_take_bleaks_128_bit_form(given: str, expected: str) -> None:
    assert ble_uuid(given) == expected


def test_defaults_are_the_128_bit_forms_too() -> None:
    ble = BleConfig(name="MTR-1")
    assert (ble.service_uuid, ble.write_uuid, ble.notify_uuid) == tuple(
        f"0000{u}-0000-1000-8000-00805f9b34fb" for u in ("fff0", "fff2", "fff1"))


@pytest.mark.parametrize(("override", "message"), [
    ("positions.0.ble={backend: twin}", "positions.0.ble: give the meter's advertised 'name', its 'address', or both"),
    ("positions.0.ble={address: 'C0:00:00'}",
     "positions.0.ble.address: address 'C0:00:00' must be a Bluetooth address"),
    ("positions.0.ble={name: M, backend: bluez}", "backend 'bluez': use 'bleak', 'twin' or 'bumble:<HCI transport>'"),
    ("positions.0.ble={name: M, service_uuid: fff2}", "service_uuid must differ from the write and notify"),
    ("positions.0.ble={name: M, notify_uuid: xyz}", "positions.0.ble.notify_uuid: 'xyz' is not a UUID"),
    ("positions.0.ble.scan_timeout_s=0", "positions.0.ble.scan_timeout_s: Input should be greater than 0"),
])
def test_a_bad_ble_entry_is_named_by_its_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_bench(overrides=[override])
    assert message in str(caught.value)


def test_one_characteristic_both_ways_is_allowed() -> None:
    ble = BleConfig(name="HM-10", service_uuid="ffe0", write_uuid="ffe1", notify_uuid="ffe1")
    assert ble.write_uuid == ble.notify_uuid


def test_the_backend_is_chosen_in_the_bench_builder() -> None:
    bench = load_bench(overrides=["positions.0.ble.backend=bleak"])
    assert ble_backend(bench.positions[0], "positions.0").client is None, "bleak's default: the OS's stack"
    unresolved = load_bench().positions[0]
    with pytest.raises(RigError, match=r"positions\.0: ble backend 'twin' needs the twin"):
        ble_backend(unresolved, "positions.0")
    stale = load_bench(overrides=["positions.0.ble.backend=twin-ble://999"]).positions[0]
    with pytest.raises(RigError, match="no twin with that air runs in this process"):
        ble_backend(stale, "positions.0")


def test_every_ble_knob_is_listed_and_has_a_mutation_row() -> None:
    knobs = {key for key, *_ in iter_knobs() if key.startswith("twin.meter.ble.")}
    assert knobs == {f"twin.meter.ble.{name}" for name in BleKnobs.model_fields}
    assert sorted(m.knob for m in BLE_MUTATIONS) == sorted(knobs)
    assert set(BLE_MUTATIONS) <= set(MUTATIONS)
    for mutation in BLE_MUTATIONS:
        for test in mutation.catches:
            path, function = test.split("::")
            assert f"def {function}(" in (ROOT / path).read_text(), test
