"""A second implementation agrees: the PyPI `dlt698` client, pointed at the twin meter's serial port (the same
port its DL/T 645 server answers on), reads what the twin's ground truth says: energies with tariffs,
measured values, clock, address, the minute and daily freeze records, and the power-down event records.

The twin serves the meter on a pty (`serial: twin+pty`): the package's client opens device paths (no RFC 2217).
Its `ServerAddress.bytes` is the SA field as on the wire (lowest byte first)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest

from drivers.dlt645 import Dlt645Frame, FrameReader, Function, encode, encode_di
from rig.config import load_bench
from rig.twin.runtime import Twin

dlt698 = pytest.importorskip("dlt698")
from dlt698 import Client, ClientOptions, ConnectionProfile, Oad, SessionOptions  # noqa: E402
from dlt698._native import AddressType, ServerAddress  # noqa: E402
from dlt698.model import Selector9, Selector10  # noqa: E402
from dlt698.protocol import GetRecord  # noqa: E402

ADDRESS = "000000000001"
BAUD = 2400


def _twin(*overrides: str) -> Twin:
    config = load_bench(overrides=["positions.0.serial=twin+pty", *overrides])
    twin = Twin(config)
    twin.start()
    return twin


def _client(twin: Twin, *, timeout_s: float = 2.0, on_event: Callable[[object], None] | None = None) -> Client:
    url = twin.resolve(twin.bench).positions[0].serial
    options = ClientOptions(protocol=SessionOptions(
        request_timeout=timeout_s,
        server=ServerAddress(bytes=bytes.fromhex(ADDRESS)[::-1], type=AddressType.single)))
    client = Client(options, on_event=on_event)
    client.open_serial(url, BAUD, ConnectionProfile.local_public)
    return client


def _energise(twin: Twin, seconds: float, current_a: float = 10.0) -> None:
    world = twin.world
    with world.lock:
        world.output_on = True
        world.set_point.voltage_v = 220.0
        world.set_point.current_a = current_a
        world.set_point.phase_deg = 0.0
    twin.clock.sleep(seconds)


def _clock_at(twin: Twin, moment: dt.datetime) -> None:
    """Set the meter's clock before anything runs (as a lab sets it with its tool)."""
    management = twin.meters[0].management
    assert management is not None
    management.rtc.set(moment, twin.world.time_s)


@pytest.fixture
def twin() -> Iterator[Twin]:
    served = _twin()
    try:
        _energise(served, 3600.0)
        yield served
    finally:
        served.stop()


def _moment(data: object) -> dt.datetime:
    """A date_time_s as the package gives it: its 7 raw bytes (year high, year low, month, ...)."""
    raw = data.as_date_time_s()  # type: ignore[attr-defined]
    return dt.datetime(raw[0] * 256 + raw[1], *raw[2:7])


def _ints(data: object) -> list[int]:
    return [item.value for item in data.value]  # type: ignore[attr-defined]


def test_energy_with_tariffs_voltage_clock_and_address_match_the_twin(twin: Twin) -> None:
    meter = twin.meters[0]
    client = _client(twin)
    try:
        forward = _ints(client.get(Oad(oi=0x0010, attribute=2)).require_data())
        scaler = client.get(Oad(oi=0x0010, attribute=3)).require_data().value
        voltage = _ints(client.get(Oad(oi=0x2000, attribute=2)).require_data())
        frequency = client.get(Oad(oi=0x200F, attribute=2)).require_data().value
        clock = _moment(client.get(Oad(oi=0x4000, attribute=2)).require_data())
        address = client.get(Oad(oi=0x4001, attribute=2)).require_data().value
        missing = client.get(Oad(oi=0x2F00, attribute=2))
    finally:
        client.close()
    truth_kwh = meter.metering.forward_kwh
    assert truth_kwh > 0.5  # an hour at 2.2 kW
    # Whole hundredths, as the register shows them (the requests after the read let a little more in).
    assert truth_kwh * 100 - 1 <= forward[0] <= truth_kwh * 100
    assert scaler.scaler == -2 and scaler.unit == 33  # kWh
    assert abs(sum(forward[1:]) - forward[0]) <= 4  # the tariffs add up to the total (each truncated)
    assert voltage[0] == pytest.approx(2200, abs=5)  # 0.1 V
    assert frequency == pytest.approx(5000, abs=5)
    management = meter.management
    assert management is not None
    expected = management.rtc.read(twin.world.time_s)
    assert abs(clock - expected) <= dt.timedelta(seconds=2)
    assert address == bytes.fromhex(ADDRESS)
    assert missing.dar == 6  # object does not exist


