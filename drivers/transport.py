"""Message transports: the one seam between a real bench and the twin (drivers layer).

An instrument driver speaks text messages through a `MessageTransport`. `PyVisaTransport` reaches a
real instrument or the twin's SCPI server alike; `ScriptedTransport` replays a byte-exact script for a
driver's unit tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any, Protocol

from drivers.errors import InstrumentError, InstrumentTimeout, NotOpenError


class MessageTransport(Protocol):
    """Line-oriented request/reply to one instrument."""

    resource: str

    def open(self) -> None:
        """Connect; a second call is a no-op."""
        ...

    def close(self) -> None:
        """Disconnect; safe to call when closed."""
        ...

    def write(self, message: str) -> None:
        """Send one message (the terminator is the transport's business)."""
        ...

    def query(self, message: str) -> str:
        """Send one message and return the reply without its terminator."""
        ...


class PyVisaTransport:
    """A VISA resource through pyvisa (pyvisa-py by default): TCPIP sockets, serial, GPIB, USBTMC."""

    def __init__(self, resource: str, *, timeout_s: float = 2.0, visa_library: str = "@py",
                 termination: str = "\n") -> None:
        self.resource = resource
        self.timeout_s = timeout_s
        self._library = visa_library
        self._termination = termination
        self._rm: Any = None
        self._inst: Any = None

    def open(self) -> None:
        """Open the VISA session; InstrumentError naming the resource when it cannot be reached."""
        if self._inst is not None:
            return
        import pyvisa  # imported here so that nothing touches VISA at import time

        try:
            self._rm = pyvisa.ResourceManager(self._library)
            self._inst = self._rm.open_resource(
                self.resource,
                read_termination=self._termination,
                write_termination=self._termination,
                timeout=int(self.timeout_s * 1000),
                open_timeout=int(self.timeout_s * 1000),
            )
        except (pyvisa.errors.VisaIOError, OSError, ValueError) as exc:
            self._close_rm()
            raise InstrumentTimeout(
                f"cannot open {self.resource}: {_reason(exc)} (is the instrument on and the address right?)"
            ) from None

    def close(self) -> None:
        """Close the session and the resource manager."""
        inst, self._inst = self._inst, None
        if inst is not None:
            # Closing a dead link must not mask the error that made us close it.
            with contextlib.suppress(Exception):
                inst.close()
        self._close_rm()

    def _close_rm(self) -> None:
        rm, self._rm = self._rm, None
        if rm is not None:
            with contextlib.suppress(Exception):
                rm.close()

    def _require(self) -> Any:
        if self._inst is None:
            raise NotOpenError(f"{self.resource} is not open: call open() first")
        return self._inst

    def write(self, message: str) -> None:
        """Send `message`."""
        inst = self._require()
        try:
            inst.write(message)
        except OSError as exc:
            # pyvisa-py connects a socket lazily: an unreachable instrument shows up at the first write.
            raise InstrumentTimeout(
                f"cannot reach {self.resource}: {_reason(exc)} (is the instrument on and the address right?)"
            ) from None
        except Exception as exc:  # noqa: BLE001 - pyvisa-py raises several types for a dead link
            raise InstrumentError(f"{self.resource}: sending {message!r} failed: {_reason(exc)}") from None

    def query(self, message: str) -> str:
        """Send `message` and read one reply line."""
        inst = self._require()
        try:
            return str(inst.query(message)).strip()
        except OSError as exc:
            raise InstrumentTimeout(f"cannot reach {self.resource}: {_reason(exc)}") from None
        except Exception as exc:  # noqa: BLE001
            if "timeout" in str(exc).lower():
                raise InstrumentTimeout(
                    f"{self.resource}: no reply to {message!r} within {self.timeout_s:g} s"
                ) from None
            raise InstrumentError(f"{self.resource}: query {message!r} failed: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class ScriptedTransport:
    """Replays a script of (sent, reply) pairs and asserts every message byte-exact.

    A reply of None means the message is a write. For drivers' unit tests: no hardware, no twin.
    """

    def __init__(self, script: Iterable[tuple[str, str | None]], resource: str = "scripted") -> None:
        self.resource = resource
        self._script = list(script)
        self._pos = 0
        self.is_open = False
        self.sent: list[str] = []

    def open(self) -> None:
        """Mark open."""
        self.is_open = True

    def close(self) -> None:
        """Mark closed."""
        self.is_open = False

    def _next(self, message: str, want_reply: bool) -> str | None:
        if not self.is_open:
            raise NotOpenError(f"{self.resource} is not open: call open() first")
        self.sent.append(message)
        if self._pos >= len(self._script):
            raise AssertionError(f"unexpected message {message!r}: the script has ended")
        expected, reply = self._script[self._pos]
        self._pos += 1
        if message != expected:
            raise AssertionError(f"message {self._pos}: sent {message!r}, script expects {expected!r}")
        if want_reply and reply is None:
            raise AssertionError(f"message {self._pos}: {message!r} was queried but the script has no reply")
        if not want_reply and reply is not None:
            raise AssertionError(f"message {self._pos}: {message!r} was written but the script expects a query")
        return reply

    def write(self, message: str) -> None:
        """Check `message` against the script."""
        self._next(message, want_reply=False)

    def query(self, message: str) -> str:
        """Check `message` against the script and return the scripted reply."""
        reply = self._next(message, want_reply=True)
        assert reply is not None
        return reply

    def assert_done(self) -> None:
        """Fail when part of the script was not used."""
        if self._pos != len(self._script):
            raise AssertionError(f"script not finished: next expected {self._script[self._pos][0]!r}")
