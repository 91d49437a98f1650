"""Helpers of the communication plans: the meters powered (a meter does not talk without mains), and
putting a meter's line settings and clock back after a plan changed them; the meter's clock read against
the bench's."""

from __future__ import annotations

import contextlib
import datetime as dt

from drivers.dlt645 import Dlt645Frame, Function, encode_di
from drivers.dlt645.link import LineSettings, MeterLink
from drivers.errors import RigError
from rig.bench import Bench
from rig.procedures import LoadPoint, RackCache, energise
from testplans.comms import spec
from testplans.transports import TRANSPORTS

SCENARIO_DAYS_PER_TRANSPORT = 8  # clock scenarios get days 0..7 of their transport's block


def power_meters(bench: Bench, rack: RackCache, point: LoadPoint | None = None) -> None:
    """The meters on mains (Un, no current, unless `point` says otherwise) and past their start-up."""
    meter = bench.meter
    source = bench.source
    if point is None:
        if source.output_enabled and source.voltage_v >= 0.9 * meter.un_v:
            return
        point = LoadPoint(voltage_v=meter.un_v, current_a=0.0)
    elif (source.output_enabled and source.voltage_v == point.voltage_v and source.current_a == point.current_a
          and source.phase_deg == point.phase_deg):
        return
    was_on = source.output_enabled and source.voltage_v >= 0.9 * meter.un_v
    energise(bench, point, settle_s=2.0 if was_on else meter.start_up_time_s + 1.0)
    rack.forget_load()  # the accuracy plans' cache must set its own load point again


def _answers(link: MeterLink) -> bool:
    """True when the meter sends anything at all to a bare read at the host's current settings."""
    frame = Dlt645Frame.request(link.address, Function.READ, encode_di(spec.FORWARD_ENERGY))
    return bool(link.exchange(frame, preamble=0, retries=0).attempts[-1].received)


def restore_line(link: MeterLink, line: LineSettings) -> None:
    """Host and meter back at `line`: when the meter does not answer there, look for it at the usual
    rates and ask it to change back."""
    link.reconfigure(line)
    if _answers(link):
        return
    for baud in spec.FALLBACK_BAUDS:
        if baud == line.baud:
            continue
        link.reconfigure(LineSettings(baud, line.bytesize, line.parity, line.stopbits))
        if _answers(link):
            with contextlib.suppress(RigError):
                link.change_baud(line.baud)
            break
    link.reconfigure(line)


def restore_clock(bench: Bench, link: MeterLink) -> None:
    """The meter's clock set to the bench's calendar time (14H, the bench file's password)."""
    with contextlib.suppress(RigError):
        link.write_datetime(bench.clock.datetime_now)


def meter_clock(bench: Bench, link: MeterLink) -> tuple[dt.datetime, float]:
    """The meter's clock and the bench time it showed it at (the middle of the read: the time item is
    read between two reads of the date), half a second added for the whole seconds it counts in."""
    start = bench.clock.now()
    meter_time = link.read_datetime()
    return meter_time + dt.timedelta(seconds=0.5), (start + bench.clock.now()) / 2


def clock_offset_s(bench: Bench, link: MeterLink) -> float:
    """The meter's clock minus the bench's calendar time, s (against the middle of the read: the time
    item is read between two reads of the date)."""
    meter_time, at_s = meter_clock(bench, link)
    bench_time = bench.clock.datetime_now() - dt.timedelta(seconds=bench.clock.now() - at_s)
    return (meter_time - bench_time).total_seconds()


def scenario_day(bench: Bench, number: int, transport: str = "uart") -> dt.date:
    """A day of this month for a clock scenario: from the 11th on (clear of the billing day and of
    each other), never today (a meter may have been synced today already); each transport has days of its
    own (the daily sync quota of a scenario over the UART must not decide the same scenario over BLE)."""
    today = bench.clock.datetime_now().date()
    days = [d for d in range(11, 28) if d != today.day]
    return today.replace(day=days[number + SCENARIO_DAYS_PER_TRANSPORT * TRANSPORTS.index(transport)])
