"""The rig's DL/T 645 link over Bluetooth LE against the twin's meter module on a bumble virtual controller,
through bleak's own `BleakClient` / `BleakScanner` objects with the twin's backend classes: frames written in
pieces of the MTU, replies reassembled from notifications, the reply timeout and the scan in bench time,
reconnecting after a drop (bounded), and every way it can go wrong named (device not found, service or
characteristic missing, a reply split wrongly, the link down for good)."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bleak
import pytest

from drivers.ble import BleUartPort
from drivers.dlt645.ble_link import BleMeterLink
from drivers.errors import (
    BenchFault,
    FrameError,
    InstrumentError,
    InstrumentTimeout,
    LinkError,
    NotOpenError,
)
from drivers.retry import RetryPolicy
from rig.bench import bench_session, ble_backend, ble_target
from rig.config import load_bench
from rig.procedures import LoadPoint, energise
from rig.twin.ble_module import MODULE_ATT_MTU
from rig.twin.runtime import Twin

ROOT = Path(__file__).resolve().parents[2]
ADDRESS = "000000000001"
ENERGY = 0x00010000
TIME = 0x04000102
PROGRAMMING_COUNT = 0x03300000


@contextlib.contextmanager
def twin_link(*overrides: str, powered: bool = True, retry: bool = False, **target: Any) -> Iterator[Any]:
    """A started twin (benches/twin.yaml with `overrides`) and an opened BLE link to its position 0."""
    bench = load_bench(overrides=list(overrides))
    twin = Twin(bench)
    twin.start()
    link: BleMeterLink | None = None
    try:
        cfg = twin.resolve(bench).positions[0]
        if powered:
            twin.world.set_point.voltage_v = bench.meter.un_v
            twin.world.output_on = True
            twin.clock.sleep(bench.meter.start_up_time_s + 1.0)
        policy = RetryPolicy(twin.clock, attempts=2, backoff_s=0.5) if retry else None
        link = BleMeterLink(dataclasses.replace(ble_target(cfg), **target), cfg.address, twin.clock,
                            backend=ble_backend(cfg, "positions.0"), retry=policy)
        link.open()
        yield twin, link
    finally:
        if link is not None:
            link.close()
        twin.stop()


def _module(twin: Twin) -> Any:
    assert twin.air is not None
    return twin.air.meters[0]


def test_a_read_goes_through_bleaks_own_client_and_scanner(monkeypatch: pytest.MonkeyPatch) -> None:
    scanners: list[Any] = []
    original = bleak.BleakScanner.start

    async def spy(self: Any) -> None:
        scanners.append(self)
        await original(self)

    monkeypatch.setattr(bleak.BleakScanner, "start", spy)
    with twin_link() as (twin, link):
        value = link.read(ENERGY)
        client = link.ble._conn.client  # type: ignore[union-attr]
        assert isinstance(client, bleak.BleakClient) and client.backend_id == "TwinBleakClient"
        assert scanners and scanners[0].backend_id == "TwinBleakScanner"
        assert value == pytest.approx(_module(twin).management.metering.forward_kwh, abs=0.01)
        assert link.ble.advertisement is not None and link.ble.advertisement.local_name == "MTR-000000000001"
        assert link.ble.mtu == MODULE_ATT_MTU, "the host asks for 517, the module answers 23"
        latency = link.last.latency_s if link.last else None
        assert latency is not None and 0.02 < latency < 0.2, "the meter's reply delay, in bench time"


def test_a_request_longer_than_one_write_goes_in_pieces_of_the_mtu_and_acts_once() -> None:
    with twin_link() as (twin, link):
        link.read(ENERGY)
        module = _module(twin)
        writes, heard = link.ble.stats.writes, module.requests_heard
        count = module.management.programming_count
        link.write(TIME, twin.clock.datetime_now().time().replace(microsecond=0))  # 31 bytes with its preamble
        assert link.ble.stats.writes - writes == 2 and link.ble.stats.largest_write == MODULE_ATT_MTU - 3
        assert module.requests_heard - heard == 1, "the module put the pieces together into one frame"
        assert module.management.programming_count == count + 1


def test_a_reply_longer_than_one_notification_is_reassembled() -> None:
    with twin_link() as (_, link):
        link.read(ENERGY)
        before = link.ble.stats.notifications
        exchange = link.exchange(link.last.request)  # type: ignore[union-attr]
        assert link.ble.stats.notifications - before == 2, "24 reply bytes at 20 a notification"
        assert exchange.reply is not None and exchange.problems(ADDRESS) == []
        assert link.ble.stats.oversized_notifications == 0


def test_a_reply_split_wrongly_is_a_frame_error_naming_the_meter() -> None:
    with twin_link("twin.meter.ble.drops_notifications=true") as (twin, link):
        start = twin.clock.now()
        wall = time.monotonic()
        with pytest.raises(FrameError, match=r"meter 000000000001 on ble://MTR-000000000001: no valid reply to "
                                             r"read \(11H\) DI 00010000 in 2 attempt"):
            link.read(ENERGY)
        assert twin.clock.now() - start >= 2 * link.inter_byte_timeout_s, "the half frame waited in bench time"
        assert time.monotonic() - wall < 5.0


def test_oversized_notifications_are_counted_and_still_read() -> None:
    with twin_link("twin.meter.ble.ignores_mtu=true") as (_, link):
        assert link.read(ENERGY) >= 0.0
        assert link.ble.stats.oversized_notifications >= 1
        assert link.ble.stats.largest_notification > MODULE_ATT_MTU - 3


def test_the_reply_timeout_runs_in_bench_time() -> None:
    with twin_link(powered=False) as (twin, link):
        start, wall = twin.clock.now(), time.monotonic()
        with pytest.raises(InstrumentTimeout, match=r"no reply to read .* within 1 s in 2 attempt"):
            link.read(ENERGY)
        assert twin.clock.now() - start >= 2 * link.reply_timeout_s
        assert time.monotonic() - wall < 5.0


def test_a_device_not_advertising_is_named_after_the_scan_timeout_in_bench_time() -> None:
    with twin_link(name="MTR-NOT-HERE", scan_timeout_s=4.0) as (twin, link):
        start, wall = twin.clock.now(), time.monotonic()
        with pytest.raises(InstrumentTimeout) as caught:
            link.read(ENERGY)
        message = str(caught.value)
        assert "no BLE device MTR-NOT-HERE advertised within 4 s of bench time" in message
        assert "MTR-000000000001" in message, "it says what it did hear"
        assert twin.clock.now() - start >= 4.0 and time.monotonic() - wall < 5.0


def test_a_missing_service_is_the_meters_fault_not_a_bench_fault() -> None:
    with twin_link("twin.meter.ble.wrong_service_uuid=true", retry=True) as (_, link):
        with pytest.raises(InstrumentError) as caught:
            link.read(ENERGY)
        assert not isinstance(caught.value, LinkError | BenchFault), "not retried away as a bench fault"
        assert "no GATT service 0000fff0-0000-1000-8000-00805f9b34fb" in str(caught.value)
        assert "0000ffe0-0000-1000-8000-00805f9b34fb" in str(caught.value), "it names what the meter offers"


def test_a_missing_characteristic_is_named() -> None:
    with twin_link(write_uuid="0000fff9-0000-1000-8000-00805f9b34fb") as (_, link), pytest.raises(
            InstrumentError, match=r"has no characteristic 0000fff9-.* ble\.write_uuid"):
        link.read(ENERGY)


def test_the_link_reconnects_after_a_drop() -> None:
    with twin_link() as (_, link):
        first = link.read(ENERGY)
        link.ble.drop()
        assert not link.ble.is_connected
        assert link.read(ENERGY) == first
        stats = link.ble.stats
        assert stats.connections == 2 and stats.drops == 1
        assert [text for _, text in link.ble.events][-2:] == ["link dropped by the rig",
                                                              "connected to C0:00:00:00:00:01, ATT MTU 23"]


def test_a_link_down_for_a_while_is_reconnected_with_a_backoff_in_bench_time() -> None:
    # Down from 5.5 s for 1.2 s of bench time (the link first connects at 6 s): the first tries fail, the
    # backoff (0.5 s, then 1 s) outlasts it.
    with twin_link("twin.faults.schedule=[{kind: ble_drop, target: '0', at_s: 5.5, duration_s: 1.2}]") as (
            twin, link):
        assert link.read(ENERGY) >= 0.0
        assert link.ble.stats.failed_connects + link.ble.stats.drops >= 1
        assert twin.faults.count("ble_drop") >= 1
        assert twin.clock.now() >= 6.7


def test_a_link_down_for_good_is_a_link_error_then_a_bench_fault() -> None:
    with twin_link("twin.faults.schedule=[{kind: ble_drop, target: '0', at_s: 5.5, duration_s: 600}]") as (
            _, link), pytest.raises(LinkError, match="BLE link down; 3 attempt"):
        link.read(ENERGY)
    with twin_link("twin.faults.schedule=[{kind: ble_drop, target: '0', at_s: 5.5, duration_s: 600}]",
                   retry=True) as (_, link), pytest.raises(BenchFault, match="meter link ble://MTR-000000000001"):
        link.read(ENERGY)


def test_pairing_when_the_meter_requires_it() -> None:
    with twin_link("positions.0.ble.pairing=true") as (_, link):
        assert link.read(ENERGY) >= 0.0, "the link pairs before it subscribes"
        assert link.ble.write_without_pairing(link.request_bytes(ENERGY)) == "INSUFFICIENT_ENCRYPTION"
        assert link.read(ENERGY) >= 0.0, "and reconnects, paired, afterwards"
    # A meter that does not enforce it takes the unpaired write: what the pairing plan fails on.
    with twin_link(pairing=True) as (_, link):
        assert link.ble.write_without_pairing(link.request_bytes(ENERGY)) is None


def test_a_module_that_replays_on_reconnect_makes_the_meter_act_twice() -> None:
    with twin_link("twin.meter.ble.duplicate_on_reconnect=true") as (twin, link):
        management = _module(twin).management
        link.write(TIME, twin.clock.datetime_now().time().replace(microsecond=0))
        count = management.programming_count
        link.ble.drop()
        link.ble.connect()
        assert management.programming_count == count + 1, "the old write acted again on the new connection"
        assert link.ble.in_waiting > 0, "and its reply came unasked"


def test_use_before_open_and_closing_twice() -> None:
    with twin_link() as (twin, link):
        port = BleUartPort(link.target, twin.clock)
        with pytest.raises(NotOpenError, match="call open"):
            port.write(b"\x68")
        port.open()
        port.close()
        port.close()
    closed = BleMeterLink(link.target, ADDRESS, twin.clock)
    with pytest.raises(NotOpenError):
        closed.ble  # noqa: B018


def test_nothing_opens_or_loads_a_bluetooth_stack_at_import() -> None:
    code = ("import sys, drivers.ble, drivers.dlt645.ble_link, rig.bench, rig.twin.runtime, rig.twin.ble;"
            "print(sorted(m for m in ('bleak', 'bumble') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]


def test_a_served_twin_is_reached_from_another_process_over_hci_on_tcp(served_twin: Any) -> None:
    data = served_twin.bench
    backend = data["positions"][0]["ble"]["backend"]
    assert backend.startswith("bumble:tcp-client:127.0.0.1:")
    config = load_bench(served_twin.out)
    with bench_session(config) as bench:  # what `rig run --bench served.yaml` opens in its own process
        meter = bench.meter
        energise(bench, LoadPoint(voltage_v=meter.un_v, current_a=0.0), settle_s=meter.start_up_time_s + 1.0)
        link = bench.positions[0].ble
        assert link is not None and link.backend.name == backend
        assert link.read(ENERGY) >= 0.0
        assert link.ble.mtu == MODULE_ATT_MTU and link.ble.advertisement is not None
        assert link.ble.advertisement.local_name == "MTR-000000000001"