def test_the_same_port_still_answers_dlt645_between_698_requests(twin: Twin) -> None:
    """Both protocols on one UART: a DL/T 645 read over the same pty after the 698 client is done."""
    import os
    import select
    import termios
    import tty

    client = _client(twin)
    energy = _ints(client.get(Oad(oi=0x0010, attribute=2)).require_data())[0]
    client.close()
    path = twin.resolve(twin.bench).positions[0].serial
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[4] = attrs[5] = termios.B2400
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        request = Dlt645Frame(ADDRESS, Function.READ, encode_di(0x00010000))
        os.write(fd, encode(request, preamble=4))
        reader = FrameReader()
        frames: list[object] = []
        while not frames and select.select([fd], [], [], 3.0)[0]:
            frames = [f for f in reader.feed(os.read(fd, 256)) if isinstance(f, Dlt645Frame)]
    finally:
        os.close(fd)
    assert frames, "no DL/T 645 reply on the port the 698 client used"
    reply = frames[0]
    assert isinstance(reply, Dlt645Frame)
    digits = reply.data[4:8][::-1].hex()  # BCD, the 33H offset already removed by the codec
    assert int(digits) == energy


def test_last_minute_freeze_record_holds_the_energy_at_the_freeze_moment(twin: Twin) -> None:
    meter = twin.meters[0]
    management = meter.management
    assert management is not None and management.dlt698 is not None
    client = _client(twin)
    try:
        last = client.get_record(GetRecord(attribute=Oad(oi=0x5002, attribute=2), rows=Selector9(previous=1)))
        relation = client.get(Oad(oi=0x5002, attribute=3)).require_data().value
        daily = client.get_record(GetRecord(attribute=Oad(oi=0x5004, attribute=2), rows=Selector10(latest=5)))
    finally:
        client.close()
    records = management.dlt698.minute_freeze.records
    assert len(records) == 4  # an hour of 15-min freezes
    rows = last.result
    assert isinstance(rows, list) and len(rows) == 1
    row = rows[0]
    columns = [str(c) for c in last.columns]
    assert len(columns) == len(row) == 8  # sequence, freeze time, the 6 associated attributes
    truth = records[-1].columns
    assert row[0].value == truth[0x20230200].value == 4
    frozen_at = _moment(row[1])
    assert frozen_at == truth[0x20210200].value and frozen_at.minute % 15 == 0 and frozen_at.second == 0
    assert _ints(row[2]) == [item.value for item in truth[0x00100200].items]
    # The register at the freeze moment: the energy since then is what the meter counted after it.
    now = management.rtc.read(twin.world.time_s)
    after_kwh = 2.2 * (now - frozen_at).total_seconds() / 3600.0
    assert _ints(row[2])[0] / 100 == pytest.approx(meter.metering.forward_kwh - after_kwh, abs=0.03)
    assert [(o.oi, o.attribute) for o in (s.value[1].value for s in relation)] == [
        (0x0010, 2), (0x0020, 2), (0x2000, 2), (0x2001, 2), (0x2004, 2), (0x0010, 4)]
    assert daily.result == []  # no midnight yet (the twin starts at 08:00)


def test_minute_freeze_period_knob_and_daily_freeze_at_midnight() -> None:
    twin = _twin("twin.positions.0.dlt698.minute_freeze_period_min=5")
    try:
        _clock_at(twin, dt.datetime(2026, 1, 1, 22, 0, 0))
        _energise(twin, 3 * 3600.0)  # 22:00 -> 01:00 the next day
        server = twin.meters[0].management.dlt698  # type: ignore[union-attr]
        assert server is not None
        client = _client(twin)
        try:
            daily = client.get_record(GetRecord(attribute=Oad(oi=0x5004, attribute=2), rows=Selector9(previous=1)))
            period = client.get(Oad(oi=0x5002, attribute=3)).require_data().value[0].value[0].value
        finally:
            client.close()
    finally:
        twin.stop()
    assert period == 5
    for record in [*server.minute_freeze.records, *server.daily_freeze.records]:
        total, *tariffs = [item.value for item in record.columns[0x00100200].items]
        assert abs(sum(tariffs) - total) <= 4  # each register truncated on its own
    # 22:00 -> 01:00: the flat tariff (T3) until 23:00, then the valley (T4)
    assert server.forward_tariffs[0] == server.forward_tariffs[1] == 0
    assert server.forward_tariffs[2] == pytest.approx(2.2, rel=0.02)
    assert server.forward_tariffs[3] == pytest.approx(4.4, rel=0.02)
    times = [r.columns[0x20210200].value for r in server.minute_freeze.records]
    assert len(times) == 3 * 12 and len(set(times)) == len(times)
    rows = daily.result
    assert isinstance(rows, list) and len(rows) == 1
    assert _moment(rows[0][1]).time() == dt.time()


