"""The one retry policy (drivers.retry): bounded, in bench time, recorded, never swallowing what a device
answered; and the retrying SCPI transport's idea of a link fault."""

from __future__ import annotations

import pytest

from drivers.clock import ManualClock
from drivers.errors import BenchFault, InstrumentError, InstrumentTimeout, LinkError, ValidationError
from drivers.retry import RetryEvent, RetryingTransport, RetryPolicy
from drivers.scpi import DeviceError, ScpiInstrument
from drivers.transport import ScriptedTransport


def flaky(failures: list[Exception], result: str = "ok"):  # type: ignore[no-untyped-def]
    calls = []

    def call() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return result

    return call, calls


def test_transient_failure_is_retried_in_bench_time_and_reported() -> None:
    clock = ManualClock()
    policy = RetryPolicy(clock, attempts=3, backoff_s=0.5)
    events: list[RetryEvent] = []
    policy.listeners.append(events.append)
    recovered: list[int] = []
    call, calls = flaky([LinkError("socket reset"), LinkError("socket reset")])
    assert policy.run("reference (X)", "CALC1:STAT?", call, recover=lambda: recovered.append(1)) == "ok"
    assert len(calls) == 3 and len(recovered) == 2
    assert clock.t == pytest.approx(0.5 + 1.0), "backoff doubles, on the injected clock"
    (event,) = events
    assert event.recovered and event.attempts == 3 and event.instrument == "reference (X)"
    assert "socket reset" in event.problem and "retried ok" in event.describe()


def test_budget_spent_is_a_bench_fault_naming_the_instrument_and_what_it_did() -> None:
    policy = RetryPolicy(ManualClock(), attempts=2, backoff_s=0.1)
    events: list[RetryEvent] = []
    policy.listeners.append(events.append)
    call, calls = flaky([LinkError("reset 1"), LinkError("reset 2"), LinkError("never reached")])
    with pytest.raises(BenchFault) as info:
        policy.run("source (TCPIP::1)", "OUTP ON", call)
    assert len(calls) == 2
    assert info.value.instrument == "source (TCPIP::1)" and info.value.what == "OUTP ON" and info.value.attempts == 2
    assert "reset 1" in str(info.value) and "bench fault" in str(info.value)
    assert [e.recovered for e in events] == [False]


def test_what_a_device_answered_is_never_retried() -> None:
    policy = RetryPolicy(ManualClock())
    call, calls = flaky([InstrumentError("-222 Data out of range")])
    with pytest.raises(InstrumentError, match="-222"):
        policy.run("source", "SOUR:VOLT 999", call)  # default: only LinkError is transient
    assert len(calls) == 1
    call, calls = flaky([ValidationError("outside range")])
    with pytest.raises(ValidationError):
        policy.run("source", "x", call)


def test_a_failing_reconnect_counts_as_a_failed_try() -> None:
    policy = RetryPolicy(ManualClock(), attempts=3, backoff_s=0)
    call, calls = flaky([LinkError("gone")])
    reconnects = [LinkError("still gone")]

    def recover() -> None:
        if reconnects:
            raise reconnects.pop(0)

    assert policy.run("meter link", "read", call, recover=recover) == "ok"
    assert len(calls) == 2


class ScriptedLink:
    """A message transport whose replies come from a list; records what was sent and reconnects."""

    resource = "TCPIP::twin::1::SOCKET"

    def __init__(self, replies: list[str | Exception]) -> None:
        self.replies = replies
        self.sent: list[str] = []
        self.opens = 0

    def open(self) -> None:
        self.opens += 1

    def close(self) -> None:
        pass

    def write(self, message: str) -> None:
        self.sent.append(message)

    def query(self, message: str) -> str:
        self.sent.append(message)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def retrying(replies: list[str | Exception]) -> tuple[RetryingTransport, ScriptedLink, list[RetryEvent]]:
    inner = ScriptedLink(replies)
    policy = RetryPolicy(ManualClock(), attempts=3, backoff_s=0.1)
    events: list[RetryEvent] = []
    policy.listeners.append(events.append)
    return RetryingTransport(inner, policy, name="reference"), inner, events


def test_garbled_reply_reconnects_drains_the_queue_and_asks_again() -> None:
    transport, inner, events = retrying(["2\xb03.1", "1", '0,"No error"', "230.1"])
    assert transport.query("MEAS:VOLT?") == "230.1"
    assert inner.sent == ["MEAS:VOLT?", "*OPC?", "SYST:ERR?", "MEAS:VOLT?"]
    assert inner.opens == 1, "reconnected once"
    assert "garbled" in events[0].problem and events[0].recovered


def test_timeout_is_retried_on_a_fresh_connection() -> None:
    transport, inner, events = retrying([InstrumentTimeout("no reply within 2 s"), "1", '0,"No error"', "DONE"])
    assert transport.query("CALC1:STAT?") == "DONE"
    assert inner.opens == 1
    assert events[0].instrument == "reference (TCPIP::twin::1::SOCKET)"


def test_device_error_after_a_command_is_a_link_fault_but_a_command_error_is_not() -> None:
    transport, inner, events = retrying(['-310,"System error"', "1", '-310,"System error"', '0,"No error"',
                                         '0,"No error"'])
    assert transport.query("OUTP ON;:SYST:ERR?") == '0,"No error"'
    assert inner.sent[-1] == "OUTP ON;:SYST:ERR?" and events[0].recovered
    transport, inner, events = retrying(['-222,"Data out of range"'])
    assert transport.query("SOUR:VOLT 999;:SYST:ERR?") == '-222,"Data out of range"', "the driver judges this one"
    assert not events
    transport, inner, events = retrying(['-350,"Queue overflow"'])
    assert transport.query("SYST:ERR?") == '-350,"Queue overflow"', "draining the queue reads what is there"


def test_persistent_garbage_is_a_bench_fault() -> None:
    transport, _, events = retrying(["\x81\x82", "1", '0,"No error"', "\x81", "1", '0,"No error"', "\x80"])
    with pytest.raises(BenchFault, match="reference"):
        transport.query("*IDN?")
    assert not events[-1].recovered


def test_a_queue_of_device_errors_is_a_device_error_a_command_error_is_not() -> None:
    with ScriptedTransport([("SYST:ERR?", '-310,"System error"'), ("SYST:ERR?", '0,"No error"')]) as device:
        device.open()
        with pytest.raises(DeviceError, match="-310"):
            ScpiInstrument(device).check("CALC1:ERR?")
    with ScriptedTransport([("SYST:ERR?", '-222,"Data out of range"'), ("SYST:ERR?", '0,"No error"')]) as command:
        command.open()
        with pytest.raises(InstrumentError, match="-222") as info:
            ScpiInstrument(command).check("CALC1:PULS 0")
    assert not isinstance(info.value, DeviceError) and not isinstance(info.value, LinkError)
