"""The register functions' pieces without a rig run: the DL/T 645 text items and daily period table as the codec
reads them, `rig.identity.read_identity` (what a certificate calls) on a meter that lacks an item, the meter
type's declared software, and the twin's clock-setting log, tariff booking and display on their own."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from drivers.dlt645 import ErrorCode, Value, abnormal_reply, decode_value, encode_value
from drivers.dlt645.exchange import AbnormalReply
from drivers.dlt645.tariff import decode_day_periods, encode_day_periods, tariff_at
from drivers.errors import FrameError
from rig.config import ConfigError, MeteringKnobs, load_bench
from rig.config.registers import RegisterKnobs
from rig.identity import SOFTWARE_CHECKSUM_DI, MeterIdentity, read_identity
from rig.twin.display import Display
from rig.twin.event_log import RECORDS, ClockSetLog
from rig.twin.meter import MeteringModule
from rig.twin.meter_clock import MeterRtc
from rig.twin.tariffs import TariffRegisters, factory_periods

EPOCH = dt.datetime(2026, 1, 1, 8, 0, 0)


def test_text_items_go_last_character_first_nul_padded() -> None:
    raw = encode_value(0x04800001, "V1.2")
    assert len(raw) == 32 and raw[-4:] == b"2.1V" and raw[:28] == bytes(28)
    assert decode_value(0x04800001, raw) == "V1.2"
    with pytest.raises(FrameError, match="longer than 10 characters"):
        encode_value(0x0400040B, "DDZY-TW1-LONG")
    with pytest.raises(FrameError, match="not ASCII"):
        decode_value(0x04800003, b"\xff" * 32)


def test_day_periods_round_trip_and_tariff_in_force() -> None:
    periods = factory_periods()
    assert decode_day_periods(encode_day_periods(periods)) == periods
    assert tariff_at(periods, dt.time(7, 59)) == 4 and tariff_at(periods, dt.time(12, 0)) == 1
    with pytest.raises(FrameError, match="needs 42 bytes"):
        decode_day_periods(b"\x00" * 41)
    with pytest.raises(FrameError, match="period 1 of the daily period table is 25:00"):
        decode_day_periods(encode_day_periods(((dt.time(1, 0), 1),)).replace(b"\x01\x00\x01", b"\x01\x00\x25", 1))


class FakeLink:
    """A link to a meter whose items are `values` (others: no such data)."""

    address = "000000000001"

    def __init__(self, values: dict[int, Value]) -> None:
        self.values = values

    def read(self, di: int) -> Value:
        if di not in self.values:
            reply = abnormal_reply(self.address, 0x11, int(ErrorCode.NO_DATA))
            raise AbnormalReply("no such data", ErrorCode.NO_DATA, reply)
        return self.values[di]


def test_read_identity_gives_none_for_what_the_meter_lacks() -> None:
    link = FakeLink({0x04800003: "Maker", 0x0400040B: "M1", 0x04000402: 42, 0x04800001: "0001"})
    identity = read_identity(link)
    assert identity == MeterIdentity("000000000001", "Maker", "M1", "000000000042", "0001", None)
    assert identity.describe() == "Maker M1 No. 000000000042, software 0001 (checksum (not given))"
    link.values[SOFTWARE_CHECKSUM_DI] = 0xBAC85AC5
    assert read_identity(link).checksum == "BAC85AC5"
    link.values[0x04800001] = 7
    with pytest.raises(FrameError, match="is not text"):
        read_identity(link)


def test_declared_software_is_text_and_the_checksum_eight_hex_digits() -> None:
    assert load_bench(None, overrides=["meter.software_checksum=bac85ac5"]).meter.software_checksum == "BAC85AC5"
    with pytest.raises(ConfigError, match="must be 8 hex digits"):
        load_bench(None, overrides=["meter.software_checksum=BAC85AC"])
    with pytest.raises(ConfigError, match="read as a number: quote it"):
        load_bench(None, overrides=["meter.software_version=1"])


def test_clock_setting_log_rolls_over_and_its_knobs() -> None:
    moments = [(EPOCH + dt.timedelta(minutes=k), EPOCH + dt.timedelta(hours=1, minutes=k)) for k in range(13)]
    for knobs, count, newest, second in (
        (RegisterKnobs(), 13, 12, 11),
        (RegisterKnobs(event_log_stops_when_full=True), 10, 9, 8),
        (RegisterKnobs(event_log_overwrites_newest=True), 13, 12, 8),
    ):
        log = ClockSetLog(knobs)
        for before, after in moments:
            log.log(before, after)
        assert (log.count, len(log.records)) == (count, RECORDS)
        assert log.records[0] == moments[newest] and log.records[1] == moments[second]


def _metering() -> MeteringModule:
    return MeteringModule(load_bench(None).meter, MeteringKnobs(), random.Random(1))


@pytest.mark.parametrize(("knobs", "tariff_at_10h05"), [(RegisterKnobs(), 2),
                                                        (RegisterKnobs(tariff_switch_late_min=10), 3)])
def test_tariff_booking_follows_the_meter_clock(knobs: RegisterKnobs, tariff_at_10h05: int) -> None:
    metering = _metering()
    rtc = MeterRtc(EPOCH, offset_s=0.0, drift_ppm=0.0)
    tariffs = TariffRegisters(metering, rtc, knobs)
    metering.forward_kwh += 1.0
    tariffs.step(7500.0, 1.0)  # 10:05 on the meter's clock: T2 (peak) from 10:00
    assert tariffs.forward[tariff_at_10h05 - 1] == pytest.approx(1.0)
    valley = TariffRegisters(metering, rtc, RegisterKnobs(tariff_wrong=True))
    metering.forward_kwh += 1.0
    valley.step(0.0 - 3600.0, 1.0)  # 07:00: valley, booked to the peak register by the defect
    assert valley.forward[1] == pytest.approx(1.0) and valley.forward[3] == 0.0


def test_display_truncates_and_its_defects() -> None:
    metering = _metering()
    metering.forward_kwh = 1.236
    assert Display(metering, RegisterKnobs()).forward_kwh(0.0) == 1.23
    assert Display(metering, RegisterKnobs(display_rounds=True)).forward_kwh(0.0) == 1.24
    stale = Display(metering, RegisterKnobs(display_stale_s=60.0))
    stale.step(0.0, 1.0)
    metering.forward_kwh = 2.5
    stale.step(1.0, 1.0)
    assert stale.forward_kwh(30.0) == 1.23 and stale.forward_kwh(62.0) == 2.5