@pytest.mark.parametrize("defect", ["missing", "duplicated"])
def test_freeze_boundary_knob_loses_or_doubles_the_midnight_record(defect: str) -> None:
    twin = _twin(f"twin.positions.0.dlt698.freeze_boundary={defect}")
    try:
        _clock_at(twin, dt.datetime(2026, 1, 1, 23, 40, 0))
        _energise(twin, 40 * 60.0)
        server = twin.meters[0].management.dlt698  # type: ignore[union-attr]
        assert server is not None
        midnight = [r for r in server.minute_freeze.records if r.columns[0x20210200].value.time() == dt.time()]
    finally:
        twin.stop()
    assert len(midnight) == (0 if defect == "missing" else 2)


def _outage(twin: Twin) -> None:
    twin.world.output_on = False
    twin.clock.sleep(300.0)  # an outage long enough to be logged
    twin.world.output_on = True
    twin.clock.sleep(30.0)  # the meter boots and closes the record


@pytest.mark.parametrize(("knob", "reports"), [("ok", 1), ("never", 0), ("twice", 2)])
def test_power_down_event_record_and_report_notification(knob: str, reports: int) -> None:
    twin = _twin(f"twin.positions.0.dlt698.reports={knob}")
    sent: list[bytes] = []
    try:
        _energise(twin, 60.0)
        server = twin.meters[0].management.dlt698  # type: ignore[union-attr]
        assert server is not None
        server.report_sinks.append(sent.append)
        _outage(twin)
        assert sent == []  # active reporting is off as delivered
        client = _client(twin)
        try:
            assert client.set(Oad(oi=0x4300, attribute=8), dlt698.Data.boolean(True)) == 0
        finally:
            client.close()
        _outage(twin)
        client = _client(twin)
        try:
            count = client.get(Oad(oi=0x3011, attribute=4)).require_data().value
            last = client.get_record(GetRecord(attribute=Oad(oi=0x3011, attribute=2), rows=Selector9(previous=1)))
        finally:
            client.close()
        power = twin.meters[0].management.power  # type: ignore[union-attr]
        assert power is not None
        newest = power.records[0]
    finally:
        twin.stop()
    assert len(sent) == reports
    assert count == len(power.records)
    rows = last.result
    assert isinstance(rows, list) and len(rows) == 1
    assert _moment(rows[0][1]) == newest.start
    assert _moment(rows[0][2]) == newest.end
    for raw in sent:  # the package's frame decoder takes the report: a REPORT-Notification of 3011's record
        from dlt698.protocol import link

        frame = link.decode_frame(raw.lstrip(b"\xfe"))
        payload = bytes(frame.payload)
        assert payload[:2] == bytes((0x88, 0x02)) and payload[4:8] == bytes.fromhex("30110200")
        assert type(dlt698.codec.decode_apdu(payload)).__name__ == "ReportNotification"  # nothing left over


@pytest.mark.parametrize("knob", ["hcs_error", "fcs_error"])
def test_check_knobs_make_every_reply_unreadable(knob: str) -> None:
    twin = _twin(f"twin.meter.dlt698.{knob}=true")
    try:
        _energise(twin, 30.0)
        with pytest.raises(dlt698.Dlt698Error):
            _client(twin, timeout_s=0.5)  # the CONNECT-Response fails its check: the client never associates
    finally:
        twin.stop()


def test_scaler_and_dar_knobs_show_in_what_the_client_reads() -> None:
    twin = _twin("twin.meter.dlt698.energy_scaler=-3", "twin.meter.dlt698.dar_wrong=true")
    try:
        _energise(twin, 3600.0)
        client = _client(twin)
        try:
            forward = _ints(client.get(Oad(oi=0x0010, attribute=2)).require_data())
            scaler = client.get(Oad(oi=0x0010, attribute=3)).require_data().value
            missing = client.get(Oad(oi=0x2F00, attribute=2))
        finally:
            client.close()
        truth_kwh = twin.meters[0].metering.forward_kwh
    finally:
        twin.stop()
    assert scaler.scaler == -2  # attribute 3 still says hundredths...
    # ...the register counts thousandths (the requests after the read let a few more watt-hours in)
    assert truth_kwh * 1000 - 4 <= forward[0] <= truth_kwh * 1000
    assert missing.dar == 255


