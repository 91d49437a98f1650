"""Bounded retry of bench operations, in one place (drivers layer; never imports the rig or pytest).

`RetryPolicy.run` tries an operation up to `attempts` times, waiting `backoff_s` (doubled each time) of
bench time on the injected clock and reconnecting between tries; a try that recovers is reported to the
policy's listeners as a `RetryEvent` (the run journals it), and a budget spent raises `BenchFault` naming
the instrument, what was asked and what it did. Only link problems are retried: what a device answers
(an SCPI command error, a meter's reply) is never retried away. `RetryingTransport` applies the policy to
an SCPI `MessageTransport`; the DL/T 645 link applies it to its serial port.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from drivers.clock import Clock
from drivers.errors import BenchFault, InstrumentError, LinkError, NotOpenError, RigError
from drivers.transport import MessageTransport, TrafficLog, active_traffic_log

log = logging.getLogger("meter_hil_rig.retry")
T = TypeVar("T")

# SCPI-99 device-specific errors (-300..-399: system error, queue overflow, ...): the instrument itself is
# in trouble, unlike command (-1xx) and execution (-2xx) errors, which say the rig asked something wrong.
DEVICE_ERRORS: Final = range(-399, -299)
MAX_ERRORS_DRAINED: Final = 32
_ERROR_REPLY = re.compile(r'^\s*([+-]?\d+)\s*,\s*".*"\s*$')


@dataclass(frozen=True)
class RetryEvent:
    """A bench operation that failed at least once: who, what, what went wrong, and whether a retry cured it."""

    instrument: str
    what: str
    problem: str  # the first failure
    attempts: int  # tries made, the last one included
    recovered: bool
    bench_time_s: float

    def describe(self) -> str:
        """`reference (TCPIP::...): 'CALC1:STAR' failed (LinkError: ...); retried ok after 2 tries`."""
        end = f"retried ok after {self.attempts} tries" if self.recovered else f"gave up after {self.attempts} tries"
        return f"{self.instrument}: {self.what!r} failed ({self.problem}); {end}"


RetryListener = Callable[[RetryEvent], None]


def is_link_problem(exc: BaseException) -> bool:
    """True for a broken connection (`LinkError`): reconnecting may cure it."""
    return isinstance(exc, LinkError)


class RetryPolicy:
    """How often and how patiently the rig retries a bench operation (bench time, on the injected clock)."""

    def __init__(self, clock: Clock, *, attempts: int = 3, backoff_s: float = 0.5) -> None:
        if attempts < 1 or backoff_s < 0:
            raise ValueError("attempts must be >= 1 and backoff_s >= 0")
        self.clock = clock
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.listeners: list[RetryListener] = []

    def _notify(self, event: RetryEvent) -> None:
        for listener in list(self.listeners):
            listener(event)

    def run(self, instrument: str, what: str, call: Callable[[], T], *, recover: Callable[[], None] | None = None,
            transient: Callable[[BaseException], bool] = is_link_problem) -> T:
        """`call()`, retried while it fails with a `transient` error; `recover()` (reconnect) before each retry.

        Raises the first non-transient error as it is, and `BenchFault` when every try failed.
        """
        problems: list[str] = []
        for attempt in range(1, self.attempts + 1):
            try:
                if attempt > 1:
                    self.clock.sleep(self.backoff_s * 2 ** (attempt - 2))
                    if recover is not None:
                        recover()
                result = call()
            except RigError as exc:
                if isinstance(exc, BenchFault) or not transient(exc):
                    raise
                problems.append(f"{type(exc).__name__}: {exc}")
                continue
            if problems:
                log.warning("%s: %r failed (%s); retried ok after %d tries", instrument, what, problems[0], attempt)
                self._notify(RetryEvent(instrument, what, problems[0], attempt, True, self._now()))
            return result
        log.error("%s: %r failed %d times (%s): bench fault", instrument, what, self.attempts, problems[0])
        self._notify(RetryEvent(instrument, what, problems[0], self.attempts, False, self._now()))
        last = f"; last: {problems[-1]}" if len(problems) > 1 and problems[-1] != problems[0] else ""
        raise BenchFault(
            f"bench fault: {instrument}: {what!r} failed {self.attempts} times ({problems[0]}{last}); "
            "the point is not measured, the meter is not judged on it",
            instrument=instrument, what=what, attempts=self.attempts,
        )

    def _now(self) -> float:
        try:
            return float(self.clock.now())
        except Exception:  # noqa: BLE001 - an event must never fail for want of a timestamp
            return float("nan")


class RetryingTransport:
    """An SCPI `MessageTransport` that retries what the link breaks (reset connection, timeout, garbled or
    undecodable reply, device-specific errors filling the error queue) under a `RetryPolicy`: it reconnects
    and drains the error queue between tries, so a late reply or a stale error cannot be mistaken for
    the answer to the retried message."""

    def __init__(self, inner: MessageTransport, policy: RetryPolicy, *, name: str = "") -> None:
        self.inner = inner
        self.policy = policy
        self.resource = inner.resource
        self.instrument = f"{name} ({inner.resource})" if name else inner.resource
        self._log: TrafficLog | None = active_traffic_log()

    def _note(self, text: str) -> None:
        if self._log is not None:
            self._log.write(self.resource, "#", text)

    def _reconnect(self) -> None:
        # Drain the error queue rather than *CLS: *CLS would also clear *ESR?'s power-on bit, the one sign
        # that the instrument restarted (and lost its settings) while the link was down.
        self._note("reconnecting after a link fault")
        self.inner.close()
        self.inner.open()
        self._checked("*OPC?", self.inner.query("*OPC?"))
        for _ in range(MAX_ERRORS_DRAINED):
            reply = self._checked("SYST:ERR?", self.inner.query("SYST:ERR?"))
            if reply.lstrip("+").startswith("0"):
                return
        raise LinkError(f"{self.resource}: error queue did not empty after {MAX_ERRORS_DRAINED} reads")

    @staticmethod
    def _transient(exc: BaseException) -> bool:
        # Everything the inner transport raises is the link's doing, except being used while closed.
        return isinstance(exc, InstrumentError) and not isinstance(exc, NotOpenError)

    def open(self) -> None:
        """Open the inner transport (retried: an instrument may still be booting)."""
        self.policy.run(self.instrument, "open", self.inner.open, recover=self.inner.close, transient=self._transient)

    def close(self) -> None:
        """Close the inner transport."""
        self.inner.close()

    def write(self, message: str) -> None:
        """Send `message`, reconnecting and sending again if the link breaks."""
        self.policy.run(self.instrument, message, lambda: self.inner.write(message), recover=self._reconnect,
                        transient=self._transient)

    def query(self, message: str) -> str:
        """Send `message` and return the reply, retried on a link fault or a garbled reply."""
        return self.policy.run(self.instrument, message, lambda: self._checked(message, self.inner.query(message)),
                               recover=self._reconnect, transient=self._transient)

    def _checked(self, message: str, reply: str) -> str:
        """The reply, unless it is visibly not one: control or non-ASCII characters, or an error-queue
        answer that is not `<code>,"<text>"` or reports a device-specific error."""
        if any(not (32 <= ord(c) < 127 or c == "\t") for c in reply):
            raise LinkError(f"{self.resource}: garbled reply to {message!r}: {reply!r}")
        if message.upper().rstrip().endswith("SYST:ERR?"):
            last = reply.rsplit(";", 1)[-1]
            match = _ERROR_REPLY.match(last)
            if match is None:
                raise LinkError(f"{self.resource}: garbled error-queue reply to {message!r}: {reply!r}")
            # Only after a command in the same message (`send`): draining the queue with a bare SYST:ERR? reads
            # whatever was queued, which is the caller's to judge.
            if ";" in message and int(match.group(1)) in DEVICE_ERRORS:
                raise LinkError(f"{self.resource}: instrument reported a device error after {message!r}: {last}")
        return reply
