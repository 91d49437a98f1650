"""The bench builder and its providers: bench-file driver names reach their drivers, the twin is one provider
(resources, clock, hands at the bench), `clock: wall` holds on every bench (hybrid ones included), and the
plans never branch on the twin."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.clock import WallClock
from drivers.errors import RigError
from drivers.fluke6100 import Fluke6100Source, Fluke6105aEnergy
from drivers.reference import CalculatorState
from rig.bench import Bench, LabProvider, bench_session, open_bench, provider_for
from rig.config import BENCHES_DIR, BenchConfig, load_bench
from rig.operator import Answer, Question
from rig.twin.provider import EmbeddedTwinProvider, ServedTwinProvider, TwinOperator, embedded_twin
from rig.twin.runtime import Twin
from rig.twin.source import scientific
from rig.twin.world import Terminals

ROOT = Path(__file__).resolve().parents[1]
VOLTAGE_A = 0x02010100  # DL/T 645 phase A voltage


class Person:
    """Stands for the person at a real bench."""

    def ask(self, question: Question) -> Answer:
        return Answer(question, True, "yes", "person", 0.0)


def _bench_data(**changes: Any) -> dict[str, Any]:
    data = load_bench().model_dump(mode="python")
    data.update(changes)
    return data


def _wall_seconds_pass(bench_time: Any, wall_s: float = 0.3) -> float:
    """How much bench time passed while `wall_s` wall seconds did."""
    before = bench_time()
    threading.Event().wait(wall_s)
    return float(bench_time() - before)


@pytest.fixture
def lab_twin() -> Iterator[tuple[Twin, BenchConfig]]:
    """Another twin standing for the lab's real hardware, on real ports, running in real time."""
    config = load_bench()
    lab = Twin(config)
    lab.start()
    try:
        resolved = lab.resolve(config)
        with lab.world.lock:
            lab.world.set_point = Terminals(voltage_v=220.0, frequency_hz=50.0)
            lab.world.output_on = True
        lab.clock.sleep(6.0)  # the lab's meter is powered and past its start-up time
        lab.clock.pace(1.0)
        yield lab, resolved
    finally:
        lab.clock.stop_pacing()
        lab.stop()


# ---------------------------------------------------------------- providers and clocks


def test_the_twin_bench_runs_on_the_virtual_clock_and_the_twin_answers_for_the_operator() -> None:
    with bench_session(load_bench()) as bench:
        assert isinstance(bench.provider, EmbeddedTwinProvider) and bench.provider.kind == "twin"
        assert not isinstance(bench.clock, WallClock)
        assert isinstance(bench.provider.operator(Person()), TwinOperator)
        assert not bench.provider.source_outlives_run, "the twin's source stops with this process"
        assert _wall_seconds_pass(bench.clock.now) == 0.0, "virtual time passes only when asked"


def test_clock_wall_on_the_twin_bench_is_the_wall_clock_and_the_twin_keeps_pace() -> None:
    with bench_session(BenchConfig.model_validate(_bench_data(clock="wall"))) as bench:
        assert isinstance(bench.clock, WallClock)
        world = embedded_twin(bench).world
        assert 0.2 < _wall_seconds_pass(lambda: world.time_s) < 1.5, "the twin runs paced at speed 1"


def test_clock_wall_with_twin_instruments_and_a_real_meter_port(lab_twin: tuple[Twin, BenchConfig]) -> None:
    _, lab = lab_twin
    data = _bench_data(clock="wall")
    data["positions"][0].update(serial=lab.positions[0].serial, expansion_tap=None, ble=None, spi=None)
    with bench_session(BenchConfig.model_validate(data)) as bench:
        assert bench.provider.kind == "hybrid" and isinstance(bench.clock, WallClock)
        world = embedded_twin(bench).world
        assert 0.2 < _wall_seconds_pass(lambda: world.time_s) < 1.5, "the embedded twin is paced"
        person = Person()
        assert bench.provider.operator(person) is person, "a real meter is mounted by a person"
        link = bench.positions[0].link
        assert link is not None and link.read(VOLTAGE_A) == pytest.approx(220, abs=1)


def test_clock_wall_with_real_instruments_and_a_twin_meter(lab_twin: tuple[Twin, BenchConfig]) -> None:
    _, lab = lab_twin
    data = _bench_data(clock="wall", instruments=[i.model_dump() for i in lab.instruments])
    data["positions"][0].update(expansion_tap=None, ble=None, spi=None)  # the meter's serial port: the twin
    with bench_session(BenchConfig.model_validate(data)) as bench:
        assert bench.provider.kind == "hybrid" and isinstance(bench.clock, WallClock)
        assert bench.provider.source_outlives_run, "a real source needs the watchdog"
        assert "ReferenceStandard" in bench.reference.identity()
        world = embedded_twin(bench).world
        assert 0.2 < _wall_seconds_pass(lambda: world.time_s) < 1.5
        person = Person()
        assert bench.provider.operator(person) is person, "its pulses go to a real reference: a person's bench"


