"""The twin meter's DL/T 698.45 server: the management MCU's second protocol on the same UART, backed by the
same meter state as its DL/T 645 server (energy registers, RTC, measured values, power-down records).

Meter side of the twin: uses only the twin's own codec (rig.twin.dlt698.codec), never the rig's host side.
Serves CONNECT/RELEASE, GET (normal, list, record), SET of the clock and reporting switches, the minute and
daily freezes (5002, 5004), the power-down event (3011) and its REPORT-Notification.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from drivers.errors import FrameError
from rig.config.dlt698 import Dlt698Knobs
from rig.twin.dlt698.codec import (
    ADDRESS_SINGLE,
    CONTROL_FRAGMENT,
    CONTROL_REPORT,
    CONTROL_RESPONSE,
    FUNCTION_USER_DATA,
    Csd,
    Data,
    Dlt698Frame,
    Rsd,
    Tag,
    address_to_wire,
    array,
    decode_data,
    decode_rcsd,
    decode_rsd,
    encode_frame,
    encode_rcsd,
    structure,
    wire_matches,
)
from rig.twin.dlt698.firmware import Firmware
from rig.twin.dlt698.security import (
    CONNECT_ALLOWED,
    SECURITY_REQUEST,
    Dlt698Security,
    parse_security_request,
    refusal,
)
from rig.twin.world import Terminals

if TYPE_CHECKING:
    from rig.twin.management import ManagementModule

# ---------------------------------------------------------------- the standard's numbers (data)

# APDU tags
CONNECT_REQUEST: Final = 2
RELEASE_REQUEST: Final = 3
GET_REQUEST: Final = 5
SET_REQUEST: Final = 6
ACTION_REQUEST: Final = 7
REPORT_RESPONSE: Final = 8
CONNECT_RESPONSE: Final = 130
RELEASE_RESPONSE: Final = 131
GET_RESPONSE: Final = 133
SET_RESPONSE: Final = 134
ACTION_RESPONSE: Final = 135
REPORT_NOTIFICATION: Final = 136

# DAR (data access result) codes the meter answers with
DAR_OK: Final = 0
DAR_DENIED: Final = 3  # read/write denied
DAR_NO_OBJECT: Final = 6  # object does not exist
DAR_TYPE_MISMATCH: Final = 7
DAR_OUT_OF_RANGE: Final = 8
DAR_OTHER: Final = 255

# Units (Scaler_Unit enum)
UNIT_KWH: Final = 33
UNIT_W: Final = 27
UNIT_A: Final = 36
UNIT_V: Final = 38
UNIT_HZ: Final = 47
UNIT_CELSIUS: Final = 9
UNIT_MIN: Final = 6
UNIT_NONE: Final = 255

# Object identifiers
OI_FORWARD_ENERGY: Final = 0x0010
OI_REVERSE_ENERGY: Final = 0x0020
OI_VOLTAGE: Final = 0x2000
OI_CURRENT: Final = 0x2001
OI_ACTIVE_POWER: Final = 0x2004
OI_POWER_FACTOR: Final = 0x200A
OI_FREQUENCY: Final = 0x200F
OI_TEMPERATURE: Final = 0x2010
OI_BATTERY_VOLTAGE: Final = 0x2011
OI_BATTERY_TIME: Final = 0x2013
OI_STATUS_WORDS: Final = 0x2014
OI_DATE_TIME: Final = 0x4000
OI_ADDRESS: Final = 0x4001
OI_DEVICE: Final = 0x4300  # electrical device: attribute 7 follow report, 8 active report allowed
OI_POWER_DOWN: Final = 0x3011
OI_MINUTE_FREEZE: Final = 0x5002
OI_DAILY_FREEZE: Final = 0x5004
OI_FILE_TRANSFER: Final = 0xF001

# Record columns
OAD_FREEZE_SEQUENCE: Final = 0x20230200
OAD_FREEZE_TIME: Final = 0x20210200
OAD_EVENT_SEQUENCE: Final = 0x20220200
OAD_EVENT_START: Final = 0x201E0200
OAD_EVENT_END: Final = 0x20200200
OAD_EVENT_SOURCE: Final = 0x20240200

TARIFFS: Final = 4
# Which tariff the meter's clock hour falls in (T1 sharp, T2 peak, T3 flat, T4 valley): a plain day schedule.
TARIFF_BY_HOUR: Final = (4, 4, 4, 4, 4, 4, 4, 4, 3, 3, 2, 2, 1, 1, 3, 3, 3, 2, 2, 1, 1, 3, 3, 4)
MINUTE_FREEZE_DEPTH: Final = 96 * 7  # a week of 15-min records
DAILY_FREEZE_DEPTH: Final = 62
EVENT_DEPTH: Final = 10
# What the meter tells a CONNECT (factory version fields are fixed-size visible strings).
FACTORY: Final = (("TWIN", 4), ("0001", 4), ("260101", 6), ("0001", 4), ("260101", 6), ("HILTWIN0", 8))
PROTOCOL_VERSION: Final = 0x0010
MAX_APDU: Final = 0x0400


@dataclass
class FreezeRecord:
    """One frozen record: its columns (OAD -> value) in the object's order."""

    columns: dict[int, Data]


