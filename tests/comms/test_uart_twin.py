"""The twin's management module (sans-IO: frames in, replies out), its broadcast-time rules, its line
timing, the expansion module and its tap, and the serial ports it is served on (RFC 2217 carries the
line settings, a pty only the baud), reached by plain pyserial and by `rig twin serve`."""

from __future__ import annotations

import datetime as dt
import random
import time
from pathlib import Path
from typing import Any

import pytest
import serial
import yaml

from drivers.dlt645 import (
    BROADCAST_ADDRESS,
    BadFrame,
    Dlt645Frame,
    ErrorCode,
    FrameReader,
    Function,
    abnormal_error,
    decode,
    decode_value,
    encode,
    encode_broadcast_time,
    encode_di,
    encode_value,
)
from drivers.dlt645.link import MeterLink
from drivers.errors import FrameError
from rig.config import BENCHES_DIR, UartKnobs, load_bench
from rig.twin.expansion import POLL_PERIOD_S, ExpansionModule
from rig.twin.management import ManagementModule
from rig.twin.meter import MeteringModule
from rig.twin.meter_clock import broadcast_refusal
from rig.twin.meter_uart import MeterUart
from rig.twin.runtime import Twin
from rig.twin.serial_base import OUTBOX_LIMIT_BYTES, Line, Outbox
from rig.twin.serial_port import serve_port
from rig.twin.world import World

ADDRESS = "000000000001"
ENERGY = 0x00010000
METER = load_bench().meter


def make_meter(**knobs: object) -> ManagementModule:
    world = World(seed=1)
    metering = MeteringModule(METER, load_bench().twin.meter.metering, random.Random(1))  # type: ignore[union-attr]
    world.models.append(metering)
    management = ManagementModule(METER, UartKnobs(**knobs), ADDRESS, metering, world, random.Random(2))
    world.models.append(management)
    world.set_point.voltage_v = METER.un_v
    world.output_on = True
    world.advance(METER.start_up_time_s + 1.0)
    return management


def ask(meter: ManagementModule, function: Function, data: bytes = b"", address: str = ADDRESS):
    return meter.respond(Dlt645Frame.request(address, function, data), meter.world.time_s)


def test_reads_come_from_the_meter_model() -> None:
    meter = make_meter()
    meter.metering.forward_kwh = 12.3479
    reply, _ = ask(meter, Function.READ, encode_di(ENERGY))
    assert reply.control == 0x91 and reply.data == encode_di(ENERGY) + encode_value(ENERGY, 12.34)  # truncated
    reply, _ = ask(meter, Function.READ, encode_di(0x02010100))
    assert decode_value(0x02010100, reply.data[4:]) == pytest.approx(METER.un_v, rel=0.002)  # its own small error
    reply, _ = ask(meter, Function.READ, encode_di(0x04000102))
    assert reply.data[4:] == encode_value(0x04000102, meter.rtc.read(meter.world.time_s).time())


def test_meter_without_mains_or_in_start_up_is_silent() -> None:
    meter = make_meter()
    meter.world.output_on = False
    assert not meter.answering(meter.world.time_s)
    meter.world.output_on = True
    meter.world.advance(1.0)
    assert not meter.answering(meter.world.time_s)
    meter.world.advance(METER.start_up_time_s)
    assert meter.answering(meter.world.time_s)


@pytest.mark.parametrize(("data", "error"), [
    (encode_di(0x0F000000), ErrorCode.NO_DATA),
    (encode_di(0x02010300), ErrorCode.NO_DATA),  # phase C of a single-phase meter
    (b"\x01\x02", ErrorCode.OTHER),
])
def test_read_errors(data: bytes, error: ErrorCode) -> None:
    reply, _ = ask(make_meter(), Function.READ, data)
    assert reply.control == 0xD1 and abnormal_error(reply) == error
    assert ask(make_meter(silent_on_error=True), Function.READ, data) is None


