"""The climate chamber driver (drivers/chamber.py) against the twin's chamber over real Modbus TCP on loopback,
the twin meter's temperature behaviour, and the RTC plan's tick timing, in process on the virtual clock."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.chamber import CHAMBER_DIALECTS, ClimateChamber, parse_resource
from drivers.errors import SafetyLimitError, ValidationError
from rig.bench import Bench, bench_session
from rig.chamber import open_chamber
from rig.config import BENCHES_DIR, load_bench
from rig.procedures import LoadPoint, energise
from rig.twin.chamber import AIR_TIME_CONSTANT_S, ROOM_C
from rig.twin.provider import embedded_twin
from testplans.meter_clock import daily_error_s, time_tick
from testplans.temperature import spec

CHAMBER_BENCH = BENCHES_DIR / "twin-chamber.yaml"


def _bench_with(driver: str) -> Iterator[Bench]:
    config = load_bench(CHAMBER_BENCH, [f"instruments.2.driver={driver}"])
    with bench_session(config) as bench:
        yield bench


@pytest.fixture(params=sorted(CHAMBER_DIALECTS))
def chamber_bench(request: pytest.FixtureRequest) -> Iterator[Bench]:
    """The one-position chamber bench, its chamber speaking each dialect in turn."""
    yield from _bench_with(request.param)


def _chamber(bench: Bench) -> ClimateChamber:
    chamber = open_chamber(bench)
    assert chamber is not None
    return chamber


def test_chamber_set_point_and_air_follow_with_the_first_order_lag(chamber_bench: Bench) -> None:
    bench = chamber_bench
    chamber = _chamber(bench)
    try:
        chamber.start()
        assert chamber.running()
        assert chamber.setpoint_c() == ROOM_C
        chamber.set_temperature(33.0)
        assert chamber.setpoint_c() == 33.0  # read back from the controller's register
        bench.clock.sleep(AIR_TIME_CONSTANT_S)
        expected = 33.0 - 10.0 * math.exp(-1.0)  # one time constant after a 10 K step
        assert abs(chamber.temperature_c() - expected) < 0.5
        assert chamber.wait_stable(33.0, band_k=0.5, hold_s=300.0, timeout_s=3600.0)
        assert embedded_twin(bench).world.ambient_c == pytest.approx(33.0, abs=0.5)  # the air at the meters
    finally:
        chamber.close()


def test_chamber_refuses_a_set_point_outside_its_range_before_sending(chamber_bench: Bench) -> None:
    bench = chamber_bench
    chamber = _chamber(bench)
    model = embedded_twin(bench).chamber
    assert model is not None
    try:
        with pytest.raises(SafetyLimitError, match="outside"):
            chamber.set_temperature(500.0)
        with pytest.raises(SafetyLimitError):
            chamber.set_temperature(float("nan"))
        assert model.writes == []  # nothing reached the controller
    finally:
        chamber.close()


def test_generic_chamber_stops_and_its_air_goes_back_to_the_room() -> None:
    for bench in _bench_with("generic-plc-chamber"):
        chamber = _chamber(bench)
        try:
            chamber.set_temperature(-20.0)
            bench.clock.sleep(2 * 3600.0)
            assert chamber.temperature_c() == pytest.approx(-20.0, abs=0.5)
            chamber.stop()
            assert not chamber.running()
            bench.clock.sleep(2 * 3600.0)
            assert chamber.temperature_c() == pytest.approx(ROOM_C, abs=0.5)
        finally:
            chamber.close()


@pytest.mark.parametrize("resource", ["ASRL/dev/ttyUSB0::INSTR", "TCPIP::host::99999::SOCKET", "chamber"])
def test_a_chamber_resource_that_is_not_modbus_tcp_is_refused_by_name(resource: str) -> None:
    with pytest.raises(ValidationError, match="chamber resource"):
        parse_resource(resource)


def test_unknown_chamber_driver_is_refused_in_the_bench_file(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="unknown driver 'espec-p300' for role 'chamber'"):
        load_bench(CHAMBER_BENCH, ["instruments.2.driver=espec-p300"])


def test_meter_temperature_reading_and_error_follow_the_chamber() -> None:
    config = load_bench(CHAMBER_BENCH, ["twin.meter.climate.sensor_offset_c=2.0",
                                        "twin.meter.climate.temperature_coefficient_pct_per_k=0.1"])
    with bench_session(config) as bench:
        chamber = _chamber(bench)
        try:
            energise(bench, LoadPoint(voltage_v=bench.meter.un_v, current_a=bench.meter.ib_a), settle_s=10.0)
            link = bench.positions[0].link
            assert link is not None
            at_room = link.read_number(spec.TEMPERATURE)
            chamber.set_temperature(53.0)
            bench.clock.sleep(5 * 3600.0)
            hot = link.read_number(spec.TEMPERATURE)
            assert abs(at_room - (ROOM_C + 2.0)) < 0.5  # the offset knob, each sensor's spread ±0.3 °C
            assert hot - at_room == pytest.approx(30.0, abs=0.5)
            thermal = embedded_twin(bench).thermals[0]
            assert thermal.meter.metering.temperature_error_pct == pytest.approx(0.1 * 30.0, abs=0.1)
        finally:
            chamber.close()


def test_tick_timing_measures_the_rtc_rate_to_hundredths_of_a_second_a_day() -> None:
    with bench_session(load_bench(CHAMBER_BENCH, ["twin.meter.climate.rtc_mains_ppm=4.0"])) as bench:
        energise(bench, LoadPoint(voltage_v=bench.meter.un_v, current_a=0.0), settle_s=10.0)
        link = bench.positions[0].link
        assert link is not None
        first = time_tick(bench, link)
        bench.clock.sleep(3 * 3600.0)
        second = time_tick(bench, link)
        assert first.width_s <= 0.005 and second.width_s <= 0.005
        truth = embedded_twin(bench).meters[0].management
        assert truth is not None
        expected = truth.rtc.drift_ppm * 1e-6 * 86400.0
        assert daily_error_s(first, second) == pytest.approx(expected, abs=0.03)


def test_temperature_spec_sweeps_the_operating_range_in_20_k_ranges() -> None:
    assert spec.sweep_temperatures() == [-25.0, -5.0, 15.0, 35.0, 55.0]
    assert spec.ranges()[0] == (-25.0, -5.0)
    meter = load_bench(CHAMBER_BENCH).meter
    assert spec.coefficient_limit(meter, "1").high == 0.05
    assert spec.coefficient_limit(meter, "0.5L").high == 0.07
    assert spec.coefficient_limit(load_bench(BENCHES_DIR / "twin-ct-0.5S.yaml").meter, "1").high == 0.03
