"""A served twin runs by itself, paced to the wall clock (`rig twin serve`, 1 bench second per wall second by
default): a plain client with no rig code - pyvisa for the source, pyserial for the meter's port - switches
mains on and gets the meter's address over DL/T 645 within the meter's start-up time plus a second, and not
before the meter has started. Nobody drives the twin's clock here: without pacing the meter would never start."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import pyvisa
import serial

ROOT = Path(__file__).resolve().parents[2]
# DL/T 645-2007 read address (13H) to the all-AA wildcard, after four FE wake-up bytes, built by hand:
# 68 A0..A5 68 C L CS 16 with CS the byte sum from the first 68.
READ_ADDRESS = bytes.fromhex("FEFEFEFE 68 AAAAAAAAAAAA 68 13 00 DF 16")
REPLY_BYTES = 4 + 18  # FE wake-up bytes, then the reply frame (a read waits for them up to its timeout)
DEFAULT_START_UP_S = 5.0  # the meter's start-up time when the bench file gives none


def _address_in(reply: bytes) -> str | None:
    """The meter address in a read-address reply (68 A0..A5 68 93 06 D0..D5+33H CS 16), None if not one."""
    start = reply.find(b"\x68")
    frame = reply[start:]
    if start < 0 or len(frame) < 18 or frame[7] != 0x68 or frame[8] != 0x93 or frame[9] != 6 or frame[17] != 0x16:
        return None
    if sum(frame[:16]) & 0xFF != frame[16]:
        return None
    data = bytes((b - 0x33) & 0xFF for b in frame[10:16])
    return data[::-1].hex().upper() if data == frame[1:7] else None


@pytest.fixture
def served(served_twin: Any) -> dict[str, Any]:
    """The served twin's bench file, as data."""
    return served_twin.bench


def _mains_on(served: dict[str, Any]) -> float:
    """Switch the source on at the meter's nominal voltage (pyvisa, plain SCPI); the wall time it went on."""
    source = next(i["resource"] for i in served["instruments"] if i["role"] == "source")
    manager = pyvisa.ResourceManager("@py")
    instrument: Any = manager.open_resource(source, read_termination="\n", write_termination="\n", timeout=5000)
    try:
        instrument.write(f"SOUR:VOLT {served['meter']['un_v']}")
        instrument.write("SOUR:CURR 0")
        instrument.write("OUTP ON")
        assert instrument.query("OUTP?").strip() in ("1", "ON")
        return time.monotonic()
    finally:
        instrument.close()
        manager.close()


def test_a_plain_client_switches_mains_on_and_reads_the_address_within_start_up(served: dict[str, Any]) -> None:
    position = served["positions"][0]
    start_up_s = float(served["meter"].get("start_up_time_s") or DEFAULT_START_UP_S)
    on_at = _mains_on(served)
    answered: str | None = None
    tries = 0
    with serial.serial_for_url(position["serial"], baudrate=2400, bytesize=8, parity="E", stopbits=1,
                               timeout=0.3) as port:
        while answered is None and time.monotonic() < on_at + start_up_s + 1.0:
            port.reset_input_buffer()
            port.write(READ_ADDRESS)
            answered = _address_in(port.read(REPLY_BYTES))
            tries += 1
    elapsed = time.monotonic() - on_at
    assert answered == position["address"], f"no read-address reply within {start_up_s + 1.0:g} s of mains on"
    # Bench time ran by itself, with the wall clock: the meter was silent while it booted (about half the
    # nameplate's start-up time, the limit it must meet), then answered.
    assert tries > 1 and elapsed > 0.4 * start_up_s, f"the meter answered {elapsed:.1f} s after mains on"


async def _ble_read_address(served: dict[str, Any], start_up_s: float) -> tuple[str | None, int, float]:
    """A plain bumble central on the served HCI controller: find the meter by name, connect, subscribe, switch
    mains on, then write the read-address request until a reply is notified (or start-up + 1 s passed)."""
    from bumble.core import UUID, AdvertisingData
    from bumble.device import Device, Peer
    from bumble.hci import Address
    from bumble.transport import open_transport

    ble = served["positions"][0]["ble"]
    async with await open_transport(ble["backend"].removeprefix("bumble:")) as (source, sink):
        device = Device.with_hci("plain-central", Address("F0:F0:F0:F0:F0:F0"), source, sink)
        await device.power_on()
        found: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def heard(advertisement: Any) -> None:
            if advertisement.data.get(AdvertisingData.COMPLETE_LOCAL_NAME) == ble["name"] and not found.done():
                found.set_result(advertisement.address)

        device.on("advertisement", heard)
        await device.start_scanning()
        address = await asyncio.wait_for(found, 10.0)
        await device.stop_scanning()
        connection = await device.connect(address)
        peer = Peer(connection)
        await peer.discover_services()
        await peer.discover_characteristics()
        write = peer.get_characteristics_by_uuid(UUID(ble["write_uuid"]))[0]
        notify = peer.get_characteristics_by_uuid(UUID(ble["notify_uuid"]))[0]
        notified = bytearray()
        await peer.subscribe(notify, notified.extend)
        on_at = _mains_on(served)
        tries = 0
        answered: str | None = None
        while answered is None and time.monotonic() < on_at + start_up_s + 1.0:
            notified.clear()
            await peer.write_value(write, READ_ADDRESS, with_response=True)
            tries += 1
            await asyncio.sleep(0.2)  # the meter's reply delay and the notifications, in wall time
            answered = _address_in(bytes(notified))
        elapsed = time.monotonic() - on_at
        await connection.disconnect()
        return answered, tries, elapsed


def test_a_plain_bumble_central_gets_a_reply_over_ble_within_start_up(served: dict[str, Any]) -> None:
    start_up_s = float(served["meter"].get("start_up_time_s") or DEFAULT_START_UP_S)
    answered, tries, elapsed = asyncio.run(_ble_read_address(served, start_up_s))
    assert answered == served["positions"][0]["address"], f"no reply over BLE within {start_up_s + 1.0:g} s"
    assert tries > 1 and elapsed > 1.0, f"the meter answered at once ({elapsed:.1f} s), without starting up"


def test_a_paced_twin_lets_the_reply_delay_pass_in_wall_time() -> None:
    """Paced, the meter's reply delay and the request's wire time pass on the wall clock too: a link on the wall
    clock measures a realistic latency (20..500 ms), not an instant reply."""
    from drivers.clock import WallClock
    from drivers.dlt645.link import MeterLink
    from rig.config import load_bench
    from rig.twin.runtime import Twin

    bench = load_bench(None, ["positions.0.expansion_tap=null", "positions.0.spi=null", "positions.0.ble=null"])
    twin = Twin(bench)
    twin.start()
    try:
        twin.world.set_point.voltage_v = bench.meter.un_v
        twin.world.output_on = True
        twin.clock.sleep(bench.meter.start_up_time_s + 1.0)
        twin.clock.pace(1.0)
        link = MeterLink(twin.resolve(bench).positions[0].serial or "", bench.positions[0].address, WallClock())
        link.open()
        try:
            latencies = []
            for _ in range(5):
                link.read(0x00010000)
                assert link.last is not None and link.last.latency_s is not None
                latencies.append(link.last.latency_s)
        finally:
            link.close()
    finally:
        twin.clock.stop_pacing()
        twin.stop()
    assert all(0.02 <= latency <= 0.5 for latency in latencies), latencies
