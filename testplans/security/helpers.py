"""Helpers of the security plans: the meters powered at Un and Ib (current must flow to see the relay),
the meter put back afterwards (relay closed, keep-power and alarm off, clock at the bench's time, session
ended), refusals and status word 3 read, deadlines and midnight on the meter's clock, key material looked
for in what the rig wrote."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from pathlib import Path

from drivers.clock import Clock
from drivers.dlt645.link import MeterLink
from drivers.errors import RigError
from drivers.security import KeySource, MeterSecurityClient, RemoteControl, SecurityRefused
from rig.bench import Bench
from rig.procedures import LoadPoint, RackCache, energise
from testplans.security import spec


def power_meters(bench: Bench, rack: RackCache) -> None:
    """The meters on mains at Un with Ib flowing, past their start-up time."""
    meter = bench.meter
    source = bench.source
    if source.output_enabled and source.voltage_v == meter.un_v and source.current_a == meter.ib_a \
            and source.phase_deg == 0.0:
        return
    was_on = source.output_enabled and source.voltage_v >= 0.9 * meter.un_v
    energise(bench, LoadPoint(voltage_v=meter.un_v, current_a=meter.ib_a),
             settle_s=2.0 if was_on else meter.start_up_time_s + 1.0)
    rack.forget_load()


def put_back(bench: Bench, client: MeterSecurityClient) -> None:
    """Meter clock at the bench's time; relay closed, keep-power and alarm off; session ended. A relay
    left open breaks the rack's current loop, so failing to close it is an error of the test."""
    link = client.link
    with contextlib.suppress(RigError):
        link.write_datetime(bench.clock.datetime_now)
    with contextlib.suppress(RigError):
        client.authenticate()
        client.set_validity(spec.WORKING_VALIDITY_MIN)
    for command in (RemoteControl.KEEP_POWER_OFF, RemoteControl.ALARM_OFF, RemoteControl.DIRECT_CLOSE):
        with contextlib.suppress(RigError):
            client.control(command)
    with contextlib.suppress(RigError):
        client.end()
    client.session.forget()
    word = status_word_3(link)
    if word is None or word & (spec.RELAY_OPEN | spec.KEEP_POWER | spec.ALARM):
        raise RigError(f"meter {link.address}: could not be put back (status word 3: {word!r}); its relay may "
                       "still be open and break the rack's current loop")


def status_word_3(link: MeterLink) -> int | None:
    """Running status word 3, or None when the meter does not answer it."""
    try:
        value = link.read(spec.STATUS_WORD_3)
    except RigError:
        return None
    return value if isinstance(value, int) else None


def refusal(call: Callable[[], object]) -> tuple[int, str]:
    """Run `call`: (0, 'accepted'), or the meter's error word and its name, or (-1, what went wrong)."""
    try:
        call()
    except SecurityRefused as exc:
        return int(exc.error), exc.error.name or "unknown bits"
    except RigError as exc:
        return -1, str(exc)
    return 0, "accepted"


def meter_deadline(link: MeterLink, offset_s: float) -> dt.datetime:
    """A deadline `offset_s` from the meter's own clock (negative: already passed for the meter)."""
    return link.read_datetime() + dt.timedelta(seconds=offset_s)


def cross_meter_midnight(clock: Clock, link: MeterLink) -> None:
    """Set the meter's clock just before its midnight (14H, the bench file's password) and let bench time
    run past it: the meter's daily reset (of the MAC-error count) happens."""
    today = link.read_datetime().date()
    link.write_datetime(dt.datetime.combine(today, dt.time(23, 59, 60 - spec.BEFORE_MIDNIGHT_S)))
    clock.sleep(spec.BEFORE_MIDNIGHT_S + spec.AFTER_MIDNIGHT_S)


def key_material_found(keys: KeySource, links: list[MeterLink], run_dir: Path | None) -> list[str]:
    """Where key material of `keys` shows: each link's exchanges (every byte sent and received, and its
    hex text) and every file of the run folder written so far."""
    found: list[str] = []
    for link in links:
        for number, exchange in enumerate(link.history):
            sent = exchange.request.data
            received = b"".join(attempt.received for attempt in exchange.attempts)
            received += b"".join(frame.data for attempt in exchange.attempts for frame in attempt.frames)
            if keys.appears_in(sent) or keys.appears_in(received) or keys.appears_in(sent.hex() + received.hex()):
                found.append(f"{link.url} exchange {number}")
    if run_dir is not None and run_dir.is_dir():
        for path in sorted(run_dir.rglob("*")):
            if path.is_file() and keys.appears_in(path.read_bytes()):
                found.append(str(path))
    return found