def test_write_needs_the_password_and_sets_the_clock() -> None:
    meter = make_meter()
    moment = dt.time(12, 34, 56)
    value = encode_value(0x04000102, moment)
    reply, _ = ask(meter, Function.WRITE, encode_di(0x04000102) + bytes.fromhex("02 00 00 01") + bytes(4) + value)
    assert abnormal_error(reply) == ErrorCode.UNAUTHORISED
    reply, _ = ask(meter, Function.WRITE, encode_di(ENERGY) + bytes.fromhex("02 00 00 00") + bytes(4)
                   + encode_value(ENERGY, 1.0))
    assert abnormal_error(reply) == ErrorCode.UNAUTHORISED  # energy is not writable
    reply, _ = ask(meter, Function.WRITE, encode_di(0x04000102) + bytes.fromhex("02 00 00 00") + bytes(4) + value)
    assert reply.control == 0x94 and reply.data == b""
    assert meter.rtc.read(meter.world.time_s).time() == moment


def test_wildcards_and_address_write() -> None:
    meter = make_meter()
    reply, _ = ask(meter, Function.READ_ADDRESS, address="AAAAAAAAAAAA")
    assert reply.address == ADDRESS and reply.data == bytes.fromhex("01 00 00 00 00 00")
    assert ask(meter, Function.READ, encode_di(ENERGY), address="AAAAAAAAAA01") is not None
    assert ask(meter, Function.READ, encode_di(ENERGY), address="AAAAAAAAAA02") is None
    assert ask(meter, Function.WRITE, encode_di(0x04000102), address="AAAAAAAAAAAA") is None
    assert ask(meter, Function.READ, encode_di(ENERGY), address=BROADCAST_ADDRESS) is None
    reply, _ = ask(meter, Function.WRITE_ADDRESS, bytes.fromhex("99 00 00 00 00 00"))
    assert reply.control == 0x95 and meter.address == "000000000099" == reply.address


def test_baud_change_one_hot_word_after_the_reply() -> None:
    meter = make_meter()
    reply, after = ask(meter, Function.CHANGE_BAUD, b"\x20")
    assert reply.control == 0x97 and reply.data == b"\x20" and meter.line.baud == 2400
    after()
    assert meter.line.baud == 9600
    for word in (0x28, 0x40, 0x01, 0x00):  # two bits; 19200 (not offered); reserved bit; nothing
        reply, _ = ask(meter, Function.CHANGE_BAUD, bytes((word,)))
        assert abnormal_error(reply) == ErrorCode.BAUD_UNCHANGEABLE, hex(word)


NOON = dt.datetime(2026, 3, 12, 12, 0, 0)


@pytest.mark.parametrize(("meter_time", "new_time", "last_sync", "reason"), [
    (NOON, NOON + dt.timedelta(minutes=4, seconds=59), None, None),
    (NOON, NOON - dt.timedelta(minutes=5), None, None),
    (NOON, NOON + dt.timedelta(minutes=5, seconds=1), None, "shift beyond 5 min"),
    (NOON, NOON - dt.timedelta(minutes=6), None, "shift beyond 5 min"),
    (NOON.replace(hour=23, minute=55, second=1), NOON.replace(hour=23, minute=54), None, "near midnight"),
    (NOON.replace(hour=0, minute=4, second=59), NOON.replace(hour=0, minute=6), None, "near midnight"),
    (NOON.replace(hour=0, minute=5, second=1), NOON.replace(hour=0, minute=6), None, None),
    (NOON.replace(hour=23, minute=53), NOON.replace(hour=23, minute=55, second=30), None, "near midnight"),
    (NOON, NOON + dt.timedelta(minutes=1), NOON.date(), "daily quota used"),
    (NOON, NOON + dt.timedelta(minutes=1), NOON.date() - dt.timedelta(days=1), None),
])
def test_broadcast_refusal_rules(meter_time: dt.datetime, new_time: dt.datetime, last_sync: dt.date | None,
                                 reason: str | None) -> None:
    assert broadcast_refusal(meter_time, new_time, last_sync) == reason


