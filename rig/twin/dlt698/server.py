"""The twin meter's DL/T 698.45 server: the management MCU's second protocol on the same UART, backed by the
same meter state as its DL/T 645 server (energy registers, RTC, measured values, power-down records).

Meter side of the twin: uses only the twin's own codec (rig.twin.dlt698.codec), never the rig's host side.
Serves CONNECT/RELEASE, GET (normal, list, record), SET of the clock and reporting switches, ACTION on the file
transfer (F001) and steps tariffs, freezes and events. The object table lives in objects.py, the minute and daily
freezes (5002, 5004) in freeze.py, the power-down event (3011) REPORT-Notification in events.py.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from drivers.errors import FrameError
from rig.config.dlt698 import Dlt698Knobs
from rig.twin.dlt698 import objects
from rig.twin.dlt698.codec import (
    ADDRESS_SINGLE,
    CONTROL_FRAGMENT,
    CONTROL_RESPONSE,
    FUNCTION_USER_DATA,
    Csd,
    Data,
    Dlt698Frame,
    Tag,
    address_to_wire,
    decode_data,
    decode_rcsd,
    decode_rsd,
    encode_frame,
    encode_rcsd,
    wire_matches,
)
from rig.twin.dlt698.events import check_events
from rig.twin.dlt698.firmware import Firmware
from rig.twin.dlt698.freeze import Freeze, row, select, take_due
from rig.twin.dlt698.objects import (
    ACTION_REQUEST,
    ACTION_RESPONSE,
    CONNECT_REQUEST,
    CONNECT_RESPONSE,
    DAILY_FREEZE_DEPTH,
    DAR_DENIED,
    DAR_NO_OBJECT,
    DAR_OK,
    DAR_OTHER,
    DAR_TYPE_MISMATCH,
    EVENT_COLUMNS,
    GET_REQUEST,
    GET_RESPONSE,
    MAX_APDU,
    MINUTE_FREEZE_DEPTH,
    OAD_FREEZE_SEQUENCE,
    OAD_FREEZE_TIME,
    OI_DAILY_FREEZE,
    OI_FILE_TRANSFER,
    OI_MINUTE_FREEZE,
    OI_POWER_DOWN,
    PROTOCOL_VERSION,
    RELEASE_REQUEST,
    RELEASE_RESPONSE,
    REPORT_RESPONSE,
    SET_REQUEST,
    SET_RESPONSE,
    TARIFF_BY_HOUR,
    FreezeRecord,
    factory_fields,
    power_down_count,
    power_down_records,
)
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
        self.step_tariff = 0  # the tariff the current step's energy is booked to
        # Both freezes capture the high-precision forward energy (00100400) besides attribute 2: a freeze's value
        # then shows the moment it was taken to a fraction of a second at Imax.
        self.minute_freeze = Freeze(OI_MINUTE_FREEZE, knobs.minute_freeze_period_min,
                                    (0x00100200, 0x00200200, 0x20000200, 0x20010200, 0x20040200, 0x00100400),
                                    MINUTE_FREEZE_DEPTH, deque(maxlen=MINUTE_FREEZE_DEPTH))
        self.daily_freeze = Freeze(OI_DAILY_FREEZE, 1, (0x00100200, 0x00200200, 0x00100400), DAILY_FREEZE_DEPTH,
                                   deque(maxlen=DAILY_FREEZE_DEPTH))
        self.follow_report = False
        # Off as delivered: on a shared RS-485 bus the master polls; a master station switches it on (4300-08).
        self.active_report = False
        self.event_report_flag = 1  # 3011 attribute 8: report when the event occurs
        self.reported_count = power_down_count(management)
        self.report_sinks: list[Callable[[bytes], None]] = []  # the ports a REPORT-Notification goes out on
        self.follow_pending: list[bytes] = []  # event records (A-ResultRecord) to follow the next responses
        self.reports_sent = 0
        self.reports_acknowledged = 0
        self.report_piid = 0
        # Its security firmware, when the meter has an ESAM (the same chip its DL/T 645 security uses).
        self.security = (Dlt698Security(management.security.esam, lambda: management.address)
                         if management.security is not None else None)


    def value(self, oad: int, now_s: float) -> Data | int:
        """Attribute `oad` (element 0: all of it) now, or the DAR that refuses it."""
        return objects.value(self, oad, now_s)

    # ---- stepping: tariffs and freezes on the meter's clock

    def step(self, t0: float, dt_s: float, terminals: Terminals) -> None:
        """Book the energy of the step to the tariff in force, take the freezes due, report new events."""
        m = self.management
        metering = m.metering
        before_f, before_r = self._seen
        after_f, after_r = metering.forward_kwh, metering.reverse_kwh
        self._seen = (after_f, after_r)
        tariff = self.step_tariff = TARIFF_BY_HOUR[m.rtc.read(t0).hour] - 1
        self.forward_tariffs[tariff] += max(0.0, after_f - before_f)
        self.reverse_tariffs[tariff] += max(0.0, after_r - before_r)
        end = t0 + dt_s
        now = m.rtc.read(end)
        for freeze in (self.minute_freeze, self.daily_freeze):
            take_due(self, freeze, now, t0, end, (before_f, after_f), (before_r, after_r))
        check_events(self)
        power = m.power
        self.firmware.step(end, power.mains(terminals) if power is not None else terminals.voltage_v > 0)

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
        factory = b"".join(text.encode("ascii").ljust(size, b"0")[:size]
                           for text, size in factory_fields(self.firmware))
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
            return power_down_records(self.management), list(EVENT_COLUMNS)
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
        chosen = select(records, rsd)
        rows = b"".join(row(record, columns) for record in chosen)
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


