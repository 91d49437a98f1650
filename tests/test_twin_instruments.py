"""The real drivers against the twin's instruments over loopback TCP (pyvisa-py), and the twin's
metering model seen through the reference standard's error calculators."""

from __future__ import annotations

import socket

import pytest

from drivers.errors import ConnectionRefused, InstrumentError, InstrumentTimeout
from drivers.source import PowerSource
from drivers.transport import PyVisaTransport
from rig.bench import Bench, bench_session
from rig.config import BENCHES_DIR, load_bench
from rig.procedures import LoadPoint, count_pulses, energise, measure_errors
from rig.twin.provider import embedded_twin


@pytest.fixture
def twin_bench() -> Bench:
    with bench_session(load_bench()) as bench:
        yield bench


def test_source_set_points_read_back_and_reach_the_terminals(twin_bench: Bench) -> None:
    source = twin_bench.source
    source.apply(voltage_v=230, current_a=10, phase_deg=60, frequency_hz=49)
    assert (source.voltage_v, source.current_a, source.phase_deg, source.frequency_hz) == (230, 10, 60, 49)
    assert not source.output_enabled
    assert source.measure().current_a == 0.0, "nothing flows while the output is off"
    source.output_on()
    reading = twin_bench.reference.measure()
    assert reading.voltage_v == pytest.approx(230, rel=1e-3)
    assert reading.power_factor == pytest.approx(0.5, abs=1e-4)
    assert reading.power_w == pytest.approx(230 * 10 * 0.5, rel=1e-3)


def test_twin_error_queue_codes(twin_bench: Bench) -> None:
    transport = twin_bench.source.transport
    transport.write("SOURCE:VOLTAGE:LEVEL 999")
    transport.write("BOGUS:CMD 1")
    transport.write("OUTP MAYBE")
    assert twin_bench.source.errors() == [(-222, "Data out of range"), (-113, "Undefined header"),
                                           (-224, "Illegal parameter value")]
    for _ in range(15):
        transport.write("BOGUS")
    errors = twin_bench.source.errors()
    assert len(errors) == 10 and errors[-1] == (-350, "Queue overflow")


def test_long_and_short_forms_and_compound_lines(twin_bench: Bench) -> None:
    transport = twin_bench.source.transport
    transport.write("SOURce:VOLTage:LEVel:IMMediate:AMPLitude 215.5;:FREQ 51")
    assert transport.query("volt?;freq?") == "215.50000;51.00000"


def test_rst_turns_the_output_off(twin_bench: Bench) -> None:
    twin_bench.source.apply(voltage_v=220, current_a=5)
    twin_bench.source.output_on()
    twin_bench.source.transport.write("*RST")
    assert not twin_bench.source.output_enabled


def test_unreachable_instrument_gives_clear_timeout() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = PowerSource(PyVisaTransport(f"TCPIP::127.0.0.1::{port}::SOCKET", timeout_s=0.5),
                         max_voltage_v=264, max_current_a=72)
    with pytest.raises(ConnectionRefused, match=f"connection refused at TCPIP::127.0.0.1::{port}::SOCKET"):
        source.open()


def test_silent_instrument_gives_clear_timeout() -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        transport = PyVisaTransport(f"TCPIP::127.0.0.1::{port}::SOCKET", timeout_s=0.3)
        with pytest.raises(InstrumentTimeout, match=r"no reply to '\*IDN\?' within 0.3 s"):
            transport.open()  # its identity is the first thing asked


def test_error_reading_before_done_is_an_instrument_error(twin_bench: Bench) -> None:
    calc = twin_bench.positions[0].calculator
    with pytest.raises(InstrumentError, match="-221 Settings conflict"):
        calc.error_pct()


def test_healthy_meter_error_is_small_but_not_zero(twin_bench: Bench) -> None:
    meter = twin_bench.meter
    point = LoadPoint(voltage_v=meter.un_v, current_a=meter.ib_a)
    energise(twin_bench, point)
    errors = measure_errors(twin_bench, twin_bench.positions, power_w=point.active_power_w, readings=3)[0]
    assert all(0.0 < abs(e) < 0.2 for e in errors), errors
    assert len(set(errors)) == 3, "seeded noise: readings differ"


@pytest.mark.parametrize("gain", [0.8, -1.5])
def test_gain_knob_shows_in_the_error_reading(gain: float) -> None:
    config = load_bench(None, [f"twin.meter.metering.gain_error_pct={gain}"])
    with bench_session(config) as bench:
        point = LoadPoint(voltage_v=220, current_a=5)
        energise(bench, point)
        errors = measure_errors(bench, bench.positions, power_w=point.active_power_w)[0]
    assert all(abs(e - gain) < 0.1 for e in errors), errors


def test_phase_knob_shows_only_at_low_power_factor() -> None:
    config = load_bench(None, ["twin.meter.metering.phase_error_deg=0.3", "twin.meter.metering.noise_pct=0"])
    with bench_session(config) as bench:
        unity = LoadPoint(voltage_v=220, current_a=5)
        energise(bench, unity)
        at_unity = measure_errors(bench, bench.positions, power_w=unity.active_power_w)[0]
        lagging = LoadPoint(voltage_v=220, current_a=5, phase_deg=60)
        energise(bench, lagging)
        at_half = measure_errors(bench, bench.positions, power_w=lagging.active_power_w)[0]
    assert abs(at_unity[0]) < 0.1
    assert at_half[0] == pytest.approx(-0.87, abs=0.1)  # cos(60.3°)/cos(60°) - 1


def test_creep_and_start_threshold() -> None:
    config = load_bench(None, ["twin.meter.metering.creep_w=5", "twin.meter.metering.start_current_a=0.05"])
    with bench_session(config) as bench:
        energise(bench, LoadPoint(voltage_v=253, current_a=0.0))
        creep = count_pulses(bench, bench.positions, 1800)[0]
        energise(bench, LoadPoint(voltage_v=220, current_a=0.03))
        below_start = count_pulses(bench, bench.positions, 600)[0]
    # 5 W for 1800 s = 2.5 Wh = 3 pulses at 1200 imp/kWh; below the start current only creep registers.
    assert creep == 3
    assert below_start == 1


def test_rack_meters_are_independent() -> None:
    config = load_bench(BENCHES_DIR / "twin-rack.yaml", ["twin.positions.3.metering.gain_error_pct=2"])
    with bench_session(config) as bench:
        point = LoadPoint(voltage_v=220, current_a=10)
        energise(bench, point)
        errors = measure_errors(bench, bench.positions, power_w=point.active_power_w, readings=1)
    assert abs(errors[3][0] - 2.0) < 0.1
    assert all(abs(errors[i][0]) < 0.2 for i in (0, 1, 2, 4, 5))


def test_virtual_clock_covers_hours_quickly(twin_bench: Bench) -> None:
    start = twin_bench.clock.now()
    energise(twin_bench, LoadPoint(voltage_v=220, current_a=60))
    twin_bench.clock.sleep(4 * 3600)
    assert twin_bench.clock.now() - start == pytest.approx(4 * 3600 + 2, abs=1)
    registered = embedded_twin(twin_bench).meters[0].metering.forward_kwh
    assert registered == pytest.approx(220 * 60 * 4 / 1000, rel=2e-3)
