"""The twin meter's security firmware, frames in and replies out (no ports): the reference's ESAM
sequence behind identity authentication, remote control moving the relay and with it the current of the
series loop and the energy registered, protected writes, the daily reset, status word 3, and the reply
waiting for the ESAM. The master station's session makes the requests (it is tested on its own)."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from drivers.dlt645 import (
    ControlErrorCode,
    Dlt645Frame,
    ErrorCode,
    Function,
    SecurityErrorCode,
    abnormal_error,
    decode_value,
    encode_di,
)
from drivers.security import EsamSession, RemoteControl, SoftwareKeySource
from rig.config import SecurityKnobs, UartKnobs, load_bench
from rig.twin.esam import LOCKOUT_THRESHOLD, twin_master_key
from rig.twin.expansion import ExpansionModule
from rig.twin.management import ManagementModule
from rig.twin.meter import MeteringModule, MeterModel
from rig.twin.security import AUTHENTICATED_BIT, KEEP_POWER_BIT, RELAY_OPEN_BIT, MeterSecurity, build_security
from rig.twin.world import World

ADDRESS = "000000000003"
METER = load_bench().meter
MASTER = twin_master_key(11)
STATUS_3 = 0x04000503


class Rig:
    """One twin meter on mains at Un, Ib, with its security, and a master-station session for it."""

    def __init__(self, uart: UartKnobs | None = None, **knobs: bool) -> None:
        self.world = World(seed=1)
        metering = MeteringModule(METER, load_bench().twin.meter.metering, random.Random(1))  # type: ignore[union-attr]
        self.management = ManagementModule(METER, uart or UartKnobs(), ADDRESS, metering, self.world,
                                           random.Random(2))
        self.expansion = ExpansionModule(self.management, random.Random(3))
        self.security: MeterSecurity = build_security(self.management, self.expansion.relay, self.world.loop_breakers,
                                                      SecurityKnobs(**knobs), MASTER, "esam")
        self.meter = MeterModel(0, ADDRESS, metering, self.management, self.expansion)
        self.world.models.append(self.meter)
        self.world.set_point.voltage_v = METER.un_v
        self.world.set_point.current_a = METER.ib_a
        self.world.output_on = True
        self.world.advance(METER.start_up_time_s + 1.0)
        self.session = EsamSession(ADDRESS, SoftwareKeySource(MASTER))

    def ask(self, frame: Dlt645Frame) -> Dlt645Frame | None:
        result = self.management.respond(frame, self.world.time_s)
        if result is None:
            return None
        reply, after = result
        if after is not None:
            after()
        return reply

    def authenticate(self) -> Dlt645Frame | None:
        request = self.session.authentication_request()
        reply = self.ask(request.frame)
        if reply is not None and not reply.is_abnormal:
            self.session.handle_reply(request, reply, self.world.time_s)
        return reply

    def deadline(self, seconds: float = 600.0) -> dt.datetime:
        return self.management.rtc.read(self.world.time_s) + dt.timedelta(seconds=seconds)

    def control(self, command: RemoteControl, *, seconds: float = 600.0) -> Dlt645Frame | None:
        request = self.session.control_request(command, self.deadline(seconds), now_s=self.world.time_s,
                                               even_if_closed=True)
        return self.ask(request.frame)

    def status_3(self) -> int:
        reply = self.ask(Dlt645Frame.request(ADDRESS, Function.READ, encode_di(STATUS_3)))
        assert reply is not None
        value = decode_value(STATUS_3, reply.data[4:])
        assert isinstance(value, int)
        return value


def test_identity_authentication_runs_the_reference_sequence() -> None:
    rig = Rig()
    before = rig.security.esam.apdus
    reply = rig.authenticate()
    assert reply is not None and reply.control == 0x83 and len(reply.data) == 16
    assert reply.data[8:16][::-1] == rig.security.esam.serial
    assert rig.security.esam.apdus - before == 6  # meter number, disperse, encrypt, get response, challenge, serial
    assert rig.status_3() & AUTHENTICATED_BIT


def test_esam_time_delays_the_reply() -> None:
    rig = Rig(uart=UartKnobs(reply_delay_s=0.08))
    rig.authenticate()
    delay = rig.management.reply_delay_s()
    assert 0.08 + 0.04 < delay < 0.5  # the UART delay plus the ESAM's APDUs
    assert rig.management.reply_delay_s() < 0.13  # nothing left for the next reply


def test_trip_breaks_the_current_loop_and_close_restores_it() -> None:
    rig = Rig()
    rig.authenticate()
    energy = rig.meter.metering.forward_kwh
    assert rig.control(RemoteControl.TRIP).control == 0x9C  # type: ignore[union-attr]
    assert rig.world.terminals().current_a == 0.0 and rig.status_3() & RELAY_OPEN_BIT
    rig.world.advance(60.0)
    assert rig.meter.metering.forward_kwh == energy  # a tripped meter registers nothing
    rig.control(RemoteControl.CLOSE_ALLOWED)
    assert rig.expansion.relay.close_allowed and rig.world.terminals().current_a == 0.0
    rig.expansion.relay.press_button()
    assert rig.world.terminals().current_a == pytest.approx(METER.ib_a, rel=0.01)
    rig.control(RemoteControl.TRIP)
    rig.control(RemoteControl.DIRECT_CLOSE)
    rig.world.advance(60.0)
    assert not rig.status_3() & RELAY_OPEN_BIT and rig.meter.metering.forward_kwh > energy + 0.015


@pytest.mark.parametrize(("prepare", "command", "error"), [
    ("none", RemoteControl.TRIP, ControlErrorCode.AUTHENTICATION_TIMED_OUT),
    ("keep", RemoteControl.TRIP, ControlErrorCode.TRIP_REFUSED),
    ("late", RemoteControl.TRIP, ControlErrorCode.DEADLINE_PASSED),
])
def test_refused_controls_leave_the_relay(prepare: str, command: RemoteControl, error: ControlErrorCode) -> None:
    rig = Rig()
    rig.authenticate()
    if prepare == "none":
        rig.ask(rig.session.end_request().frame)
    if prepare == "keep":
        rig.control(RemoteControl.KEEP_POWER_ON)
        assert rig.status_3() & KEEP_POWER_BIT
    reply = rig.control(command, seconds=-60.0 if prepare == "late" else 600.0)
    assert reply is not None and abnormal_error(reply) == error
    assert rig.expansion.relay.closed


def test_plain_level_control_is_unauthorised_and_a_meter_without_esam_says_other() -> None:
    rig = Rig()
    plain = Dlt645Frame.request(ADDRESS, Function.CONTROL, bytes((0x02, 0, 0, 0)) + bytes(4) + bytes(8))
    assert abnormal_error(rig.ask(plain)) == ControlErrorCode.UNAUTHORISED  # type: ignore[arg-type]
    rig.management.security = None
    reply = rig.ask(rig.session.authentication_request().frame)
    assert reply is not None and abnormal_error(reply) == SecurityErrorCode.OTHER


def test_malformed_authentication_is_other_error_and_silence_knob_holds() -> None:
    rig = Rig()
    short = Dlt645Frame.request(ADDRESS, Function.SECURITY, encode_di(0x070000FF) + bytes(20))
    assert abnormal_error(rig.ask(short)) == SecurityErrorCode.OTHER  # type: ignore[arg-type]
    unknown = Dlt645Frame.request(ADDRESS, Function.SECURITY, encode_di(0x070009FF) + bytes(4))
    assert abnormal_error(rig.ask(unknown)) == SecurityErrorCode.OTHER  # type: ignore[arg-type]
    silent = Rig(uart=UartKnobs(silent_on_error=True))
    assert silent.ask(short) is None


def test_protected_writes_set_the_clock_and_bad_ones_do_not() -> None:
    rig = Rig()
    rig.authenticate()
    for level, target in ((0x99, dt.time(15, 0, 0)), (0x98, dt.time(16, 30, 0))):
        request = rig.session.write_request(0x04000102, target, level=level, now_s=rig.world.time_s)
        assert rig.ask(request.frame).control == 0x94  # type: ignore[union-attr]
        assert rig.management.rtc.read(rig.world.time_s).time().replace(second=0) == target.replace(second=0)
        bad = rig.session.write_request(0x04000102, dt.time(3, 0, 0), level=level, now_s=rig.world.time_s)
        assert abnormal_error(rig.ask(bad.tampered("mac").frame)) == ErrorCode.UNAUTHORISED  # type: ignore[arg-type]
        assert rig.management.rtc.read(rig.world.time_s).hour != 3
    unknown = rig.session.write_request(0x02010100, 230.0, now_s=rig.world.time_s)  # voltage is not writable
    assert abnormal_error(rig.ask(unknown.frame)) == ErrorCode.UNAUTHORISED  # type: ignore[arg-type]


def test_lockout_and_daily_reset_at_the_meters_midnight() -> None:
    rig = Rig()
    rig.authenticate()
    bad = rig.session.control_request(RemoteControl.ALARM_ON, rig.deadline(), now_s=rig.world.time_s).tampered("mac")
    for _ in range(LOCKOUT_THRESHOLD):
        assert abnormal_error(rig.ask(bad.frame)) == ControlErrorCode.MAC_ERROR  # type: ignore[arg-type]
    assert abnormal_error(rig.control(RemoteControl.ALARM_ON)) == ControlErrorCode.SUSPENDED  # type: ignore[arg-type]
    assert abnormal_error(rig.authenticate()) == SecurityErrorCode.METER_SUSPENDED  # type: ignore[arg-type]
    now = rig.management.rtc.read(rig.world.time_s)
    rig.management.rtc.set(dt.datetime.combine(now.date(), dt.time(23, 59, 55)), rig.world.time_s)
    rig.world.advance(3.0)
    assert abnormal_error(rig.authenticate()) == SecurityErrorCode.METER_SUSPENDED  # type: ignore[arg-type]
    rig.world.advance(5.0)
    assert rig.authenticate().control == 0x83  # type: ignore[union-attr]
    assert rig.security.esam.mac_errors == 0


def test_status_word_3_keeps_other_bits() -> None:
    rig = Rig()
    rig.management.items[STATUS_3] = lambda now: 0x0001
    rig.security.attach()
    rig.authenticate()
    assert rig.status_3() == 0x0001 | AUTHENTICATED_BIT
