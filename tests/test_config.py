"""Bench file validation: good files load, bad ones give one paragraph naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rig.config import BENCHES_DIR, DEFAULT_BENCH, ConfigError, KeyRef, load_bench


def _write(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(DEFAULT_BENCH.read_text())
    mutate(data)
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_default_bench_is_the_one_position_twin() -> None:
    bench = load_bench()
    assert bench.name == "twin" and len(bench.positions) == 1
    assert bench.meter.nameplate == "220 V 5(60) A 1200 imp/kWh class 1"
    assert bench.meter.transitional_current_a == pytest.approx(0.5)


def test_rack_has_six_positions_with_own_channels() -> None:
    bench = load_bench(BENCHES_DIR / "twin-rack.yaml")
    assert [p.pulse_channel for p in bench.positions] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    ("mutate", "names"),
    [
        (lambda d: d["meter"].pop("un_v"), ["meter.un_v", "missing"]),
        (lambda d: d["meter"].update(un_v="two hundred"), ["meter.un_v", "number"]),
        (lambda d: d["meter"].update(constant_imp_per_kwh=-1200), ["meter.constant_imp_per_kwh", "greater than 0"]),
        (lambda d: d["instruments"][0].update(driver="chroma-9999"), ["instruments.0", "unknown driver 'chroma-9999'"]),
        (lambda d: d["meter"].update(accuracy_class="B"), ["accuracy_class 'B' is not a classic class"]),
        (lambda d: d["positions"][0].update(address="12345"), ["positions.0.address", "12 decimal digits"]),
        (lambda d: d["meter"].update(colour="red"), ["meter.colour", "unknown key"]),
        (lambda d: d["twin"].update(positions={3: {"metering": {"creep_w": 1}}}), ["twin.positions.3"]),
    ],
    ids=["missing", "wrong-type", "negative-constant", "unknown-driver", "class-scheme", "address", "typo", "index"],
)
def test_bad_bench_file_names_the_key(tmp_path: Path, mutate, names: list[str]) -> None:
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError) as info:
        load_bench(path)
    message = str(info.value)
    assert "\n" not in message, "one paragraph"
    for name in names:
        assert name in message


def test_overrides_are_yaml_scalars_and_reach_one_position() -> None:
    bench = load_bench(BENCHES_DIR / "twin-rack.yaml", [
        "twin.meter.metering.gain_error_pct=0.3",
        "twin.positions.2.metering.creep_w=2.5",
        "meter.start_up_time_s=7",
    ])
    assert bench.twin is not None
    assert bench.twin.knobs_for(0).metering.gain_error_pct == 0.3
    assert bench.twin.knobs_for(0).metering.creep_w == 0.0
    assert bench.twin.knobs_for(2).metering.creep_w == 2.5
    assert bench.twin.knobs_for(2).metering.gain_error_pct == 0.3, "position override merges over twin.meter"
    assert bench.meter.start_up_time_s == 7


@pytest.mark.parametrize("override", ["twin.meter.metering.no_such_knob=1", "twin.positions.0.metering.noise_pct=-1",
                                      "positions.5.address=000000000009", "nonsense"])
def test_bad_override_is_a_config_error(override: str) -> None:
    with pytest.raises(ConfigError):
        load_bench(None, [override])


def test_not_yaml_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nmeter: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_bench(path)


def test_key_reference_never_holds_or_echoes_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        KeyRef()
    monkeypatch.setenv("RIG_TEST_KEY", "not hex at all SECRET")
    with pytest.raises(ConfigError) as info:
        KeyRef(env="RIG_TEST_KEY").read()
    assert "SECRET" not in str(info.value)
    key_file = tmp_path / "k.hex"
    key_file.write_text("00112233445566778899aabbccddeeff\n")
    assert KeyRef(file=key_file).read() == bytes.fromhex("00112233445566778899aabbccddeeff")


def test_cli_bad_bench_exits_2_without_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["meter"].update(constant_imp_per_kwh=-1))
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", "--bench", str(path), "--reports",
                           str(tmp_path / "reports")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "meter.constant_imp_per_kwh" in proc.stderr
    assert "Traceback" not in proc.stderr


SECRET_HEX = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(keys={"esam_master": SECRET_HEX}),
    lambda d: d.update(keys=SECRET_HEX),
    lambda d: d["positions"][0].update(write_password=SECRET_HEX),
], ids=["key-inline", "keys-not-a-mapping", "password"])
def test_key_or_password_written_inline_is_named_never_echoed(tmp_path: Path, mutate) -> None:
    with pytest.raises(ConfigError) as info:
        load_bench(_write(tmp_path, mutate))
    message = str(info.value)
    assert SECRET_HEX not in message and SECRET_HEX.upper() not in message
    assert "keys" in message or "write_password" in message


def test_key_given_with_set_is_refused_without_its_value(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", "--set", f"keys.esam_master={SECRET_HEX}",
                           "--reports", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "keys: esam_master written as a value: give a reference" in proc.stderr
    assert SECRET_HEX not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == [], "nothing is created for a bench file that does not load"


def test_deeply_nested_yaml_and_endless_file_are_config_errors(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_bench(deep)
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_bench(None, ["twin.positions.0.metering=" + "{a: " * 5000 + "1" + "}" * 5000])
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        load_bench("/dev/zero")
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "bench", "check", "--bench", str(deep)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "nested too deeply" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(("override", "names"), [
    ("safety.max_current_a=1e308", "safety.max_current_a: Input should be less than or equal to 500"),
    ("safety.max_voltage_v=.inf", "safety.max_voltage_v: Input should be less than or equal to 1000"),
    ("twin.faults.schedule=[{kind: serial_drop, target: '7', at_s: 1}]",
     "twin.faults.schedule.0.target: serial_drop on position 7, but the bench has 1 position(s)"),
])
def test_absurd_safety_limits_and_faults_on_missing_positions_are_refused(override: str, names: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_bench(None, [override])
    assert names in str(info.value)


def test_fault_on_an_existing_position_of_a_rack_loads() -> None:
    bench = load_bench(BENCHES_DIR / "twin-rack.yaml",
                       ["twin.faults.schedule=[{kind: serial_drop, target: '5', at_s: 1, duration_s: 2}]"])
    assert bench.twin is not None and bench.twin.faults.schedule[0].target == "5"


def test_unquoted_accuracy_class_is_the_class_of_that_name() -> None:
    assert load_bench(None, ["meter.accuracy_class=2"]).meter.accuracy_class == "2"
    with pytest.raises(ConfigError, match=r"accuracy_class '0\.5' is not a classic class"):
        load_bench(None, ["meter.accuracy_class=0.5"])


def test_malformed_override_holding_a_key_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        load_bench(None, [f"keys.esam_master: {SECRET_HEX}"])
    assert "override 'keys.esam_master...' must look like key.path=value" in str(info.value)
    assert SECRET_HEX not in str(info.value)


def test_loading_a_bench_file_with_a_twin_section_starts_no_twin_code() -> None:
    """The bench file model, the twin's knobs included, is data: reading a twin bench (what fixtures and
    plans do) imports no module of the twin, and no Bluetooth or SPI stack."""
    code = ("import sys; from rig.config import load_bench; bench = load_bench(); assert bench.twin is not None; "
            "print(sorted(m for m in sys.modules if m.startswith(('rig.twin', 'bumble', 'bleak', 'spidev'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_a_twin_knob_typo_names_its_key_path(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["twin"].setdefault("positions", {}).update({0: {"uart": {"chksum": True}}}))
    with pytest.raises(ConfigError, match=r"twin\.positions\.0\.uart\.chksum: unknown key"):
        load_bench(path)