def test_broadcast_time_applied_once_a_day_and_never_answered() -> None:
    meter = make_meter()
    meter.rtc.set(NOON, meter.world.time_s)

    def broadcast(shift_s: float, data: bytes | None = None) -> float:
        now = meter.rtc.read(meter.world.time_s)
        payload = encode_broadcast_time(now + dt.timedelta(seconds=shift_s)) if data is None else data
        assert ask(meter, Function.BROADCAST_TIME, payload, address=BROADCAST_ADDRESS) is None
        return (meter.rtc.read(meter.world.time_s) - now).total_seconds()

    assert broadcast(400) == 0 and broadcast(60, data=bytes(5)) == 0
    addressed = encode_broadcast_time(meter.rtc.read(meter.world.time_s) + dt.timedelta(seconds=60))
    assert ask(meter, Function.BROADCAST_TIME, addressed) is None  # to its own address: ignored, unanswered
    assert broadcast(60) == 60
    assert broadcast(60) == 0  # the day's quota
    assert meter.broadcasts_refused == ["shift beyond 5 min", "length not 6", "daily quota used"]
    loose = make_meter(broadcast_time_always_accepted=True)
    loose.rtc.set(NOON, loose.world.time_s)
    assert ask(loose, Function.BROADCAST_TIME, encode_broadcast_time(NOON + dt.timedelta(hours=3)),
               address=BROADCAST_ADDRESS) is None
    assert loose.rtc.read(loose.world.time_s) == NOON + dt.timedelta(hours=3)


def test_defect_knobs_change_the_reply_bytes() -> None:
    def reply_bytes(**knobs: object) -> bytes:
        meter = make_meter(**knobs)
        reply, _ = ask(meter, Function.READ, encode_di(ENERGY))
        return meter.encode_reply(reply)

    healthy = reply_bytes()
    assert healthy.startswith(b"\xfe" * 4) and decode(healthy).data[:4] == encode_di(ENERGY)
    with pytest.raises(FrameError, match="bad checksum"):
        decode(reply_bytes(checksum_error=True))
    refused = decode(reply_bytes(address_high_byte_first=True))  # the standard's order looks foreign to it
    assert (refused.address, refused.control, refused.data) == (ADDRESS, 0xD1, b"\x01")
    assert decode(reply_bytes(no_data_offset=True)).data[:4] == bytes((b - 0x33) & 0xFF for b in encode_di(ENERGY))
    assert decode(reply_bytes(wrong_control_bits=True)).control == 0xB1


def test_line_timing_and_preamble_defect() -> None:
    meter = make_meter()
    uart = MeterUart(meter)
    sent: list[bytes] = []
    request = encode(Dlt645Frame.request(ADDRESS, Function.READ, encode_di(ENERGY)))
    start = meter.world.time_s
    uart.receive(request, Line(2400, 8, "E", 1), sent.append)
    elapsed = meter.world.time_s - start
    wire = len(request) * 11 / 2400
    assert len(sent) == 1 and 0.04 <= elapsed - wire <= 0.12  # healthy delay 40..120 ms
    assert uart.busy_until == pytest.approx(meter.world.time_s + len(sent[0]) * 11 / 2400)
    deaf = MeterUart(make_meter(ignores_preamble=True))
    replies: list[bytes] = []
    deaf.receive(request, Line(), replies.append)
    deaf.management.world.advance(1.0)
    deaf.receive(request[4:], Line(), replies.append)  # the same frame without FE: answered
    assert len(replies) == 1


def test_expansion_module_polls_on_a_timer_and_feeds_the_tap() -> None:
    meter = make_meter()
    expansion = ExpansionModule(meter, random.Random(3))
    heard = bytearray()
    expansion.tap = heard.extend
    expansion.next_poll_s = meter.world.time_s + 1.0
    meter.world.models.append(expansion)
    meter.world.advance(4 * POLL_PERIOD_S)
    frames = FrameReader().feed(bytes(heard))
    assert len(frames) == 4 * 2 * 2 and not any(isinstance(f, BadFrame) for f in frames)
    assert [f.is_reply for f in frames[:4]] == [False, True, False, True]  # type: ignore[union-attr]
    meter.world.output_on = False
    heard.clear()
    meter.world.advance(4 * POLL_PERIOD_S)
    assert not heard, "no mains: the modules do not talk"


def test_outbox_drops_what_a_host_never_takes() -> None:
    taken: list[bytes] = []

    def full(data: bytes) -> int:
        raise BlockingIOError

    box = Outbox(full)
    box.put(b"x" * OUTBOX_LIMIT_BYTES)
    box.put(b"more")
    assert box.dropped == 4 and box.waiting
    box._write = lambda data: taken.append(data) or len(data)  # type: ignore[method-assign]
    box.flush()
    assert not box.waiting and len(taken[0]) == OUTBOX_LIMIT_BYTES


