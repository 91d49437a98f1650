"""Message transports: the one seam between a real bench and the twin (drivers layer).

An instrument driver speaks text messages through a `MessageTransport`. `PyVisaTransport` reaches a
real instrument or the twin's SCPI server alike; `ScriptedTransport` replays a byte-exact script for a
driver's unit tests; `LoggedTransport` wraps any of them and writes every message to a `TrafficLog`.

The traffic log is a `logging.Handler` and every line is a log record of the `meter_hil_rig.traffic` logger
(DEBUG): `--log-cli-level=DEBUG`, syslog or journald handlers see the traffic as it happens, and while a run
records traffic pyvisa's own warnings land in traffic.log beside it.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TextIO

from drivers.errors import AddressError, ConnectionRefused, InstrumentError, InstrumentTimeout, NotOpenError


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
    """A VISA resource through pyvisa (pyvisa-py by default): TCPIP sockets, serial, GPIB, USBTMC.

    Opening checks, before anything else is sent, that the resource name is one and that what answers is an
    IEEE 488.2 instrument (`*IDN?` answered `maker,model,serial,firmware`): a web server or another device at
    the address is named as such instead of failing later on a garbled error queue.
    """

    def __init__(self, resource: str, *, timeout_s: float = 2.0, visa_library: str = "@py",
                 termination: str = "\n", identify: bool = True) -> None:
        self.resource = resource
        self.timeout_s = timeout_s
        self._library = visa_library
        self._termination = termination
        self._identify = identify
        self.idn: str | None = None  # the *IDN? reply of the last open (with `identify`)
        self._rm: Any = None
        self._inst: Any = None

    def open(self) -> None:
        """Open the VISA session and check the instrument's identity; AddressError for a resource name that is
        not one or a device that is not an instrument, ConnectionRefused / InstrumentTimeout when it cannot be
        reached."""
        if self._inst is not None:
            return
        import pyvisa  # imported here so that nothing touches VISA at import time

        check_resource_name(self.resource)
        try:
            self._rm = pyvisa.ResourceManager(self._library)
            self._inst = self._rm.open_resource(
                self.resource,
                read_termination=self._termination,
                write_termination=self._termination,
                timeout=int(self.timeout_s * 1000),
                open_timeout=int(self.timeout_s * 1000),
            )
        except ConnectionRefusedError:
            self._close_rm()
            raise _refused(self.resource) from None
        except (pyvisa.errors.VisaIOError, OSError, ValueError) as exc:
            self._close_rm()
            raise InstrumentTimeout(
                f"cannot open {self.resource}: {_reason(exc)} (is the instrument on and the address right?)"
            ) from None
        if self._identify:
            # A link fault here leaves the session as a failed write would (whoever retries reconnects); only
            # a device that is not an instrument is closed at once.
            reply = self.query("*IDN?")
            try:
                self.idn = check_identity(self.resource, reply)
            except AddressError:
                self.close()
                raise

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
                # pyvisa shares one ResourceManager per library: closing it would close every other
                # instrument's session too (a reconnect of one instrument must not cut the others off).
                if not rm.list_opened_resources():
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
        except ConnectionRefusedError:
            raise _refused(self.resource) from None
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
        except ConnectionRefusedError:
            raise _refused(self.resource) from None
        except OSError as exc:
            raise InstrumentTimeout(f"cannot reach {self.resource}: {_reason(exc)}") from None
        except Exception as exc:  # noqa: BLE001
            if "timeout" in str(exc).lower():
                raise InstrumentTimeout(
                    f"{self.resource}: no reply to {message!r} within {self.timeout_s:g} s"
                ) from None
            raise InstrumentError(f"{self.resource}: query {message!r} failed: {_reason(exc)}") from None


def _refused(resource: str) -> ConnectionRefused:
    return ConnectionRefused(f"connection refused at {resource}: nothing listens there (is the instrument on, "
                             "and the host and port right?)")


VISA_EXAMPLES = "e.g. TCPIP::192.168.1.20::5025::SOCKET, TCPIP::192.168.1.20::INSTR, ASRL/dev/ttyUSB0::INSTR"


def check_resource_name(resource: str) -> None:
    """AddressError unless `resource` is a VISA resource name (a socket's port a number)."""
    from pyvisa import rname

    try:
        parsed = rname.parse_resource_name(resource)
    except rname.InvalidResourceName as exc:
        why = str(exc).replace(f"Could not parse '{resource}'. ", "").replace(f"Could not parse {resource}: ", "")
        raise AddressError(f"{resource!r} is not a VISA resource name ({why}; {VISA_EXAMPLES})") from None
    port = getattr(parsed, "port", None)
    if isinstance(parsed, rname.TCPIPSocket) and not str(port).isdigit():
        raise AddressError(f"{resource!r} is not a VISA resource name (the socket port {port!r} is not a number; "
                           f"{VISA_EXAMPLES})")


def check_identity(resource: str, reply: str) -> str:
    """The `*IDN?` reply when it has the IEEE 488.2 shape (four comma-separated fields of printable text);
    AddressError naming what answered otherwise."""
    fields = reply.split(",")
    if len(fields) >= 4 and fields[0].strip() and reply.isprintable():
        return reply
    shown = reply[:60] + ("..." if len(reply) > 60 else "")
    if reply.startswith("HTTP/") or reply.lstrip().lower().startswith(("<!doctype html", "<html")):
        what = "a web (HTTP) server answers there"
    elif not reply.isprintable():
        what = "what answers there sends binary data"
    else:
        what = "its reply is not 'maker,model,serial,firmware'"
    raise AddressError(f"{resource} is not a SCPI instrument: {what} (reply to *IDN?: {shown!r}); check the host "
                       "and port in the bench file")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class ScriptedTransport:
    """Replays a script of (sent, reply) pairs and asserts every message byte-exact.

    A reply of None means the message is a write. For drivers' unit tests: no hardware, no twin. Used as a
    context manager (`with ScriptedTransport(script) as transport:`) it fails at the end of the block when part
    of the script was not used.
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

    def __enter__(self) -> ScriptedTransport:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        # Like PyMeasure's expected_protocol: a block that ends normally must have used every exchange; a block
        # that raised keeps its own error.
        if exc_type is None:
            self.assert_done()


# ------------------------------------------------------------------------------------ traffic log


TRAFFIC_LOGGER = "meter_hil_rig.traffic"


class TrafficLog(logging.Handler):
    """Raw instrument and DUT traffic of a run, one line per message, for the run's attachment.

    Line: `<bench s> <UTC> <resource> <dir> <text>`; dir `>` sent, `<` received, `!` failed, `#` note.
    Bench time is `-` until a clock is attached (the bench's clock exists only once the bench is open).
    Any line holding a registered secret (as text or hex) is replaced by a redaction note: key material
    never reaches the log even if a driver were to send it (nor any other handler: redaction comes first).
    Records of other loggers this handler is attached to (pyvisa's) are written as `#` notes.
    """

    def __init__(self, stream: TextIO, *, secrets: Iterable[bytes] = ()) -> None:
        super().__init__(logging.DEBUG)
        self._stream = stream
        self._lock = threading.Lock()
        self._now: Callable[[], float] | None = None
        self._secrets: list[str] = []
        self.lines = 0
        for secret in secrets:
            self.add_secret(secret)

    def add_secret(self, secret: bytes) -> None:
        """Never write a line containing `secret` (raw text, lower- or upper-case hex)."""
        if len(secret) >= 4:
            spaced = secret.hex(" ")  # how `data()` writes bytes
            self._secrets += [secret.hex(), secret.hex().upper(), spaced, spaced.upper(), secret.decode("latin-1")]

    def attach_clock(self, now: Callable[[], float]) -> None:
        """Stamp lines with bench time from `now()` (seconds) from here on."""
        self._now = now

    def _bench_time(self) -> str:
        if self._now is None:
            return "-"
        try:
            return f"{self._now():.6f}"
        except Exception:  # noqa: BLE001 - the log must never break the traffic it records
            return "?"

    def _shown(self, text: str) -> str:
        shown = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        if any(secret in shown or secret in text for secret in self._secrets):
            return "<redacted: the message held key material>"
        return shown

    def write(self, resource: str, direction: str, text: str) -> None:
        """Append one line (text messages): a record of the traffic logger, written here and passed on to that
        logger's handlers when it is enabled for DEBUG."""
        record = logging.LogRecord(TRAFFIC_LOGGER, logging.DEBUG, __file__, 0, "%s %s %s",
                                   (resource, direction, self._shown(text)), None)
        record.bench_time = self._bench_time()
        self.handle(record)
        logger = logging.getLogger(TRAFFIC_LOGGER)
        if logger.isEnabledFor(logging.DEBUG):
            logger.handle(record)

    def emit(self, record: logging.LogRecord) -> None:
        """One line: `<bench s> <UTC> <resource> <dir> <text>`; another logger's record as a `#` note."""
        try:
            if record.name == TRAFFIC_LOGGER:
                resource, direction, shown = record.args  # type: ignore[misc]
                bench = getattr(record, "bench_time", "-")
            else:
                resource, direction, bench = record.name, "#", self._bench_time()
                shown = self._shown(f"{record.levelname}: {record.getMessage()}")
            stamp = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="microseconds")
            line = f"{bench} {stamp.replace('+00:00', 'Z')} {resource} {direction} {shown}\n"
            with self._lock:
                if self._stream.closed:
                    return
                self._stream.write(line)
                self._stream.flush()
                self.lines += 1
        except Exception:  # noqa: BLE001 - logging's own policy: a handler never breaks the caller
            self.handleError(record)

    def data(self, resource: str, direction: str, payload: bytes) -> None:
        """Append one line for a byte-stream transfer (UART, SPI), as hex."""
        self.write(resource, direction, payload.hex(" "))

    def close(self) -> None:
        """Close the underlying file."""
        with self._lock:
            if not self._stream.closed:
                self._stream.close()
        super().close()


class LoggedTransport:
    """A `MessageTransport` that passes everything through unchanged and logs it to a `TrafficLog`."""

    def __init__(self, inner: MessageTransport, log: TrafficLog) -> None:
        self.inner = inner
        self.log = log
        self.resource = inner.resource

    def open(self) -> None:
        """Open the wrapped transport."""
        self.log.write(self.resource, "#", "open")
        self._logged(self.inner.open)
        idn = getattr(self.inner, "idn", None)
        if idn:  # the identity check the transport made on opening, before anything else
            self.log.write(self.resource, ">", "*IDN?")
            self.log.write(self.resource, "<", idn)

    def close(self) -> None:
        """Close the wrapped transport."""
        self.log.write(self.resource, "#", "close")
        self.inner.close()

    def write(self, message: str) -> None:
        """Send and log `message`."""
        self.log.write(self.resource, ">", message)
        self._logged(lambda: self.inner.write(message))

    def query(self, message: str) -> str:
        """Send and log `message`, log and return the reply."""
        self.log.write(self.resource, ">", message)
        reply: str = self._logged(lambda: self.inner.query(message))
        self.log.write(self.resource, "<", reply)
        return reply

    def _logged(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as exc:
            self.log.write(self.resource, "!", f"{type(exc).__name__}: {exc}")
            raise


_ACTIVE_LOG: contextvars.ContextVar[TrafficLog | None] = contextvars.ContextVar("traffic_log", default=None)


def active_traffic_log() -> TrafficLog | None:
    """The log that transports built now should write to (see `recording_traffic`), if any."""
    return _ACTIVE_LOG.get()


def logged(transport: MessageTransport) -> MessageTransport:
    """`transport` wrapped in a `LoggedTransport` while a traffic log is active, else unchanged."""
    log = active_traffic_log()
    return transport if log is None else LoggedTransport(transport, log)


@contextlib.contextmanager
def recording_traffic(log: TrafficLog) -> Iterator[TrafficLog]:
    """`with recording_traffic(log): open_bench(...)`: transports built inside log to `log`; pyvisa's warnings
    are written to it too."""
    token = _ACTIVE_LOG.set(log)
    pyvisa_logger = logging.getLogger("pyvisa")
    pyvisa_logger.addHandler(log)
    try:
        yield log
    finally:
        pyvisa_logger.removeHandler(log)
        _ACTIVE_LOG.reset(token)
