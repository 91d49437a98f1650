"""The twin's source runs a waveform program on the virtual clock: the World splits its steps at every
program edge (each level lasts exactly its time), starts at the asked phase angle, does not step every
second through a long zero-volt stretch, and the LIST commands are checked as a real source checks them."""

from __future__ import annotations

import math

import pytest

from drivers.transients import TransientStep, WaveformProgram, dip, repeated
from rig.bench import Bench, bench_session
from rig.config import SourceTwin, load_bench
from rig.twin.source import SourceModel, next_phase
from rig.twin.world import Terminals, World


class Recorder:
    """A stepped model that keeps every step it saw."""

    def __init__(self) -> None:
        self.steps: list[tuple[float, float, float]] = []

    def step(self, t0: float, dt: float, terminals: Terminals) -> None:
        self.steps.append((t0, dt, terminals.voltage_v))


def twin_source(noise_pct: float = 0.0) -> tuple[World, SourceModel, Recorder]:
    world = World(seed=3)
    source = SourceModel(world, SourceTwin(amplitude_noise_pct=noise_pct, latency_s=0.002))
    recorder = Recorder()
    world.models.append(recorder)
    assert source.handle_line("SOUR:VOLT 220;:SOUR:CURR 0;:OUTP ON;:SYST:ERR?") == '0,"No error"'
    world.advance(0.3)
    return world, source, recorder


def run(source: SourceModel, *lines: str) -> list[str]:
    """Send lines; every error the source queued."""
    for line in lines:
        source.handle_line(line)
    errors = []
    while (reply := source.handle_line("SYST:ERR?")) != '0,"No error"':
        errors.append(reply)
    return errors


def test_steps_split_exactly_at_program_edges() -> None:
    world, source, recorder = twin_source()
    assert run(source, "SOUR:LIST:BASE TIME", "SOUR:LIST:VOLT 0,220", "SOUR:LIST:DWEL 1.0,0.05", "SOUR:LIST:COUN 3",
               "SOUR:LIST:PHAS:STAT OFF", "INIT:TRAN") == []
    segments = list(world.transient.segments)  # type: ignore[union-attr]
    start, end = segments[0].start_s, segments[-1].end_s
    assert [round(s.end_s - s.start_s, 9) for s in segments] == [1.0, 0.05] * 3
    world.advance(5.0)
    assert world.transient is None, "the program ended and the output is back at its set-point"
    edges = [s.start_s for s in segments] + [end]
    starts = {t0 for t0, _, _ in recorder.steps}
    for edge in edges:
        assert any(abs(t - edge) < 1e-9 for t in starts), f"no step starts at the edge {edge}"
    off = sum(dt for t0, dt, v in recorder.steps if v == 0.0 and t0 >= start)
    on_inside = sum(dt for t0, dt, v in recorder.steps if v > 0 and start <= t0 < end)
    assert off == pytest.approx(3.0, abs=1e-9) and on_inside == pytest.approx(0.15, abs=1e-9)
    for t0, dt, _ in recorder.steps:
        assert not any(t0 < edge < t0 + dt - 1e-12 for edge in edges), "a step straddles an edge"


def test_program_starts_at_its_phase_angle_and_counts_in_cycles() -> None:
    world, source, _ = twin_source()
    assert run(source, "SOUR:LIST:BASE CYCL", "SOUR:LIST:VOLT 0", "SOUR:LIST:DWEL 1", "SOUR:LIST:PHAS 90",
               "SOUR:LIST:COUN 1", "INIT:TRAN") == []
    segment = world.transient.segments[0]  # type: ignore[union-attr]
    cycles = segment.start_s * 50.0
    assert cycles - math.floor(cycles) == pytest.approx(0.25, abs=1e-9)
    assert segment.end_s - segment.start_s == pytest.approx(0.02, abs=1e-12)
    assert segment.start_s - world.time_s < 0.02 + 1e-12
    assert next_phase(0.0, 50.0, 0.0) == 0.0 and next_phase(0.0101, 50.0, 180.0) == pytest.approx(0.03)