@dataclass
class Freeze:
    """A freeze object (class 9): its period, associated OADs, depth and the records taken."""

    oi: int
    period: int  # minutes for the minute freeze, days for the daily one
    associated: tuple[int, ...]
    depth: int
    records: deque[FreezeRecord]
    next_due: dt.datetime | None = None
    sequence: int = 0

    def relation_table(self) -> Data:
        """Attribute 3: array of {period, OAD, depth}."""
        return array([structure([Data(Tag.LONG_UNSIGNED, self.period), Data(Tag.OAD, oad),
                                 Data(Tag.LONG_UNSIGNED, self.depth)]) for oad in self.associated])


def _floor(value: float, scaler: int) -> int:
    """A meter register's raw value: whole units of 10^scaler, truncated as a display counts them."""
    return math.floor(value * 10.0 ** -scaler + 1e-9)


class Dlt698Server:
    """The DL/T 698.45 server of one twin meter's management module."""

    def __init__(self, management: ManagementModule, knobs: Dlt698Knobs, signing_public_hex: str) -> None:
        self.management = management
        self.knobs = knobs
        # Its image banks and file transfer; images must carry the vendor's signature (`signing_public_hex`).
        self.firmware = Firmware(knobs, signing_public_hex)
        metering = management.metering
        # Tariff registers start with what the meter had when built (all of it in T1).
        self.forward_tariffs = [metering.forward_kwh, 0.0, 0.0, 0.0]
        self.reverse_tariffs = [metering.reverse_kwh, 0.0, 0.0, 0.0]
        self._seen = (metering.forward_kwh, metering.reverse_kwh)
        self._step_tariff = 0
        self.minute_freeze = Freeze(OI_MINUTE_FREEZE, knobs.minute_freeze_period_min,
                                    (0x00100200, 0x00200200, 0x20000200, 0x20010200, 0x20040200),
                                    MINUTE_FREEZE_DEPTH, deque(maxlen=MINUTE_FREEZE_DEPTH))
        self.daily_freeze = Freeze(OI_DAILY_FREEZE, 1, (0x00100200, 0x00200200), DAILY_FREEZE_DEPTH,
                                   deque(maxlen=DAILY_FREEZE_DEPTH))
        self.follow_report = False
        # Off as delivered: on a shared RS-485 bus the master polls; a master station switches it on (4300-08).
        self.active_report = False
        self.event_report_flag = 1  # 3011 attribute 8: report when the event occurs
        self.reported_count = self._power_down_count()
        self.report_sinks: list[Callable[[bytes], None]] = []  # the ports a REPORT-Notification goes out on
        self.follow_pending: list[bytes] = []  # event records (A-ResultRecord) to follow the next responses
        self.reports_sent = 0
        self.reports_acknowledged = 0
        self._piid = 0
        # Its security firmware, when the meter has an ESAM (the same chip its DL/T 645 security uses).
        self.security = (Dlt698Security(management.security.esam, lambda: management.address)
                         if management.security is not None else None)

    # ---- the meter's values (the same state the DL/T 645 side reads)

    def _item(self, di: int, now_s: float) -> float:
        value = self.management.items[di](now_s)
        assert isinstance(value, (int, float))
        return float(value)

    def _phases(self) -> int:
        return 1 if self.management.meter_type.wiring == "1P2W" else 3

    def _energy(self, tariffs: list[float], total: float) -> Data:
        scaler = self.knobs.energy_scaler
        return array([Data(Tag.DOUBLE_LONG_UNSIGNED, _floor(v, scaler)) for v in (total, *tariffs)])

    def value(self, oad: int, now_s: float) -> Data | int:
        """Attribute `oad` (element 0: all of it) now, or the DAR that refuses it."""
        oi, attribute, element = oad >> 16, (oad >> 8) & 0xFF, oad & 0xFF
        getter = self._attributes(now_s).get((oi, attribute))
        if getter is None:
            return DAR_NO_OBJECT
        data = getter()
        if element == 0:
            return data
        if data.tag not in (Tag.ARRAY, Tag.STRUCTURE) or element > len(data.items):
            return DAR_NO_OBJECT
        return data.items[element - 1]

    def _attributes(self, now_s: float) -> dict[tuple[int, int], Callable[[], Data]]:
        m = self.management
        metering = m.metering
        phases = self._phases()

        def scaler_unit(scaler: int, unit: int) -> Callable[[], Data]:
            return lambda: Data(Tag.SCALER_UNIT, (scaler, unit))

        def measured(di: int, tag: int, scaler: int) -> Data:
            return Data(tag, round(self._item(di, now_s) * 10 ** -scaler))

        power_kw = self._item(0x02030000, now_s)
        voltage = self._item(0x02010100, now_s)
        current = self._item(0x02020100, now_s)
        apparent = voltage * abs(current) * phases
        pf = abs(power_kw * 1000.0) / apparent if apparent > 0 else 1.0
        table: dict[tuple[int, int], Callable[[], Data]] = {
            (OI_FORWARD_ENERGY, 2): lambda: self._energy(self.forward_tariffs, metering.forward_kwh),
            (OI_FORWARD_ENERGY, 3): scaler_unit(-2, UNIT_KWH),
            (OI_REVERSE_ENERGY, 2): lambda: self._energy(self.reverse_tariffs, metering.reverse_kwh),
            (OI_REVERSE_ENERGY, 3): scaler_unit(-2, UNIT_KWH),
            (OI_VOLTAGE, 2): lambda: array([measured(0x02010000 + n * 0x100, Tag.LONG_UNSIGNED, -1)
                                            for n in range(1, phases + 1)]),
            (OI_VOLTAGE, 3): scaler_unit(-1, UNIT_V),
            (OI_CURRENT, 2): lambda: array([measured(0x02020000 + n * 0x100, Tag.DOUBLE_LONG, -3)
                                            for n in range(1, phases + 1)]),
            (OI_CURRENT, 3): scaler_unit(-3, UNIT_A),
            (OI_ACTIVE_POWER, 2): lambda: array(
                [Data(Tag.DOUBLE_LONG, round(power_kw * 10000))]
                + [Data(Tag.DOUBLE_LONG, round(self._item(0x02030000 + n * 0x100, now_s) * 10000))
                   for n in range(1, phases + 1)]),
            (OI_ACTIVE_POWER, 3): scaler_unit(-1, UNIT_W),
            (OI_POWER_FACTOR, 2): lambda: array([Data(Tag.LONG, round(pf * 1000))] * (phases + 1)),
            (OI_POWER_FACTOR, 3): scaler_unit(-3, UNIT_NONE),
            (OI_FREQUENCY, 2): lambda: measured(0x02800002, Tag.LONG_UNSIGNED, -2),
            (OI_FREQUENCY, 3): scaler_unit(-2, UNIT_HZ),
            (OI_TEMPERATURE, 2): lambda: measured(0x02800007, Tag.LONG, -1),
            (OI_TEMPERATURE, 3): scaler_unit(-1, UNIT_CELSIUS),
            (OI_BATTERY_VOLTAGE, 2): lambda: measured(0x02800008, Tag.LONG_UNSIGNED, -2),
            (OI_BATTERY_VOLTAGE, 3): scaler_unit(-2, UNIT_V),
            (OI_BATTERY_TIME, 2): lambda: measured(0x0280000A, Tag.DOUBLE_LONG_UNSIGNED, 0),
            (OI_BATTERY_TIME, 3): scaler_unit(0, UNIT_MIN),
            (OI_STATUS_WORDS, 2): lambda: array(
                [Data(Tag.BIT_STRING, int(self._item(0x04000501 + n, now_s)).to_bytes(2, "big"))
                 for n in range(7)]),
            (OI_DATE_TIME, 2): lambda: Data(Tag.DATE_TIME_S, m.rtc.read(now_s)),
            (OI_ADDRESS, 2): lambda: Data(Tag.OCTET_STRING, bytes.fromhex(m.address)),
            (OI_DEVICE, 7): lambda: Data(Tag.BOOL, self.follow_report),
            (OI_DEVICE, 8): lambda: Data(Tag.BOOL, self.active_report),
            (OI_POWER_DOWN, 4): lambda: Data(Tag.LONG_UNSIGNED, len(self._power_down_records())),
            (OI_POWER_DOWN, 5): lambda: Data(Tag.LONG_UNSIGNED, EVENT_DEPTH),
            (OI_POWER_DOWN, 7): lambda: array([structure([Data(Tag.NULL), structure([
                Data(Tag.DOUBLE_LONG_UNSIGNED, self._power_down_count()), Data(Tag.DOUBLE_LONG_UNSIGNED, 0)])])]),
            (OI_POWER_DOWN, 8): lambda: Data(Tag.ENUM, self.event_report_flag),
            (OI_POWER_DOWN, 9): lambda: Data(Tag.BOOL, True),
            (OI_POWER_DOWN, 3): lambda: array([Data(Tag.OAD, oad) for oad in EVENT_COLUMNS[2:]]),
            (OI_DEVICE, 3): lambda: structure([Data(Tag.VISIBLE_STRING, text) for text, _ in self._factory()]),
            (OI_FILE_TRANSFER, 4): lambda: Data(Tag.BIT_STRING, self.firmware.block_status()),
        }
        for freeze in (self.minute_freeze, self.daily_freeze):
            table[(freeze.oi, 3)] = freeze.relation_table
        return table

    # ---- events

    def _power_down_count(self) -> int:
        power = self.management.power
        return power.count if power is not None else 0

    def _power_down_records(self) -> list[FreezeRecord]:
        """The power-down event records, oldest first, as record rows."""
        power = self.management.power
        if power is None:
            return []
        out = []
        newest = power.count
        for age, record in enumerate(power.records):  # newest first
            out.append(FreezeRecord({
                OAD_EVENT_SEQUENCE: Data(Tag.DOUBLE_LONG_UNSIGNED, newest - age),
                OAD_EVENT_START: Data(Tag.DATE_TIME_S, record.start),
                OAD_EVENT_END: Data(Tag.DATE_TIME_S, record.end),
                OAD_EVENT_SOURCE: Data(Tag.NULL),
            }))
        return out[::-1]

    def _check_events(self) -> None:
        """A power-down record closed since the last look: report it when reporting is on."""
        count = self._power_down_count()
        if count <= self.reported_count:
            self.reported_count = count
            return
        self.reported_count = count
        records = self._power_down_records()
        if not self.event_report_flag or self.knobs.reports == "never" or not records:
            return
        columns = [Csd(oad) for oad in EVENT_COLUMNS]
        result = ((OI_POWER_DOWN << 16 | 0x0200).to_bytes(4, "big") + encode_rcsd(columns) + b"\x01\x01"
                  + _row(records[-1], columns))
        if self.follow_report:
            self.follow_pending.extend([result] * (2 if self.knobs.reports == "twice" else 1))
        if not self.active_report:
            return
        self._piid = (self._piid + 1) & 0x3F
        apdu = bytes((REPORT_NOTIFICATION, 2, self._piid, 1)) + result + b"\x00\x00"
        raw = self.encode(Dlt698Frame(CONTROL_REPORT, address_to_wire(self.management.address), 0, apdu))
        for _ in range(2 if self.knobs.reports == "twice" else 1):
            for sink in self.report_sinks:
                sink(raw)
            self.reports_sent += 1

    # ---- stepping: tariffs and freezes on the meter's clock

    def step(self, t0: float, dt_s: float, terminals: Terminals) -> None:
        """Book the energy of the step to the tariff in force, take the freezes due, report new events."""
        m = self.management
        metering = m.metering
        before_f, before_r = self._seen
        after_f, after_r = metering.forward_kwh, metering.reverse_kwh
        self._seen = (after_f, after_r)
        tariff = self._step_tariff = TARIFF_BY_HOUR[m.rtc.read(t0).hour] - 1
        self.forward_tariffs[tariff] += max(0.0, after_f - before_f)
        self.reverse_tariffs[tariff] += max(0.0, after_r - before_r)
        end = t0 + dt_s
        now = m.rtc.read(end)
        for freeze in (self.minute_freeze, self.daily_freeze):
            self._freeze(freeze, now, t0, end, (before_f, after_f), (before_r, after_r))
        self._check_events()
        power = m.power
        self.firmware.step(end, power.mains(terminals) if power is not None else terminals.voltage_v > 0)

    def _boundary_after(self, freeze: Freeze, moment: dt.datetime) -> dt.datetime:
        if freeze.oi == OI_DAILY_FREEZE:
            return dt.datetime.combine(moment.date() + dt.timedelta(days=1), dt.time())
        minutes = moment.hour * 60 + moment.minute
        due = (minutes // freeze.period + 1) * freeze.period
        return dt.datetime.combine(moment.date(), dt.time()) + dt.timedelta(minutes=due)

    def _freeze(self, freeze: Freeze, now: dt.datetime, t0: float, end: float,
                forward: tuple[float, float], reverse: tuple[float, float]) -> None:
        late = dt.timedelta(seconds=self.knobs.freeze_late_s)
        if freeze.next_due is None or freeze.next_due - now > dt.timedelta(days=2):
            freeze.next_due = self._boundary_after(freeze, now)  # first look, or the clock was set back
            return
        clock_start = self.management.rtc.read(t0)
        span = max((now - clock_start).total_seconds(), 1e-9)
        while freeze.next_due + late <= now:
            moment = freeze.next_due
            # The step's terminals were constant: the registers at the freeze moment lie on a straight line.
            fraction = min(1.0, max(0.0, ((moment + late) - clock_start).total_seconds() / span))
            if end - t0 <= 0:
                fraction = 1.0
            copies = 1
            if freeze.oi == OI_MINUTE_FREEZE and moment.time() == dt.time():
                copies = {"ok": 1, "missing": 0, "duplicated": 2}[self.knobs.freeze_boundary]
            for _ in range(copies):
                freeze.sequence += 1
                freeze.records.append(self._record(freeze, moment, fraction, forward, reverse))
            freeze.next_due = self._boundary_after(freeze, moment)

    def _record(self, freeze: Freeze, moment: dt.datetime, fraction: float,
                forward: tuple[float, float], reverse: tuple[float, float]) -> FreezeRecord:
        f = forward[0] + (forward[1] - forward[0]) * fraction
        r = reverse[0] + (reverse[1] - reverse[0]) * fraction
        tariff_f = list(self.forward_tariffs)
        tariff_r = list(self.reverse_tariffs)
        current = self._step_tariff  # the step's energy after the moment went to this tariff: take it back
        tariff_f[current] -= forward[1] - f
        tariff_r[current] -= reverse[1] - r
        now_s = self.management.world.time_s
        columns: dict[int, Data] = {
            OAD_FREEZE_SEQUENCE: Data(Tag.DOUBLE_LONG_UNSIGNED, freeze.sequence),
            OAD_FREEZE_TIME: Data(Tag.DATE_TIME_S, moment),
        }
        for oad in freeze.associated:
            if oad == 0x00100200:
                columns[oad] = self._energy(tariff_f, f)
            elif oad == 0x00200200:
                columns[oad] = self._energy(tariff_r, r)
            else:
                value = self.value(oad, now_s)
                columns[oad] = value if isinstance(value, Data) else Data(Tag.NULL)
        return FreezeRecord(columns)

    # ---- the server

    def respond(self, frame: Dlt698Frame, now_s: float) -> Dlt698Frame | None:
        """The reply to `frame` (None: the meter says nothing)."""
        if not frame.from_client or frame.control & 0x07 != FUNCTION_USER_DATA or frame.control & CONTROL_FRAGMENT:
            return None
        if self.firmware.bricked:
            return None  # no valid image: the MCU does not run
        own = address_to_wire(self.management.address)
        if not wire_matches(frame.server_address, frame.address_type, own) or not frame.apdu:
            return None
        try:
            apdu = self._serve(frame.apdu, now_s)
        except (FrameError, IndexError, ValueError):
            return None  # a request this firmware cannot parse (cut short, a wrong type) gets silence
        if apdu is None:
            return None
        if self.follow_pending and apdu[0] in (GET_RESPONSE, SET_RESPONSE, ACTION_RESPONSE):
            # The oldest event not yet followed rides on this response (FollowReport present, [2]: records).
            apdu = apdu[:-2] + b"\x01\x02\x01" + self.follow_pending.pop(0) + b"\x00"
        return Dlt698Frame(CONTROL_RESPONSE, own, frame.client_address, apdu, ADDRESS_SINGLE)

    def _serve(self, apdu: bytes, now_s: float) -> bytes | None:
        tag = apdu[0]
        if tag == CONNECT_REQUEST:
            return self._connect(apdu)
        if tag == RELEASE_REQUEST:
            return bytes((RELEASE_RESPONSE, apdu[1], 0)) + b"\x00\x00"
        if tag == GET_REQUEST:
            return self._get(apdu, now_s)
        if tag == SET_REQUEST:
            return self._set(apdu, now_s)
        if tag == ACTION_REQUEST:
            return self._action(apdu, now_s)
        if tag == REPORT_RESPONSE:
            self.reports_acknowledged += 1
            return None
        if tag == SECURITY_REQUEST:
            return self._secured(apdu, now_s)
        return None

    def _secured(self, apdu: bytes, now_s: float) -> bytes | None:
        """A SECURITY-Request: the ESAM checks (and deciphers) it; only then is the APDU inside served."""
        if self.security is None:
            return refusal(DAR_OTHER)
        request = parse_security_request(apdu)
        inner = self.security.open(request)
        if isinstance(inner, int):
            return refusal(self._dar(inner))
        if inner[:1] == bytes((SECURITY_REQUEST,)):
            return refusal(self._dar(DAR_OTHER))  # no security inside security
        response = self._serve(inner, now_s)
        if response is None:
            return refusal(self._dar(DAR_OTHER))
        return self.security.seal(request, response)

    def _connect(self, apdu: bytes) -> bytes:
        factory = b"".join(text.encode("ascii").ljust(size, b"0")[:size] for text, size in self._factory())
        # Agree to the client's conformance bits, sizes no larger than its own or this meter's buffers, and the
        # association timeout it asked for.
        protocol_bits, function_bits = apdu[4:12], apdu[12:28]
        sizes = [min(MAX_APDU, int.from_bytes(apdu[i:i + 2], "big")) for i in (28, 30)]
        window, largest = max(1, apdu[32]), min(MAX_APDU, int.from_bytes(apdu[33:35], "big"))
        result, security_data = CONNECT_ALLOWED, b""
        if self.security is not None:
            result, security_data = self.security.connect(apdu[39:])
        info = bytes((result,)) + (b"\x01" + security_data if security_data else b"\x00")
        return (bytes((CONNECT_RESPONSE, apdu[1])) + factory + PROTOCOL_VERSION.to_bytes(2, "big")
                + protocol_bits + function_bits + b"".join(n.to_bytes(2, "big") for n in sizes) + bytes((window,))
                + largest.to_bytes(2, "big") + apdu[35:39] + info + b"\x00\x00")

    def _dar(self, dar: int) -> int:
        return DAR_OTHER if self.knobs.dar_wrong and dar != DAR_OK else dar

    def _result(self, oad: int, now_s: float) -> bytes:
        value = self.value(oad, now_s)
        if isinstance(value, Data):
            return oad.to_bytes(4, "big") + b"\x01" + value.encode()
        return oad.to_bytes(4, "big") + b"\x00" + bytes((self._dar(value),))

    def _get(self, apdu: bytes, now_s: float) -> bytes | None:
        choice, piid = apdu[1], apdu[2]
        head = bytes((GET_RESPONSE, choice, piid))
        tail = b"\x00\x00"  # no follow report, no time tag
        if choice == 1:
            return head + self._result(int.from_bytes(apdu[3:7], "big"), now_s) + tail
        if choice == 2:
            count = apdu[3]
            oads = [int.from_bytes(apdu[4 + 4 * i:8 + 4 * i], "big") for i in range(count)]
            return head + bytes((count,)) + b"".join(self._result(oad, now_s) for oad in oads) + tail
        if choice == 3:
            return head + self._record_result(apdu, 3) + tail
        return None

    def _records_of(self, oad: int) -> tuple[list[FreezeRecord], list[int]] | None:
        """(the records of a record attribute oldest first, its columns in order) or None."""
        oi, attribute = oad >> 16, (oad >> 8) & 0xFF
        if attribute != 2:
            return None
        for freeze in (self.minute_freeze, self.daily_freeze):
            if freeze.oi == oi:
                return list(freeze.records), [OAD_FREEZE_SEQUENCE, OAD_FREEZE_TIME, *freeze.associated]
        if oi == OI_POWER_DOWN:
            return self._power_down_records(), list(EVENT_COLUMNS)
        return None

    def _record_result(self, apdu: bytes, pos: int) -> bytes:
        oad = int.from_bytes(apdu[pos:pos + 4], "big")
        rsd, pos = decode_rsd(apdu, pos + 4)
        columns, pos = decode_rcsd(apdu, pos)
        found = self._records_of(oad)
        if found is None:
            return oad.to_bytes(4, "big") + encode_rcsd(columns) + b"\x00" + bytes((self._dar(DAR_NO_OBJECT),))
        records, all_columns = found
        if not columns:
            columns = [Csd(c) for c in all_columns]
        chosen = _select(records, rsd)
        rows = b"".join(_row(record, columns) for record in chosen)
        return (oad.to_bytes(4, "big") + encode_rcsd(columns) + b"\x01" + bytes((len(chosen),)) + rows)

    def _set(self, apdu: bytes, now_s: float) -> bytes | None:
        choice, piid = apdu[1], apdu[2]
        if choice != 1:
            return None
        oad = int.from_bytes(apdu[3:7], "big")
        value, _ = decode_data(apdu, 7)
        dar = self._write(oad, value, now_s)
        return bytes((SET_RESPONSE, 1, piid)) + oad.to_bytes(4, "big") + bytes((self._dar(dar),)) + b"\x00\x00"

    def _write(self, oad: int, value: Data, now_s: float) -> int:
        if oad == 0x40000200:
            if value.tag != Tag.DATE_TIME_S or not isinstance(value.value, dt.datetime):
                return DAR_TYPE_MISMATCH
            self.management.rtc.set(value.value, now_s)
            return DAR_OK
        flags = {0x43000700: "follow_report", 0x43000800: "active_report"}
        if oad in flags:
            if value.tag != Tag.BOOL:
                return DAR_TYPE_MISMATCH
            setattr(self, flags[oad], bool(value.value))
            return DAR_OK
        if oad == 0x30110800:
            if value.tag != Tag.ENUM or not isinstance(value.value, int) or value.value > 3:
                return DAR_TYPE_MISMATCH
            self.event_report_flag = value.value
            return DAR_OK
        return DAR_DENIED if self.value(oad, now_s) != DAR_NO_OBJECT else DAR_NO_OBJECT

    def _factory(self) -> list[tuple[str, int]]:
        """The version fields (text, size): the running image's version and checksum."""
        fields = list(FACTORY)
        fields[1] = (self.firmware.version, 4)
        fields[5] = (self.firmware.checksum, 8)
        return fields

    def _action(self, apdu: bytes, now_s: float) -> bytes | None:
        if apdu[1] != 1:
            return None
        piid, omd = apdu[2], int.from_bytes(apdu[3:7], "big")
        parameter, _ = decode_data(apdu, 7)
        dar = self._act(omd >> 8, parameter, now_s)
        return bytes((ACTION_RESPONSE, 1, piid)) + omd.to_bytes(4, "big") + bytes((self._dar(dar),)) + b"\x00\x00\x00"

    def _act(self, method: int, parameter: Data, now_s: float) -> int:
        """F001's methods (start 7, write 8, check 10, execute 11); other objects' methods are refused."""
        firmware = self.firmware
        oi, number = method >> 8, method & 0xFF
        if oi != OI_FILE_TRANSFER:
            return DAR_NO_OBJECT
        items = parameter.items
        try:
            if number == 7:
                info, block_size, check = items[0].items, items[1].value, items[2].items
                size, check_value = info[2].value, check[1].value
                if not isinstance(size, int) or not isinstance(block_size, int) or not isinstance(check_value, bytes):
                    return DAR_TYPE_MISMATCH
                return firmware.start(size, block_size, check_value)
            if number == 8:
                block, data = items[0].value, items[1].value
                if not isinstance(block, int) or not isinstance(data, bytes):
                    return DAR_TYPE_MISMATCH
                return firmware.write(block, data)
        except IndexError:
            return DAR_TYPE_MISMATCH
        if number == 10:
            return firmware.check()
        if number == 11:
            return firmware.execute(now_s)
        return DAR_NO_OBJECT

    # ---- the bytes it sends

    def encode(self, reply: Dlt698Frame) -> bytes:
        """The wire bytes of a reply as this firmware builds them (defect knobs applied), with the FE preamble."""
        raw = bytearray(encode_frame(reply))
        if self.knobs.hcs_error:
            hlen = 1 + 2 + 1 + 1 + len(reply.server_address) + 1 + 2
            raw[hlen - 2] ^= 0x01
        if self.knobs.fcs_error:
            raw[-3] ^= 0x01
        return b"\xfe" * 4 + bytes(raw)


EVENT_COLUMNS: Final = (OAD_EVENT_SEQUENCE, OAD_EVENT_START, OAD_EVENT_END, OAD_EVENT_SOURCE)


def _row(record: FreezeRecord, columns: list[Csd]) -> bytes:
    out = b""
    for column in columns:
        value = record.columns.get(column.oad)
        out += value.encode() if value is not None else b"\x00"
    return out


def _select(records: list[FreezeRecord], rsd: Rsd) -> list[FreezeRecord]:
    """The records a selector picks, oldest first."""
    if rsd.method == 9:
        return [records[-rsd.count]] if 1 <= rsd.count <= len(records) else []
    if rsd.method == 10:
        return records[-rsd.count:] if rsd.count else []
    if rsd.method in (1, 2):
        key = rsd.oad

        def at(record: FreezeRecord) -> object:
            data = record.columns.get(key)
            return data.value if data is not None else None

        if rsd.method == 1:
            return [r for r in records if at(r) == rsd.values[0].value]
        start, stop = rsd.values[0].value, rsd.values[1].value
        if not isinstance(start, dt.datetime) or not isinstance(stop, dt.datetime):
            return []
        return [r for r in records if isinstance(t := at(r), dt.datetime) and start <= t < stop]
    return records