def test_providers_are_chosen_by_the_bench_file_alone() -> None:
    assert isinstance(provider_for(load_bench()), EmbeddedTwinProvider)
    served = BenchConfig.model_validate(_bench_data(clock="twin+tcp://127.0.0.1:9", twin=None, instruments=[
        {"role": "source", "driver": "scpi-phantom-source", "resource": "TCPIP::127.0.0.1::1::SOCKET"},
        {"role": "reference", "driver": "scpi-reference", "resource": "TCPIP::127.0.0.1::2::SOCKET"}],
        positions=[{"address": "000000000001", "pulse_channel": 1}]))
    assert isinstance(provider_for(served), ServedTwinProvider)
    lab = BenchConfig.model_validate(_bench_data(clock="wall", twin=None, instruments=served.model_dump()[
        "instruments"], positions=[{"address": "000000000001", "pulse_channel": 1, "serial": "/dev/ttyUSB0"}]))
    provider = provider_for(lab)
    assert isinstance(provider, LabProvider) and provider.kind == "bench"
    person = Person()
    assert provider.operator(person) is person


# ---------------------------------------------------------------- drivers by name, the twin speaking them


def test_the_twin_serves_the_fluke_dialect_when_the_bench_file_names_it() -> None:
    with bench_session(load_bench(BENCHES_DIR / "twin-fluke.yaml")) as bench:
        source = bench.source
        assert isinstance(source, Fluke6100Source) and source.model() == "6105A"
        assert "6105A" in source.identity()
        source.apply(voltage_v=230, current_a=10, phase_deg=60, frequency_hz=50)
        assert (source.voltage_v, source.current_a, source.phase_deg, source.frequency_hz) == (230, 10, 60, 50)
        source.output_on()
        reading = bench.reference.measure()
        assert reading.power_w == pytest.approx(230 * 10 * 0.5, rel=1e-3)
        assert source.measure().current_a == pytest.approx(10, rel=1e-3)
        source.transport.write("SOUR:VOLT 100")  # the phantom dialect's header: not the Fluke's
        source.transport.write("SOUR:PHAS2:VOLT:MHAR:AMPL 100")  # no auxiliary unit fitted
        assert source.errors() == [(-113, "Undefined header"), (-241, "Hardware missing")]
        assert source.voltage_v == 230


def test_the_twin_serves_the_fluke_energy_option_as_the_reference() -> None:
    with bench_session(load_bench(BENCHES_DIR / "twin-fluke.yaml")) as bench:
        reference = bench.reference
        assert isinstance(reference, Fluke6105aEnergy)
        transport = reference.transport
        assert transport.query("ENER:MUT:CONS:UNIT?;:ENER:REF:SOUR?") == "IPKWH;MAIN", "set when it opened"
        transport.write("ENER:MUT:CONS:UNIT IPWH;:ENER:MUT:CONS 1.2")  # 1.2 imp/Wh is 1200 imp/kWh
        transport.write("ENER:MUT:CONS:UNIT IPKWH")
        assert transport.query("ENER:MUT:CONS?") == "1.2E3"
        transport.write("ENER:MUT:SOUR CH4")  # the option has MUT inputs 1..3
        transport.write("ENER:REF:SOUR CH6")  # the twin has no reference meter inputs, only the main outputs
        assert reference.errors() == [(-224, "Illegal parameter value"), (-224, "Illegal parameter value")]
        bench.source.apply(voltage_v=220, current_a=5)
        bench.source.output_on()
        calc = bench.positions[0].calculator
        calc.configure(constant_imp_per_kwh=bench.meter.constant_imp_per_kwh, pulses=4)
        calc.start()
        assert bench.clock.wait_until(lambda: calc.state() is CalculatorState.DONE, 60.0, 1.0)
        assert 0.0 < abs(calc.error_pct()) < 0.3, "a healthy twin meter through the Fluke's MUT input"


@pytest.mark.parametrize(("value", "text"), [(14.4, "1.44E1"), (24300.0, "2.43E4"), (2.5, "2.5E0"), (0.0, "0.0E0"),
                                             (90.0, "9.0E1"), (0.25, "2.5E-1")])
def test_the_twins_fluke_replies_in_the_manuals_number_format(value: float, text: str) -> None:
    # Fluke 6100B/6105A Users Manual 5-32, 5-43 ("14.4 A would be returned as 1.44E1") and 5-45 (replies).
    assert scientific(value) == text


def test_a_driver_the_twin_cannot_speak_is_refused_by_name() -> None:
    data = _bench_data()
    data["instruments"][0]["driver"] = "chroma-61500"
    with pytest.raises(RigError, match="the twin cannot serve source driver 'chroma-61500'"):
        open_bench(BenchConfig.model_validate(data))


def test_plans_run_end_to_end_on_the_twin_speaking_fluke(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", "testplans/smoke", "testplans/accuracy",
                           "--bench", str(BENCHES_DIR / "twin-fluke.yaml"), "--reports", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((tmp_path / "latest" / "results.json").read_text())
    assert results["verdict"] == "pass" and results["tests"]
    assert [i["driver"] for i in results["instruments"]] == ["fluke-6100b", "fluke-6105a-energy"]
    traffic = (tmp_path / "latest" / "traffic.log").read_text()
    assert "SOUR:PHAS1:VOLT:MHAR:AMPL 220.0000" in traffic and "ENER:MUT:TEST:PSOU CH1" in traffic


# ---------------------------------------------------------------- no branch on the twin above the rig


def _twin_uses(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in ("twin", "twin_control"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in ("TwinOperator", "Twin", "TwinControl"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.id}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rig.twin"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} from {node.module}")
    return found


def test_fixtures_and_plans_never_branch_on_the_twin() -> None:
    files = sorted((ROOT / "fixtures").rglob("*.py")) + sorted((ROOT / "testplans").rglob("*.py"))
    assert len(files) > 10
    assert [use for path in files for use in _twin_uses(path)] == []
    assert not {name for name in Bench.__dataclass_fields__ if "twin" in name}, "a Bench has no twin attributes"
