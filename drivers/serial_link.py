"""What every request/reply meter link has in common, whatever protocol it speaks (drivers layer): its port's
lifecycle over any pyserial URL (or a port a factory gives, BLE), bytes read and sent with the traffic log, the
line occupied for the wire time of what was sent and answered, and reply latency and byte gaps in bench time.

Used by `drivers.dlt645.link` and `drivers.dlt698.link`; time comes from the injected clock, never slept on
directly. Imports nothing above the drivers layer.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Sequence
from typing import ClassVar, Final, Protocol

from drivers.clock import Clock
from drivers.errors import InstrumentError, LinkError, NotOpenError, ValidationError
from drivers.retry import RetryPolicy
from drivers.serial_transport import LineSettings, SerialPort, bytes_arriving, carries_baud

__all__ = ["POLL_WALL_S", "AttemptsTiming", "PortFactory", "ReplyTiming", "SerialLink", "TrafficHook"]

# How often the receive loop looks at the port (a read's wall timeout, and the clock's poll while it waits for
# bytes). The limits apply to bench time, on the injected clock, which alone decides how time passes.
POLL_WALL_S: Final = 0.01

PortFactory = Callable[[str, LineSettings], SerialPort]
# (port URL, direction '>' sent / '<' received, bytes): where a run's traffic log takes UART bytes.
TrafficHook = Callable[[str, str, bytes], None]


class ReplyTiming:
    """Latency and byte gaps of one attempt, from when its request left (`sent_at_s`), the bench times of its
    reads (`chunks`) and when the read holding the reply's first byte returned (`reply_at_s`)."""

    sent_at_s: float
    chunks: tuple[tuple[float, bytes], ...]
    reply_at_s: float | None

    @property
    def received(self) -> bytes:
        """Every byte received after the request."""
        return b"".join(data for _, data in self.chunks)

    @property
    def _heard_from(self) -> float | None:
        """When the reply's first byte came (without a reply: the first byte heard)."""
        return self.reply_at_s if self.reply_at_s is not None else next((t for t, _ in self.chunks), None)

    @property
    def latency_s(self) -> float | None:
        """Bench time from the end of the request to the first byte of the reply (an echo of the request on a
        two-wire line does not count), s; without a reply, to the first byte heard (None: nothing)."""
        start = self._heard_from
        return None if start is None else start - self.sent_at_s

    @property
    def max_gap_s(self) -> float | None:
        """Largest bench time between two reads that returned bytes of the reply, s (None: no bytes)."""
        start = self._heard_from
        times = [t for t, _ in self.chunks if start is not None and t >= start]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0) if times else None


class _Bad(Protocol):
    @property
    def reason(self) -> str: ...


class _Heard(Protocol):
    @property
    def latency_s(self) -> float | None: ...
    @property
    def max_gap_s(self) -> float | None: ...
    @property
    def bad_frames(self) -> Sequence[_Bad]: ...
    @property
    def noise_bytes(self) -> int: ...


class AttemptsTiming:
    """What an exchange's `attempts` say whatever the protocol: the last one's timing, and what was malformed
    or noise in each, in words."""

    attempts: Sequence[_Heard]

    @property
    def latency_s(self) -> float | None:
        """Reply latency of the last attempt, s."""
        return self.attempts[-1].latency_s if self.attempts else None

    @property
    def max_gap_s(self) -> float | None:
        """Largest gap between received bytes of the last attempt's reply, s (None: nothing heard)."""
        return self.attempts[-1].max_gap_s if self.attempts else None

    def line_problems(self) -> list[str]:
        """Each attempt's malformed frames and line noise, in words (the attempt named when there were several)."""
        out: list[str] = []
        for number, attempt in enumerate(self.attempts, 1):
            where = f" (attempt {number})" if len(self.attempts) > 1 else ""
            out += [f"malformed reply{where}: {bad.reason}" for bad in attempt.bad_frames]
            if attempt.noise_bytes:
                out.append(f"{attempt.noise_bytes} byte(s) of line noise around the reply{where}")
        return out