class Echo:
    """A device that answers every chunk with the same bytes, and notes the host's settings."""

    def __init__(self) -> None:
        self.line = Line(2400, 8, "E", 1)
        self.hosts: list[Line] = []

    def receive(self, data: bytes, host: Line, send) -> None:
        self.hosts.append(host)
        send(data)


def test_rfc2217_carries_the_line_settings_and_a_mismatch_garbles() -> None:
    device = Echo()
    port = serve_port("twin", device, line=device.line, name="echo", rng=random.Random(1))
    try:
        assert port.url.startswith("rfc2217://127.0.0.1:")
        with serial.serial_for_url(port.url, baudrate=2400, parity="E", timeout=1) as host:
            host.write(b"hello")
            assert host.read(5) == b"hello"
            host.parity = "N"
            host.write(b"hello")
            assert host.read(5) != b"hello"
        assert device.hosts[0] == Line(2400, 8, "E", 1) and device.hosts[-1] == Line(2400, 8, "N", 1)
    finally:
        port.stop()


def test_pty_carries_the_baud_but_not_the_parity() -> None:
    device = Echo()
    port = serve_port("twin+pty", device, line=device.line, name="echo", rng=random.Random(1))
    try:
        assert port.url.startswith("/dev/")
        with serial.serial_for_url(port.url, baudrate=2400, parity="N", timeout=1) as host:
            host.write(b"hello")
            assert host.read(5) == b"hello", "a pty drops parity: the mismatch cannot show"
            host.baudrate = 9600
            host.write(b"hello")
            assert host.read(5) != b"hello"
    finally:
        port.stop()


def test_twin_resolves_serial_and_tap_urls(tmp_path: Path) -> None:
    bench = load_bench(overrides=["positions.0.expansion_tap.serial=twin+pty"])
    twin = Twin(bench)
    twin.start()
    try:
        resolved = twin.resolve(bench)
        assert resolved.positions[0].serial.startswith("rfc2217://127.0.0.1:")  # type: ignore[union-attr]
        assert resolved.positions[0].expansion_tap.serial.startswith("/dev/")  # type: ignore[union-attr]
    finally:
        twin.stop()


def test_served_twin_talks_dlt645_to_a_link_in_another_process(served_twin: Any) -> None:
    """`rig twin serve`: its bench file names rfc2217:// ports; the link reaches the meter through them,
    with the served twin's clock (bench time over the control channel)."""
    from rig.twin.control import RemoteTwinControl

    served = served_twin.bench
    position = served["positions"][0]
    assert position["serial"].startswith("rfc2217://") and position["expansion_tap"]["serial"].startswith(
        "rfc2217://")
    clock = RemoteTwinControl(served["clock"].removeprefix("twin+"))
    link = MeterLink(position["serial"], position["address"], clock)
    link.open()
    try:
        import pyvisa

        source = pyvisa.ResourceManager("@py").open_resource(served["instruments"][0]["resource"],
                                                             read_termination="\n", write_termination="\n")
        source.write("SOUR:VOLT 220")
        source.write("OUTP ON")
        assert source.query("OUTP?") == "1"  # the write is done before bench time moves on
        clock.sleep(METER.start_up_time_s + 1)
        t0 = time.monotonic()
        assert link.read(ENERGY) == 0.0 and link.last.latency_s is not None  # type: ignore[union-attr]
        assert 0.02 <= link.last.latency_s <= 0.5 and time.monotonic() - t0 < 2  # type: ignore[union-attr]
        source.close()
    finally:
        link.close()
        clock.close()


def test_bench_names_a_twin_port_without_a_twin() -> None:
    from drivers.errors import RigError
    from rig.bench import open_bench

    data = yaml.safe_load((BENCHES_DIR / "twin.yaml").read_text())
    bench = load_bench(BENCHES_DIR / "twin.yaml")
    assert data["positions"][0]["serial"] == "twin" and bench.positions[0].serial == "twin"
    served = Twin(bench)
    served.start()
    try:
        config = served.resolve(bench).model_copy(update={"clock": "wall"})
        instruments = config.model_dump()["instruments"]
        positions = config.model_dump()["positions"]
        positions[0]["serial"] = "twin"
        broken = type(config).model_validate(config.model_dump() | {"positions": positions,
                                                                    "instruments": instruments, "twin": None})
        with pytest.raises(RigError, match=r"positions.0: serial port 'twin' needs the twin"):
            open_bench(broken)
    finally:
        served.stop()
