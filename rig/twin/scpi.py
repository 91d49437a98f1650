"""A small SCPI instrument server for the twin: a command table over the syntax of rig.twin.scpi_syntax, the
IEEE 488.2 mandatory common commands and status reporting (error queue, standard event status register, status
byte, enable registers), and a loopback TCP server (one line in, one line out, bench faults applied).

Twin side only; the rig's drivers reach it through pyvisa-py like any socket instrument.
"""

from __future__ import annotations

import random
import re
import socket
import socketserver
import struct
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from rig.twin.scpi_syntax import (
    DATA_OUT_OF_RANGE,
    ESR_OPERATION_COMPLETE,
    ESR_POWER_ON,
    QUEUE_OVERFLOW,
    STATUS_READS,
    STB_ERROR_QUEUE,
    STB_EVENT_SUMMARY,
    STB_MASTER_SUMMARY,
    STB_MESSAGE_AVAILABLE,
    SYSTEM_ERROR,
    UNDEFINED_HEADER,
    Handler,
    Request,
    ScpiFault,
    compile_header,
    event_bit,
)
from rig.twin.world import World

if TYPE_CHECKING:
    from rig.twin.faults import FaultSchedule


class ScpiDevice:
    """A command table plus the IEEE 488.2 mandatory common commands, status reporting and an error
    queue of 10 entries."""

    QUEUE_DEPTH = 10

    def __init__(self, world: World, idn: str, latency_s: float) -> None:
        self.world = world
        self.idn = idn
        self.latency_s = latency_s
        self.personality = ""  # the bench file's driver name whose command set it speaks (`speak`)
        self.errors: deque[tuple[int, str]] = deque()
        # Standard event status register (*ESR? reads and clears it; *CLS clears it); set at power-on.
        self.esr = ESR_POWER_ON
        self.ese = 0  # standard event status enable (*ESE): which events make the ESB summary bit
        self.sre = 0  # service request enable (*SRE): which status byte bits make the MSS bit
        self._table: list[tuple[re.Pattern[str], Handler]] = []
        self._pending_replies: list[str] = []  # replies of the line being executed (the output queue)
        self.command("*IDN", lambda r: self.idn)
        self.command("*ESR", self._read_esr)
        self.command("*ESE", lambda r: self._register(r, "ese"))
        self.command("*SRE", lambda r: self._register(r, "sre"))
        self.command("*STB", self._read_stb)
        self.command("*CLS", self._cls)
        self.command("*RST", self._rst)
        self.command("*OPC", self._opc)
        self.command("*WAI", lambda r: r.no_args())  # every command runs to completion before the next
        self.command("*TST", self._self_test)
        self.command("SYSTem:ERRor[:NEXT]", self._next_error)
        self.command("SYSTem:ERRor:COUNt", lambda r: str(len(self.errors)))

    def command(self, pattern: str, handler: Handler) -> None:
        """Register a handler for a header pattern."""
        self._table.append((compile_header(pattern), handler))

    def speak(self, personalities: Mapping[str, Callable[[Any], None]], personality: str, what: str) -> None:
        """Register the command set of `personality` (a bench file's driver name) from `personalities`."""
        try:
            commands = personalities[personality]
        except KeyError:
            raise ValueError(f"the twin's {what} does not speak {personality!r}; it speaks: "
                             f"{', '.join(personalities)}") from None
        self.personality = personality
        commands(self)

    def push_error(self, code: int, message: str) -> None:
        """Queue an error and set its event status bit; a full queue keeps the oldest and ends with -350."""
        self.esr |= event_bit(code)
        if len(self.errors) >= self.QUEUE_DEPTH:
            self.errors[-1] = QUEUE_OVERFLOW
            return
        self.errors.append((code, message))

    def _next_error(self, request: Request) -> str:
        code, message = self.errors.popleft() if self.errors else (0, "No error")
        return f'{code},"{message}"'

    def _cls(self, request: Request) -> None:
        self.errors.clear()
        self.esr = 0

    def _read_esr(self, request: Request) -> str:
        self._query_only(request)
        value, self.esr = self.esr, 0
        return str(value)

    def status_byte(self) -> int:
        """The status byte as *STB? reads it (reading does not clear it)."""
        stb = STB_ERROR_QUEUE if self.errors else 0
        if self._pending_replies:
            stb |= STB_MESSAGE_AVAILABLE
        if self.esr & self.ese:
            stb |= STB_EVENT_SUMMARY
        if stb & self.sre & ~STB_MASTER_SUMMARY:
            stb |= STB_MASTER_SUMMARY
        return stb

    def _read_stb(self, request: Request) -> str:
        self._query_only(request)
        return str(self.status_byte())

    def _register(self, request: Request, name: str) -> str | None:
        if request.query:
            request.no_args()
            return str(getattr(self, name))
        value = request.number(0, 255)
        if value != int(value):
            raise ScpiFault(*DATA_OUT_OF_RANGE)
        setattr(self, name, int(value) & ~(STB_MASTER_SUMMARY if name == "sre" else 0))
        return None

    def _opc(self, request: Request) -> str | None:
        request.no_args()
        if request.query:
            return "1"
        self.esr |= ESR_OPERATION_COMPLETE  # nothing runs in the background: complete at once
        return None

    def _self_test(self, request: Request) -> str:
        self._query_only(request)
        return str(self.self_test())

    def self_test(self) -> int:
        """`*TST?`: 0 when the self-test passes, else the number of failures (subclasses extend)."""
        return 0

    @staticmethod
    def _query_only(request: Request) -> None:
        request.no_args()
        if not request.query:
            raise ScpiFault(*UNDEFINED_HEADER)

    def _rst(self, request: Request) -> None:
        self.reset()

    def reset(self) -> None:
        """`*RST`: the instrument's power-on state (subclasses extend)."""

    def handle_line(self, line: str) -> str | None:
        """Execute one line (units separated by ';'); the joined replies, or None when nothing is queried."""
        replies: list[str] = []
        self._pending_replies = replies
        with self.world.lock:
            # Status-register reads are answered by the interface at once, not by the measuring engine: the
            # rig's restart checks (*ESR?) leave bench time, and so the twin's values, as they were.
            if self.latency_s and line.strip().upper() not in STATUS_READS:
                self.world.advance(self.latency_s)
            for unit in line.split(";"):
                unit = unit.strip()
                if not unit:
                    continue
                try:
                    reply = self._dispatch(unit)
                except ScpiFault as fault:
                    self.push_error(fault.code, fault.message)
                    continue
                if reply is not None:
                    replies.append(reply)
            self._pending_replies = []
        return ";".join(replies) if replies else None

    def _dispatch(self, unit: str) -> str | None:
        header, _, rest = unit.partition(" ")
        header = header.lstrip(":")
        args = [a.strip() for a in rest.split(",")] if rest.strip() else []
        for pattern, handler in self._table:
            match = pattern.match(header)
            if match is None:
                continue
            query = header.endswith("?")
            digits = [g for g in match.groups()[:-1] if g is not None]
            suffix = int(digits[0]) if digits and digits[0] else (1 if digits else None)
            return handler(Request(header=header, query=query, args=args, suffix=suffix))
        raise ScpiFault(*UNDEFINED_HEADER)


