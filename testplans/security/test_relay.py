"""The load relay follows valid remote-control commands only, and a bench sees it: the status word, the
meter's own current reading, the source's current and the meter's pulses at Un, Ib. Trip opens it,
close-allowed leaves it open for the customer's button, direct close closes it; keep-power refuses a
trip (0x20); the alarm shows in the status word. Per position.

What a bench sees of a tripped meter: its status word 3 (relay open, trip commanded), its current
reading and pulse output at zero; on a series current loop without per-position bypass (the twin's
rack) the source and the reference measure no current either."""

from __future__ import annotations

import pytest

from drivers.security import MeterSecurityClient, RemoteControl
from rig.bench import Bench, Position
from testplans.security import spec
from testplans.security.helpers import refusal, status_word_3
from testplans.specs import accuracy as accuracy_spec

pytestmark = pytest.mark.plan


def _observe(bench: Bench, position: Position, record, state: str, *, closed: bool) -> None:
    """Status bits, the meter's and the source's current and the pulses over a window, against `closed`."""
    link = position.link or position.ble  # the relay is the meter's: seen over either link
    assert link is not None
    meter = bench.meter
    word = status_word_3(link)
    record(f"status word 3, relay open ({state})", None if word is None else int(bool(word & spec.RELAY_OPEN)), "",
           low=int(not closed), high=int(not closed), position=position, source=spec.STATUS_SOURCE, check=True)
    start_a = accuracy_spec.starting_current_a(meter)
    meter_a = link.read_number(spec.CURRENT_READING)
    source_a = bench.source.measure().current_a
    if closed:
        band = spec.CLOSED_CURRENT_PCT / 100.0 * meter.ib_a
        record(f"meter's current reading ({state})", meter_a, "A", low=meter.ib_a - band, high=meter.ib_a + band,
               position=position)
        record(f"source's current ({state})", source_a, "A", low=meter.ib_a - band, high=meter.ib_a + band,
               position=position)
    else:
        record(f"meter's current reading ({state})", abs(meter_a), "A", low=0.0, high=start_a, position=position,
               source=spec.OPEN_CURRENT_SOURCE)
        record(f"source's current ({state})", source_a, "A", low=0.0, high=start_a, position=position,
               source=spec.OPEN_CURRENT_SOURCE + " (series current loop)")
    position.calculator.start_count()
    bench.clock.sleep(spec.RELAY_WINDOW_S)
    pulses = position.calculator.pulse_count()
    expected = meter.un_v * meter.ib_a * spec.RELAY_WINDOW_S / 3.6e6 * meter.constant_imp_per_kwh
    if closed:
        record(f"meter pulses over {spec.RELAY_WINDOW_S:g} s ({state})", pulses, "pulses",
               low=spec.CLOSED_PULSES_FRACTION * expected, high=None, position=position, expected=expected)
    else:
        record(f"meter pulses over {spec.RELAY_WINDOW_S:g} s ({state})", pulses, "pulses", low=0, high=0,
               position=position, source="a tripped meter registers no energy")


def test_relay_follows_valid_commands(bench: Bench, secure: MeterSecurityClient, position: Position,
                                      record) -> None:
    """Closed at first; a valid trip opens it (load current and pulses stop); close-allowed clears the
    trip command but leaves it open; a direct close closes it again."""
    _observe(bench, position, record, "before the trip", closed=True)
    secure.authenticate()
    secure.control(RemoteControl.TRIP)
    _observe(bench, position, record, "after a valid trip", closed=False)
    word = status_word_3(secure.link) or 0
    record("status word 3, trip commanded (after the trip)", int(bool(word & spec.RELAY_TRIP_COMMAND)), "", low=1,
           high=1, position=position, source=spec.STATUS_SOURCE, check=True)
    secure.control(RemoteControl.CLOSE_ALLOWED)
    word = status_word_3(secure.link) or 0
    record("status word 3, trip commanded (after close-allowed)", int(bool(word & spec.RELAY_TRIP_COMMAND)), "",
           low=0, high=0, position=position, source=spec.STATUS_SOURCE, check=True)
    _observe(bench, position, record, "after close-allowed, button not pressed", closed=False)
    secure.control(RemoteControl.DIRECT_CLOSE)
    _observe(bench, position, record, "after a direct close", closed=True)


def test_relay_unchanged_by_refused_commands(bench: Bench, secure: MeterSecurityClient, position: Position,
                                             record) -> None:
    """Trips that must be refused (tampered MAC, tampered ciphertext, replayed, no session) leave the load
    on: current and pulses go on."""
    secure.authenticate()
    trip = secure.control_request(RemoteControl.TRIP)
    refusals = [refusal(lambda: secure.send(trip.tampered("mac", bit=2))),
                refusal(lambda: secure.send(trip.tampered("ciphertext", bit=4)))]
    alarm = secure.control_request(RemoteControl.ALARM_OFF)
    secure.send(alarm)
    refusals.append(refusal(lambda: secure.send(alarm)))  # a replay: refused, harmless either way
    secure.end()
    refusals.append(refusal(lambda: secure.control(RemoteControl.TRIP, even_if_closed=True)))
    record("refused commands accepted by the meter", sum(1 for word, _ in refusals if word == 0), "commands",
           low=0, high=0, position=position, outcomes=[text for _, text in refusals])
    _observe(bench, position, record, "after refused trips", closed=True)


def test_keep_power_refuses_trip(secure: MeterSecurityClient, position: Position, record) -> None:
    """With keep-power on (status word bit 12) a valid trip is refused (0x20) and the relay stays closed;
    with keep-power off again a trip is taken."""
    secure.authenticate()
    secure.control(RemoteControl.KEEP_POWER_ON)
    word = status_word_3(secure.link) or 0
    record("status word 3, keep-power (on)", int(bool(word & spec.KEEP_POWER)), "", low=1, high=1, position=position,
           source=spec.STATUS_SOURCE, check=True)
    outcome = refusal(lambda: secure.control(RemoteControl.TRIP))
    expected = spec.TRIP_REFUSED
    record("error word of a trip with keep-power on", outcome[0], "", low=expected.word, high=expected.word,
           position=position, outcome=outcome[1], source=expected.source)
    word = status_word_3(secure.link) or 0
    record("status word 3, relay open (trip refused)", int(bool(word & spec.RELAY_OPEN)), "", low=0, high=0,
           position=position, source=spec.STATUS_SOURCE, check=True)
    secure.control(RemoteControl.KEEP_POWER_OFF)
    outcome = refusal(lambda: secure.control(RemoteControl.TRIP))
    word = status_word_3(secure.link) or 0
    record("error word of a trip with keep-power off", outcome[0], "", low=0, high=0, position=position,
           outcome=outcome[1])
    record("status word 3, relay open (keep-power off, tripped)", int(bool(word & spec.RELAY_OPEN)), "", low=1,
           high=1, position=position, source=spec.STATUS_SOURCE, check=True)
    secure.control(RemoteControl.DIRECT_CLOSE)


def test_alarm_shows_in_status_word(secure: MeterSecurityClient, position: Position, record) -> None:
    """Alarm on sets status word 3 bit 7, alarm off clears it."""
    secure.authenticate()
    for command, expected in ((RemoteControl.ALARM_ON, 1), (RemoteControl.ALARM_OFF, 0)):
        secure.control(command)
        word = status_word_3(secure.link) or 0
        record(f"status word 3, alarm (after {command.name.lower().replace('_', ' ')})", int(bool(word & spec.ALARM)),
               "", low=expected, high=expected, position=position, source=spec.STATUS_SOURCE, check=True)