def test_long_zero_volt_stretch_is_integrated_not_stepped_every_second() -> None:
    world, source, recorder = twin_source(noise_pct=0.005)
    assert run(source, "SOUR:LIST:VOLT 0", f"SOUR:LIST:DWEL {72 * 3600}", "INIT:TRAN") == []
    start = world.transient.segments[0].start_s  # type: ignore[union-attr]
    before = len(recorder.steps)
    world.advance(72 * 3600 + 10.0)
    assert len(recorder.steps) - before < 30, "72 h at 0 V and 0 A is a few steps, not 259200"
    assert sum(dt for t0, dt, v in recorder.steps if v == 0.0 and t0 >= start) == pytest.approx(72 * 3600, abs=1e-6)
    assert world.terminals().voltage_v == pytest.approx(220.0, rel=1e-3)


def test_list_commands_are_checked_like_a_real_source() -> None:
    world, source, _ = twin_source()
    assert run(source, "SOUR:LIST:VOLT 0,400") == ['-222,"Data out of range"']
    assert run(source, "SOUR:LIST:VOLT 0,220", "SOUR:LIST:DWEL 1,2,3", "INIT:TRAN") == ['-221,"Settings conflict"']
    assert run(source, "SOUR:LIST:COUN 0", "SOUR:LIST:DWEL -1", "SOUR:LIST:BASE DAYS") == [
        '-222,"Data out of range"', '-222,"Data out of range"', '-224,"Illegal parameter value"']
    assert run(source, "SOUR:LIST:DWEL 1,1", "OUTP OFF", "INIT:TRAN") == ['-221,"Settings conflict"']
    assert world.transient is None


def test_output_off_and_reset_end_a_running_program() -> None:
    world, source, _ = twin_source()
    assert run(source, "SOUR:LIST:VOLT 0", "SOUR:LIST:DWEL 10", "INIT:TRAN") == []
    assert source.handle_line("SOUR:LIST:RUNN?") == "1"
    run(source, "OUTP OFF")
    assert world.transient is None and source.handle_line("SOUR:LIST:RUNN?") == "0"
    run(source, "OUTP ON", "INIT:TRAN")
    assert world.transient is not None
    run(source, "*RST")
    assert world.transient is None and source.lists.voltages_v == []


@pytest.fixture
def twin_bench() -> Bench:
    with bench_session(load_bench()) as bench:
        yield bench


def test_driver_runs_a_dip_the_reference_sees(twin_bench: Bench) -> None:
    source, clock = twin_bench.source, twin_bench.clock
    source.apply(voltage_v=220.0, current_a=0.0)
    source.output_on()
    transients = source.transients
    duration = transients.load(dip(50.0, duration_s=60.0), voltage_v=220.0, frequency_hz=50.0)
    transients.start()
    clock.sleep(30.0)
    assert twin_bench.reference.measure().voltage_v == pytest.approx(110.0, rel=1e-3)
    transients.wait(clock)
    assert twin_bench.reference.measure().voltage_v == pytest.approx(220.0, rel=1e-3)
    assert duration == pytest.approx(60.0)
    took = source.run_transient(repeated(TransientStep(0.0, duration_s=1.0), 3, recovery_s=0.05),
                                voltage_v=220.0, frequency_hz=50.0, clock=clock)
    assert 3.15 <= took < 3.6
    assert source.output_enabled


def test_program_mixing_cycles_and_seconds_goes_in_seconds(twin_bench: Bench) -> None:
    source = twin_bench.source
    source.apply(voltage_v=220.0, current_a=0.0)
    source.output_on()
    program = WaveformProgram((TransientStep(0.0, cycles=5), TransientStep(70.0, duration_s=0.5)))
    source.transients.load(program, voltage_v=220.0, frequency_hz=50.0)
    assert source.transport.query("SOUR:LIST:DWEL?") == "0.100000,0.500000"
    assert source.transport.query("SOUR:LIST:VOLT?") == "0.000000,154.000000"
