"""The twin meter's DL/T 698.45 object table: the standard's numbers (APDU tags, DAR codes, units, OIs, record
columns) and each readable attribute's value, from the same meter state the DL/T 645 side reads.

Meter side of the twin: uses only the twin's own codec (rig.twin.dlt698.codec), never the rig's host side.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from rig.twin.dlt698.codec import Data, Tag, array, structure

if TYPE_CHECKING:
    from rig.config.dlt698 import Dlt698Knobs
    from rig.twin.dlt698.firmware import Firmware
    from rig.twin.dlt698.server import Dlt698Server
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
OI_VOLTAGE_HARMONICS: Final = 0x200D  # voltage harmonic content (as recalled from DL/T 698.45: check)
OI_CURRENT_HARMONICS: Final = 0x200E  # current harmonic content
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

EVENT_COLUMNS: Final = (OAD_EVENT_SEQUENCE, OAD_EVENT_START, OAD_EVENT_END, OAD_EVENT_SOURCE)


def floor_raw(value: float, scaler: int) -> int:
    """A meter register's raw value: whole units of 10^scaler, truncated as a display counts them."""
    return math.floor(value * 10.0 ** -scaler + 1e-9)


# ---------------------------------------------------------------- the meter's values


@dataclass
class FreezeRecord:
    """One frozen (or event) record: its columns (OAD -> value) in the object's order."""

    columns: dict[int, Data]


def power_down_count(management: ManagementModule) -> int:
    power = management.power
    return power.count if power is not None else 0


def power_down_records(management: ManagementModule) -> list[FreezeRecord]:
    """The power-down event records, oldest first, as record rows."""
    power = management.power
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


def item(management: ManagementModule, di: int, now_s: float) -> float:
    """A DL/T 645 data item's value now (the 698 objects read the same state)."""
    value = management.items[di](now_s)
    assert isinstance(value, (int, float))
    return float(value)


def phase_count(management: ManagementModule) -> int:
    return 1 if management.meter_type.wiring == "1P2W" else 3


def energy(knobs: Dlt698Knobs, tariffs: list[float], total: float) -> Data:
    """An energy attribute: total then the tariff registers, in the configured scaler."""
    scaler = knobs.energy_scaler
    return array([Data(Tag.DOUBLE_LONG_UNSIGNED, floor_raw(v, scaler)) for v in (total, *tariffs)])


PRECISE_SCALER: Final = -4  # attribute 4 (high-precision energy): 0.0001 kWh, long64-unsigned


def precise_energy(tariffs: list[float], total: float) -> Data:
    """The high-precision energy attribute (4): the same registers as attribute 2, total then the tariffs."""
    return array([Data(Tag.LONG64_UNSIGNED, floor_raw(v, PRECISE_SCALER)) for v in (total, *tariffs)])


def factory_fields(firmware: Firmware) -> list[tuple[str, int]]:
    """The version fields (text, size): the running image's version and checksum."""
    fields = list(FACTORY)
    fields[1] = (firmware.version, 4)
    fields[5] = (firmware.checksum, 8)
    return fields


def value(server: Dlt698Server, oad: int, now_s: float) -> Data | int:
    """Attribute `oad` (element 0: all of it) now, or the DAR that refuses it."""
    oi, attribute, element = oad >> 16, (oad >> 8) & 0xFF, oad & 0xFF
    getter = attributes(server, now_s).get((oi, attribute))
    if getter is None:
        return DAR_NO_OBJECT
    data = getter()
    if element == 0:
        return data
    if data.tag not in (Tag.ARRAY, Tag.STRUCTURE) or element > len(data.items):
        return DAR_NO_OBJECT
    return data.items[element - 1]


