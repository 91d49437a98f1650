"""The twin's clock is causal: bench time passes only through the clock (`sleep`, `wait_until`), and never past a
request a twin server has been sent and not yet answered. However slow the server thread is in wall time (a
loaded machine), the link gets its reply at the bench time the meter sends it: no timeout, no retry, and so no
late reply to an earlier try taken for the next one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from drivers.dlt645.link import MeterLink
from rig.config import load_bench
from rig.twin.meter_uart import MeterUart
from rig.twin.runtime import Twin
from rig.twin.serial_port import Line

DATE_DI, TIME_DI, ENERGY = 0x04000101, 0x04000102, 0x00010000
SLOW_WALL_S = 1.5  # what a loaded host may take to schedule the twin's server thread


@pytest.fixture
def twin() -> Iterator[Twin]:
    bench = load_bench(None, ["positions.0.expansion_tap=null", "positions.0.spi=null", "positions.0.ble=null"])
    served = Twin(bench)
    served.start()
    served.world.set_point.voltage_v = bench.meter.un_v
    served.world.output_on = True
    served.clock.sleep(bench.meter.start_up_time_s + 1.0)
    yield served
    served.stop()


def _link(twin: Twin) -> MeterLink:
    position = twin.resolve(twin.bench).positions[0]
    link = MeterLink(position.serial or "", position.address, twin.clock, reply_timeout_s=1.0, retries=1)
    link.open()
    return link


def test_a_slow_server_thread_does_not_let_the_link_time_out(twin: Twin, monkeypatch: pytest.MonkeyPatch) -> None:
    receive = MeterUart.receive
    stall = threading.Event()

    def slow(self: MeterUart, data: bytes, host: Line, send: Callable[[bytes], None]) -> None:
        stall.wait(SLOW_WALL_S)  # wall time only: the twin's clock must wait for it
        receive(self, data, host, send)

    monkeypatch.setattr(MeterUart, "receive", slow)
    link = _link(twin)
    try:
        started = twin.clock.now()
        assert link.read(DATE_DI) is not None
        assert link.read(TIME_DI) is not None
        exchanges = list(link.history)
        assert all(not e.retried for e in exchanges), "no request timed out and was sent again"
        assert all(0.02 <= (e.latency_s or 0.0) <= 0.2 for e in exchanges), [e.latency_s for e in exchanges]
        assert twin.clock.now() - started < 1.0, "bench time moved by what the meter took, not by the wall"
    finally:
        link.close()


def test_waiting_for_nothing_still_lets_bench_time_pass(twin: Twin) -> None:
    """A request nobody answers (a foreign address) times out after the reply timeout of bench time."""
    link = _link(twin)
    try:
        from drivers.dlt645 import Dlt645Frame, Function, encode_di

        before = twin.clock.now()
        exchange = link.exchange(Dlt645Frame.request("999999999998", Function.READ, encode_di(ENERGY)))
        assert exchange.reply is None and len(exchange.attempts) == 2
        assert 2.0 <= twin.clock.now() - before <= 3.5
    finally:
        link.close()


def test_the_clock_waits_for_what_a_server_has_in_hand(twin: Twin) -> None:
    busy = threading.Event()
    busy.set()
    twin.world.add_pending(busy.is_set)
    released: list[Any] = []
    try:
        threading.Timer(0.3, lambda: (released.append(twin.clock.now()), busy.clear(), twin.world.work_done())).start()
        before = twin.clock.now()
        twin.clock.sleep(5.0)
        assert released and released[0] == before, "bench time stood still while the server had work in hand"
        assert twin.clock.now() == pytest.approx(before + 5.0)
    finally:
        twin.world.remove_pending(busy.is_set)