class SerialLink:
    """The port and timing half of a meter link. Nothing opens in `__init__`; `open()` and `close()` are
    explicit, and a port lost to a fault is opened again at the next request."""

    kind: ClassVar[str] = "meter link"  # how messages name the link, before its URL

    def __init__(self, url: str, clock: Clock, *, line: LineSettings, reply_timeout_s: float,
                 inter_byte_timeout_s: float, retries: int, preamble: int, port_factory: PortFactory,
                 traffic: TrafficHook | None, retry: RetryPolicy | None) -> None:
        if retries < 0 or reply_timeout_s <= 0 or inter_byte_timeout_s <= 0:
            raise ValidationError("retries must be >= 0 and the timeouts positive")
        self.url = url
        self.line = line
        self.reply_timeout_s = reply_timeout_s
        self.inter_byte_timeout_s = inter_byte_timeout_s
        self.retries = retries
        self.preamble = preamble
        self.retry = retry  # reopens the port when it breaks (bench faults)
        self._clock = clock
        self._factory = port_factory
        self._traffic = traffic
        self._port: SerialPort | None = None
        self._opened = False  # between open() and close(), whether or not the port survived
        self._line_free_at = -1e18  # bench time the line is free of the last transmission

    # ---- lifecycle

    @property
    def is_open(self) -> bool:
        """True between open() and close() (a port lost to a fault is opened again at the next request)."""
        return self._opened

    def open(self) -> None:
        """Open the port with the link's line settings; a second call is a no-op."""
        if self._port is None:
            self._port = self._factory(self.url, self.line)
        self._opened = True

    def close(self) -> None:
        """Close the port; safe to call when closed."""
        self._opened = False
        self._drop_port()

    def _drop_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(Exception):  # closing a dead port must not mask why we close it
                port.close()

    def _require(self) -> SerialPort:
        if not self._opened:
            raise NotOpenError(f"{self.kind} {self.url} is not open: call open() first")
        if self._port is None:
            # Lost to a bench fault and not back when last tried: try again (LinkError while it stays gone).
            self._port = self._factory(self.url, self.line)
        return self._port

    def _reopen(self) -> None:
        self._drop_port()
        self._require()

    @property
    def carries_baud(self) -> bool:
        """False when the port has no baud rate (socket://, loop://, BLE)."""
        return carries_baud(self.url)

    def _wire_time_s(self, nbytes: int) -> float:
        """Time `nbytes` occupy the line (a link without a wire rate says none)."""
        return self.line.wire_time_s(nbytes)

    # ---- bytes on the line

    def _read(self, port: SerialPort) -> bytes:
        try:
            data = port.read(max(1, port.in_waiting))
        except Exception as exc:  # noqa: BLE001 - pyserial raises several types for a port that went away
            raise LinkError(f"{self.url}: reading failed: {exc}") from None
        if data and self._traffic is not None:
            self._traffic(self.url, "<", data)
        return data

    def _wait_for_bytes(self, port: SerialPort, timeout_s: float) -> None:
        """Let bench time pass on the clock until bytes arrive at `port` or `timeout_s` passes. The clock alone
        decides how (a twin answers what it was sent before any time passes)."""
        self._clock.wait_until(lambda: bytes_arriving(port), timeout_s=timeout_s, poll_s=POLL_WALL_S)

    def _send(self, port: SerialPort, raw: bytes) -> float:
        """Send `raw`; the bench time its last byte leaves the host (after anything still queued)."""
        start = max(self._clock.now(), self._line_free_at)
        if self._traffic is not None:
            self._traffic(self.url, ">", raw)
        try:
            port.write(raw)
        except InstrumentError:
            raise  # the port's own verdict, already named (a BLE port: the meter's service is missing)
        except Exception as exc:  # noqa: BLE001
            raise LinkError(f"{self.url}: writing failed: {exc}") from None
        self._line_free_at = start + self._wire_time_s(len(raw))
        return self._line_free_at

    def _reply_on_line(self, chunks: list[tuple[float, bytes]], reply_at: float | None) -> None:
        """The reply occupies the line for its wire time from its first byte."""
        if reply_at is not None:
            nbytes = sum(len(d) for t, d in chunks if t >= reply_at)
            self._line_free_at = max(self._line_free_at, reply_at + self._wire_time_s(nbytes))