class _LineHandler(socketserver.StreamRequestHandler):
    server: ScpiTcpServer

    def setup(self) -> None:
        super().setup()
        # Without TCP_NODELAY every reply waits ~40 ms for Nagle's algorithm.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        device = self.server.device
        faults = self.server.faults
        name = self.server.name
        withheld = b""  # a delayed reply: it goes out before the next one, as a late reply would
        for raw in self.rfile:
            try:
                line = raw.decode("ascii").strip()
            except UnicodeDecodeError:
                device.push_error(-101, "Invalid character")
                continue
            delayed = garbled = None
            if faults is not None:
                if faults.active("scpi_drop", name, note=f"connection reset at {line!r}"):
                    self._reset_connection()
                    return
                if faults.active("scpi_error_queue", name, note=f"device error queued at {line!r}"):
                    with device.world.lock:
                        device.push_error(*SYSTEM_ERROR)
                delayed = faults.active("scpi_delay", name, note=f"reply to {line!r} delayed")
                garbled = faults.active("scpi_garble", name, note=f"reply to {line!r} garbled")
            reply = device.handle_line(line)
            if reply is None:
                continue
            data = reply.encode("ascii")
            if garbled is not None and data:
                data = _garble(data, self.server.rng)
            if delayed is not None:
                withheld += data + b"\n"
                continue
            try:
                self.wfile.write(withheld + data + b"\n")
                self.wfile.flush()
            except OSError:
                return
            withheld = b""

    def _reset_connection(self) -> None:
        """Drop the connection as a crashed instrument or a pulled cable does: a TCP reset, at once."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


def _garble(data: bytes, rng: random.Random) -> bytes:
    """A reply damaged on the way: some characters with their top bit set (never a valid ASCII reply)."""
    out = bytearray(data)
    hits = {rng.randrange(len(out))} | {i for i in range(len(out)) if rng.random() < 0.3}
    for i in hits:
        out[i] |= 0x80
    return bytes(out)


class ScpiTcpServer(socketserver.ThreadingTCPServer):
    """Serves one ScpiDevice on a loopback TCP port (0 = any free port)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, device: ScpiDevice, port: int = 0, *, faults: FaultSchedule | None = None,
                 name: str = "", rng: random.Random | None = None) -> None:
        self.device = device
        self.faults = faults  # bench faults of the twin (twin.faults), by instrument `name`
        self.name = name
        self.rng = rng if rng is not None else random.Random(name)
        super().__init__(("127.0.0.1", port), _LineHandler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        return int(self.server_address[1])

    @property
    def resource(self) -> str:
        """The VISA resource string that reaches it through pyvisa-py."""
        return f"TCPIP::127.0.0.1::{self.port}::SOCKET"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), name=f"scpi:{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