def attributes(server: Dlt698Server, now_s: float) -> dict[tuple[int, int], Callable[[], Data]]:
    """Each readable (OI, attribute) of the meter and how to read it now."""
    m = server.management
    metering = m.metering
    phases = phase_count(m)

    def scaler_unit(scaler: int, unit: int) -> Callable[[], Data]:
        return lambda: Data(Tag.SCALER_UNIT, (scaler, unit))

    def measured(di: int, tag: int, scaler: int) -> Data:
        return Data(tag, round(item(m, di, now_s) * 10 ** -scaler))

    power_kw = item(m, 0x02030000, now_s)
    voltage = item(m, 0x02010100, now_s)
    current = item(m, 0x02020100, now_s)
    apparent = voltage * abs(current) * phases
    pf = abs(power_kw * 1000.0) / apparent if apparent > 0 else 1.0
    table: dict[tuple[int, int], Callable[[], Data]] = {
        (OI_FORWARD_ENERGY, 2): lambda: energy(server.knobs, server.forward_tariffs, metering.forward_kwh),
        (OI_FORWARD_ENERGY, 3): scaler_unit(-2, UNIT_KWH),
        (OI_FORWARD_ENERGY, 4): lambda: precise_energy(server.forward_tariffs, metering.forward_kwh),
        (OI_FORWARD_ENERGY, 5): scaler_unit(PRECISE_SCALER, UNIT_KWH),
        (OI_REVERSE_ENERGY, 2): lambda: energy(server.knobs, server.reverse_tariffs, metering.reverse_kwh),
        (OI_REVERSE_ENERGY, 3): scaler_unit(-2, UNIT_KWH),
        (OI_REVERSE_ENERGY, 4): lambda: precise_energy(server.reverse_tariffs, metering.reverse_kwh),
        (OI_REVERSE_ENERGY, 5): scaler_unit(PRECISE_SCALER, UNIT_KWH),
        (OI_VOLTAGE, 2): lambda: array([measured(0x02010000 + n * 0x100, Tag.LONG_UNSIGNED, -1)
                                        for n in range(1, phases + 1)]),
        (OI_VOLTAGE, 3): scaler_unit(-1, UNIT_V),
        (OI_CURRENT, 2): lambda: array([measured(0x02020000 + n * 0x100, Tag.DOUBLE_LONG, -3)
                                        for n in range(1, phases + 1)]),
        (OI_CURRENT, 3): scaler_unit(-3, UNIT_A),
        (OI_ACTIVE_POWER, 2): lambda: array(
            [Data(Tag.DOUBLE_LONG, round(power_kw * 10000))]
            + [Data(Tag.DOUBLE_LONG, round(item(m, 0x02030000 + n * 0x100, now_s) * 10000))
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
            [Data(Tag.BIT_STRING, int(item(m, 0x04000501 + n, now_s)).to_bytes(2, "big"))
             for n in range(7)]),
        (OI_DATE_TIME, 2): lambda: Data(Tag.DATE_TIME_S, m.rtc.read(now_s)),
        (OI_ADDRESS, 2): lambda: Data(Tag.OCTET_STRING, bytes.fromhex(m.address)),
        (OI_DEVICE, 7): lambda: Data(Tag.BOOL, server.follow_report),
        (OI_DEVICE, 8): lambda: Data(Tag.BOOL, server.active_report),
        (OI_POWER_DOWN, 4): lambda: Data(Tag.LONG_UNSIGNED, len(power_down_records(m))),
        (OI_POWER_DOWN, 5): lambda: Data(Tag.LONG_UNSIGNED, EVENT_DEPTH),
        (OI_POWER_DOWN, 7): lambda: array([structure([Data(Tag.NULL), structure([
            Data(Tag.DOUBLE_LONG_UNSIGNED, power_down_count(m)), Data(Tag.DOUBLE_LONG_UNSIGNED, 0)])])]),
        (OI_POWER_DOWN, 8): lambda: Data(Tag.ENUM, server.event_report_flag),
        (OI_POWER_DOWN, 9): lambda: Data(Tag.BOOL, True),
        (OI_POWER_DOWN, 3): lambda: array([Data(Tag.OAD, oad) for oad in EVENT_COLUMNS[2:]]),
        (OI_DEVICE, 3): lambda: structure([Data(Tag.VISIBLE_STRING, text)
                                           for text, _ in factory_fields(server.firmware)]),
        (OI_FILE_TRANSFER, 4): lambda: Data(Tag.BIT_STRING, server.firmware.block_status()),
    }
    for freeze in (server.minute_freeze, server.daily_freeze):
        table[(freeze.oi, 3)] = freeze.relation_table
    # Harmonic content per phase, orders 2..21 in 0.01 % of the fundamental: the DL/T 645 items' values
    # (02 0A 01 nn / 02 0B 01 nn); the attribute's layout is the twin's reading of the standard: check.
    def content(base: int) -> Callable[[], Data]:
        return lambda: array([array([Data(Tag.LONG_UNSIGNED, round(item(m, base + n, now_s) * 100))
                                     for n in range(2, 22)])] * phases)

    for oi, base in ((OI_VOLTAGE_HARMONICS, 0x020A0100), (OI_CURRENT_HARMONICS, 0x020B0100)):
        table[(oi, 2)] = content(base)
        table[(oi, 3)] = scaler_unit(-2, UNIT_NONE)
    return table