def test_late_freeze_knob_takes_the_values_after_the_moment() -> None:
    frozen: dict[float, int] = {}
    fine: dict[float, int] = {}
    for late_s in (0.0, 4.5, 60.0):
        twin = _twin(f"twin.meter.dlt698.freeze_late_s={late_s}")
        try:
            _energise(twin, 3600.0, current_a=60.0)
            server = twin.meters[0].management.dlt698  # type: ignore[union-attr]
            assert server is not None
            record = server.minute_freeze.records[-1].columns
            frozen[late_s] = record[0x00100200].items[0].value  # type: ignore[assignment]
            fine[late_s] = record[0x00100400].items[0].value  # type: ignore[assignment]
            assert record[0x20210200].value.minute % 15 == 0  # the record still names the moment
        finally:
            twin.stop()
    # 13.2 kW for one more minute: 0.22 kWh more in the late record
    assert frozen[60.0] - frozen[0.0] == pytest.approx(22, abs=2)
    # A fraction of a second shows in the high-precision energy: 4.5 s at 13.2 kW is 0.0165 kWh (the 0.01 kWh
    # register could not tell 4 s from 5 s), the values taken on the clock's instant, not its whole second.
    assert fine[4.5] - fine[0.0] == pytest.approx(165, abs=3)


def test_high_precision_energy_is_the_same_register_in_ten_thousandths(twin: Twin) -> None:
    """0010 attribute 4 (long64-unsigned, scaler -4 by attribute 5) counts what attribute 2 counts, and the minute
    freeze's 00100400 column agrees with its 00100200 column."""
    client = _client(twin)
    try:
        fine = client.get(Oad(oi=0x0010, attribute=4)).require_data()
        coarse = _ints(client.get(Oad(oi=0x0010, attribute=2)).require_data())
        scaler = client.get(Oad(oi=0x0010, attribute=5)).require_data().value
        last = client.get_record(GetRecord(attribute=Oad(oi=0x5002, attribute=2), rows=Selector9(previous=1)))
    finally:
        client.close()
    assert scaler.scaler == -4
    assert [str(item.type) for item in fine.value] == ["DataType.uint64"] * 5  # long64-unsigned, total and T1..T4
    # Read a moment apart at 2.2 kW: the fine total is the coarse one's hundredths and at most a few Wh more.
    assert 0 <= _ints(fine)[0] - coarse[0] * 100 <= 100 + 20
    row = last.result[0]  # type: ignore[index]
    frozen_coarse, frozen_fine = _ints(row[2]), _ints(row[7])
    assert [f // 100 for f in frozen_fine] == frozen_coarse


def test_follow_report_rides_on_the_next_response() -> None:
    """With follow reporting on (4300-07) a new power-down record comes back on the next GET's FollowReport."""
    twin = _twin()
    events: list[object] = []
    try:
        _energise(twin, 60.0)
        client = _client(twin, on_event=events.append)
        try:
            assert client.set(Oad(oi=0x4300, attribute=7), dlt698.Data.boolean(True)) == 0
            _outage_then_back(twin)
            first = client.get(Oad(oi=0x200F, attribute=2))  # the package takes the response with its follow report
            second = client.get(Oad(oi=0x200F, attribute=2))
            client.dispatch_events()
        finally:
            client.close()
        server = twin.meters[0].management.dlt698  # type: ignore[union-attr]
        assert server is not None
    finally:
        twin.stop()
    assert first.data is not None and second.data is not None
    assert server.follow_pending == []  # delivered once, on the first response after the outage
    # The traffic the client saw: one response carried the 3011 record as its follow report.
    follow = bytes.fromhex("010201 30110200")
    carried = [e for e in events if follow in bytes(getattr(e, "bytes", b""))]
    assert len(carried) == 1, [bytes(getattr(e, "bytes", b"")).hex() for e in events]


def _outage_then_back(twin: Twin) -> None:
    twin.world.output_on = False
    twin.clock.sleep(300.0)
    twin.world.output_on = True
    twin.clock.sleep(30.0)
