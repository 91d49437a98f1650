"""Every `twin.faults` knob, injected below the transports, and what the rig's drivers and procedures do
about it: a transient fault is retried (bounded, in bench time) and reported as a retry event; a persistent
one is a BenchFault naming the instrument and what it did, and the other instruments carry on."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest

from drivers.clock import WallClock
from drivers.errors import BenchFault, LinkError
from drivers.reference import ReferenceRestarted
from drivers.retry import RetryEvent
from rig.bench import Bench, open_bench
from rig.config import ConfigError, load_bench
from rig.procedures import LoadPoint, count_pulses, dose_energy, energise, measure_errors
from rig.twin.provider import embedded_twin

NO_PORTS = ["positions.0.serial=null", "positions.0.expansion_tap=null", "positions.0.spi=null"]
FAST = ["instruments.0.timeout_s=0.2", "instruments.1.timeout_s=0.2"]
PERSISTENT = 1e6  # s: longer than any retry budget
VOLTAGE_A = 0x02010100


def schedule(*faults: dict[str, Any]) -> str:
    return f"twin.faults.schedule={json.dumps(list(faults))}"


@pytest.fixture
def opened() -> Iterator[Any]:
    benches: list[Bench] = []

    def open_(*faults: dict[str, Any], serial: bool = False) -> tuple[Bench, list[RetryEvent]]:
        ports = ["positions.0.expansion_tap=null", "positions.0.spi=null"] if serial else NO_PORTS
        bench = open_bench(load_bench(None, [*ports, *FAST, schedule(*faults)]))
        benches.append(bench)
        events: list[RetryEvent] = []
        assert bench.retry is not None
        bench.retry.listeners.append(events.append)
        return bench, events

    yield open_
    for bench in benches:
        bench.close()


def injected(bench: Bench, kind: str) -> int:
    return embedded_twin(bench).faults.count(kind)


@pytest.mark.parametrize("kind", ["scpi_drop", "scpi_delay", "scpi_garble"])
def test_one_scpi_fault_is_retried_and_the_answer_is_the_right_one(opened: Any, kind: str) -> None:
    bench, events = opened({"kind": kind, "target": "reference", "at_s": 1.0})
    bench.clock.sleep(2.0)
    calibration = bench.reference.calibration()  # two queries: the retried one must not take the other's reply
    assert calibration.certificate == "TWIN-CAL-0001" and calibration.due.year == 2099
    assert injected(bench, kind) == 1
    (event,) = events
    assert event.recovered and event.instrument.startswith("reference (TCPIP::127.0.0.1::")
    assert bench.reference.identity().startswith("Meter HIL Twin,ReferenceStandard")


@pytest.mark.parametrize(("kind", "says"), [("scpi_drop", "reset"), ("scpi_delay", "no reply"),
                                            ("scpi_garble", "decode")])
def test_persistent_scpi_fault_is_a_bench_fault_of_that_instrument_only(opened: Any, kind: str, says: str) -> None:
    bench, events = opened({"kind": kind, "target": "reference", "at_s": 1.0, "duration_s": PERSISTENT})
    bench.clock.sleep(2.0)
    with pytest.raises(BenchFault) as info:
        bench.reference.identity()
    assert info.value.instrument.startswith("reference") and info.value.what == "*IDN?"
    assert says in str(info.value) and info.value.attempts == 3
    assert not events[-1].recovered
    bench.source.set_voltage(220.0)  # the source is not affected
    assert bench.source.voltage_v == 220.0


def test_error_queue_filling_is_cleared_and_the_command_sent_again(opened: Any) -> None:
    bench, events = opened({"kind": "scpi_error_queue", "target": "source", "at_s": 1.0, "duration_s": 0.6})
    bench.clock.sleep(1.2)
    bench.source.set_voltage(221.0)
    assert bench.source.voltage_v == 221.0
    assert events and events[0].recovered and "-310" in events[0].problem
    assert bench.source.errors() == [], "nothing stale left in the queue"


def test_device_errors_found_draining_the_queue_take_the_reading_again(opened: Any) -> None:
    # Settled at 2 s, the first gate ends at about 10.2 s: the -310s are queued while the calculator is
    # polled near its end, and found when its error is read.
    bench, events = opened({"kind": "scpi_error_queue", "target": "reference", "at_s": 9.5, "duration_s": 1.0})
    energise(bench, LoadPoint(voltage_v=220, current_a=5))
    errors = measure_errors(bench, bench.positions, power_w=1100, readings=2)[0]
    assert all(math.isfinite(e) and abs(e) < 0.3 for e in errors)
    assert injected(bench, "scpi_error_queue") >= 1
    assert events and all(e.recovered for e in events)
    assert any("-310" in e.problem or "error queue" in e.problem for e in events), events


def test_persistent_error_queue_filling_is_a_bench_fault(opened: Any) -> None:
    bench, _ = opened({"kind": "scpi_error_queue", "target": "source", "at_s": 1.0, "duration_s": PERSISTENT})
    bench.clock.sleep(2.0)
    with pytest.raises(BenchFault, match="-310"):
        bench.source.output_on()


def test_reference_reset_mid_gate_is_measured_again_not_blamed_on_the_meter(opened: Any) -> None:
    healthy, _ = opened()
    energise(healthy, LoadPoint(voltage_v=220, current_a=5))
    expected = measure_errors(healthy, healthy.positions, power_w=1100, readings=2)[0]
    bench, events = opened({"kind": "reference_reset", "target": "reference", "at_s": 6.0})
    energise(bench, LoadPoint(voltage_v=220, current_a=5))  # settles 2 s; the first gate runs past 6 s
    errors = measure_errors(bench, bench.positions, power_w=1100, readings=2)[0]
    assert injected(bench, "reference_reset") == 1
    assert all(math.isfinite(e) and abs(e) < 0.3 for e in errors)
    assert errors[1] == pytest.approx(expected[1], abs=0.05)
    (event,) = events
    assert event.recovered and "restarted" in event.problem


def test_reference_reset_during_a_pulse_count_counts_again(opened: Any) -> None:
    bench, events = opened({"kind": "reference_reset", "target": "reference", "at_s": 5.0})
    energise(bench, LoadPoint(voltage_v=220, current_a=5))  # 1100 W, 1200 imp/kWh: one pulse every 2.73 s
    counts = count_pulses(bench, bench.positions, 30.0)
    assert 10 <= counts[0] <= 12
    assert events and events[0].recovered


def test_reference_reset_during_a_dose_fails_the_dose(opened: Any) -> None:
    bench, _ = opened({"kind": "reference_reset", "target": "reference", "at_s": 10.0})
    with pytest.raises(ReferenceRestarted, match="energy dose"):
        dose_energy(bench, bench.positions, LoadPoint(voltage_v=220, current_a=5), 10.0)


def test_persistent_reference_resets_are_a_bench_fault(opened: Any) -> None:
    bench, _ = opened({"kind": "reference_reset", "target": "reference", "at_s": 0.0, "duration_s": PERSISTENT})
    energise(bench, LoadPoint(voltage_v=220, current_a=5))
    with pytest.raises(BenchFault, match="restarted"):
        measure_errors(bench, bench.positions, power_w=1100, readings=1)


def _powered_link(bench: Bench) -> Any:
    energise(bench, LoadPoint(voltage_v=220, current_a=0.0))
    bench.clock.sleep(6.0)  # the meter answers after its start-up time
    link = bench.positions[0].link
    assert link is not None
    return link


def _wait_injected(bench: Bench, kind: str) -> None:
    # The port's server thread acts on the fault in wall time; let it see the new bench time.
    assert WallClock().wait_until(lambda: injected(bench, kind) > 0, timeout_s=3.0, poll_s=0.01)


def test_serial_port_vanishing_and_coming_back_is_reopened(opened: Any) -> None:
    bench, events = opened({"kind": "serial_vanish", "target": "0", "at_s": 20.0}, serial=True)
    link = _powered_link(bench)
    assert link.read(VOLTAGE_A) == pytest.approx(220, abs=1)
    bench.clock.sleep(20.0)
    _wait_injected(bench, "serial_vanish")
    assert link.read(VOLTAGE_A) == pytest.approx(220, abs=1)
    assert events and events[0].recovered and events[0].instrument == f"meter link {link.url}"


def test_serial_port_that_stays_gone_is_a_bench_fault(opened: Any) -> None:
    bench, _ = opened({"kind": "serial_vanish", "target": "0", "at_s": 20.0, "duration_s": PERSISTENT}, serial=True)
    link = _powered_link(bench)
    bench.clock.sleep(20.0)
    _wait_injected(bench, "serial_vanish")
    with pytest.raises(BenchFault, match="meter link rfc2217://"):
        link.read(VOLTAGE_A)


@pytest.mark.parametrize("kind", ["serial_flip", "serial_drop"])
def test_bytes_hit_on_the_line_once_are_absorbed_by_the_links_retry(opened: Any, kind: str) -> None:
    bench, _ = opened({"kind": kind, "target": "0", "at_s": 10.0}, serial=True)
    link = _powered_link(bench)
    bench.clock.sleep(5.0)
    assert link.read(VOLTAGE_A) == pytest.approx(220, abs=1)
    assert injected(bench, kind) >= 1
    exchange = link.last
    assert exchange is not None and exchange.retried, "the first request was hit, the second went through"


def test_persistent_line_noise_is_a_bench_fault_not_a_meter_defect(opened: Any) -> None:
    bench, _ = opened({"kind": "serial_flip", "target": "0", "at_s": 10.0, "duration_s": PERSISTENT,
                       "rate": 0.15}, serial=True)
    link = _powered_link(bench)
    bench.clock.sleep(5.0)
    # The link's own retry saw different garbage each time: a LinkError, retried under the bench's policy and
    # then a BenchFault (a bench fault for the run), where a meter sending a wrong frame repeats it byte for
    # byte and gets a FrameError (a meter defect).
    with pytest.raises(BenchFault, match="line noise or a loose connection"):
        link.read(VOLTAGE_A)


def test_ble_drop_hook_follows_the_schedule(opened: Any) -> None:
    """The BLE peripheral is not built yet: the schedule's hook says when the link is down."""
    bench, _ = opened({"kind": "ble_drop", "target": "0", "at_s": 5.0, "duration_s": 3.0})
    faults = embedded_twin(bench).faults
    assert not faults.ble_link_dropped("0")
    bench.clock.sleep(6.0)
    assert faults.ble_link_dropped("0") and not faults.ble_link_dropped("1")
    bench.clock.sleep(3.0)
    assert not faults.ble_link_dropped("0")


@pytest.mark.parametrize(("fault", "says"), [
    ({"kind": "scpi_drop", "target": "P1", "at_s": 1}, "must be 'source' or 'reference'"),
    ({"kind": "serial_vanish", "target": "source", "at_s": 1}, "position index"),
    ({"kind": "earthquake", "target": "0", "at_s": 1}, "twin.faults.schedule.0.kind"),
    ({"kind": "serial_flip", "target": "0", "at_s": -1}, "at_s"),
])
def test_bad_fault_entries_name_the_key(fault: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=says.replace(".", r"\.")):
        load_bench(None, [schedule(fault)])


def test_link_errors_are_what_the_policy_retries() -> None:
    assert issubclass(ReferenceRestarted, LinkError)
