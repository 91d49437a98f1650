"""A small SCPI instrument server for the twin: header matching (short/long forms, optional nodes,
numeric suffixes), numbers with unit suffixes, the IEEE 488.2 mandatory common commands and status
reporting (error queue, standard event status register, status byte, enable registers), and a loopback
TCP server (one line in, one line out).

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rig.twin.world import World

if TYPE_CHECKING:
    from rig.twin.faults import FaultSchedule


class ScpiFault(Exception):
    """A command the instrument rejects; goes to the error queue with its SCPI code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code},\"{message}\"")
        self.code = code
        self.message = message


# Standard SCPI error codes (SCPI-99 vol. 2, chapter 21).
UNDEFINED_HEADER = (-113, "Undefined header")
MISSING_PARAMETER = (-109, "Missing parameter")
PARAMETER_NOT_ALLOWED = (-108, "Parameter not allowed")
DATA_TYPE_ERROR = (-104, "Data type error")
DATA_OUT_OF_RANGE = (-222, "Data out of range")
ILLEGAL_PARAMETER = (-224, "Illegal parameter value")
SETTINGS_CONFLICT = (-221, "Settings conflict")
QUEUE_OVERFLOW = (-350, "Queue overflow")
QUERY_UNTERMINATED = (-420, "Query UNTERMINATED")
SYSTEM_ERROR = (-310, "System error")  # device-specific: what a twin with a filling error queue reports
INVALID_SUFFIX = (-131, "Invalid suffix")
SUFFIX_NOT_ALLOWED = (-138, "Suffix not allowed")

# IEEE 488.2 standard event status register (*ESR?), bit by bit (IEEE 488.2 11.5.1).
ESR_OPERATION_COMPLETE = 0x01
ESR_QUERY_ERROR = 0x04
ESR_DEVICE_ERROR = 0x08
ESR_EXECUTION_ERROR = 0x10
ESR_COMMAND_ERROR = 0x20
ESR_POWER_ON = 0x80  # the instrument restarted since the register was last read
# Status byte (*STB?): SCPI error/event queue not empty, message available, standard event summary,
# master summary status (IEEE 488.2 11.2; SCPI-99 vol. 1, 9.1).
STB_ERROR_QUEUE = 0x04
STB_MESSAGE_AVAILABLE = 0x10
STB_EVENT_SUMMARY = 0x20
STB_MASTER_SUMMARY = 0x40
_STATUS_READS = ("*ESR?", "*STB?", "*ESE?", "*SRE?")

# SCPI error code ranges and the event status bit each one sets (SCPI-99 vol. 2, 21.8).
_ERROR_CLASSES = ((-199, -100, ESR_COMMAND_ERROR), (-299, -200, ESR_EXECUTION_ERROR),
                  (-399, -300, ESR_DEVICE_ERROR), (-499, -400, ESR_QUERY_ERROR))

# Unit-suffix multipliers (IEEE 488.2 7.7.3.3): MA is mega, M is milli; MHZ and MOHM are the two exceptions.
_MULTIPLIERS = {"EX": 1e18, "PE": 1e15, "T": 1e12, "G": 1e9, "MA": 1e6, "K": 1e3, "M": 1e-3, "U": 1e-6,
                "N": 1e-9, "P": 1e-12, "F": 1e-15, "A": 1e-18}
_MEGA_UNITS = {"MHZ": ("HZ", 1e6), "MOHM": ("OHM", 1e6)}
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*$")


def parse_number(text: str, unit: str | None = None) -> float:
    """A <decimal numeric program data> with an optional unit suffix (`unit`: the base unit the
    setting takes, e.g. 'V'; None: no suffix allowed). ScpiFault -104/-131/-138 when it is not one."""
    match = _NUMBER.match(text)
    if match is None:
        raise ScpiFault(*DATA_TYPE_ERROR)
    value = float(match.group(1))
    suffix = match.group(2).upper()
    if not suffix:
        return value
    if unit is None:
        raise ScpiFault(*SUFFIX_NOT_ALLOWED)
    base = unit.upper()
    if suffix in _MEGA_UNITS and _MEGA_UNITS[suffix][0] == base:
        return value * _MEGA_UNITS[suffix][1]
    if suffix == base:
        return value
    prefix = suffix.removesuffix(base) if suffix.endswith(base) else None
    if prefix and prefix in _MULTIPLIERS:
        return value * _MULTIPLIERS[prefix]
    raise ScpiFault(*INVALID_SUFFIX)


def event_bit(code: int) -> int:
    """The standard event status bit an error code sets (device-specific for positive codes)."""
    for low, high, bit in _ERROR_CLASSES:
        if low <= code <= high:
            return bit
    return ESR_DEVICE_ERROR if code > 0 else 0

_TOKEN = re.compile(r"\[|\]|:|[A-Za-z]+#?|\*[A-Za-z]+\??")


def compile_header(pattern: str) -> re.Pattern[str]:
    """Regex for a SCPI header pattern such as `[SOURce:]VOLTage[:LEVel]` or `CALCulate#:ERRor`."""
    out = []
    for token in _TOKEN.findall(pattern):
        if token == "[":
            out.append("(?:")
        elif token == "]":
            out.append(")?")
        elif token == ":":
            out.append(":")
        elif token.startswith("*"):
            out.append(re.escape(token.upper()))
        else:
            suffix = token.endswith("#")
            word = token.rstrip("#")
            short = "".join(c for c in word if c.isupper())
            out.append(f"(?:{short}|{word.upper()})" if short != word.upper() else word.upper())
            if suffix:
                out.append(r"(\d*)")
    return re.compile("".join(out) + r"(\?)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Request:
    """One parsed program message unit."""

    header: str
    query: bool
    args: list[str]
    suffix: int | None

    def number(self, low: float | None = None, high: float | None = None, unit: str | None = None) -> float:
        """The single numeric argument (with a suffix in `unit` or a multiple of it), range-checked."""
        if len(self.args) != 1:
            raise ScpiFault(*(MISSING_PARAMETER if not self.args else PARAMETER_NOT_ALLOWED))
        value = parse_number(self.args[0], unit)
        if (low is not None and value < low) or (high is not None and value > high):
            raise ScpiFault(*DATA_OUT_OF_RANGE)
        return value

    def boolean(self) -> bool:
        """The single ON/OFF/1/0 argument."""
        if len(self.args) != 1:
            raise ScpiFault(*(MISSING_PARAMETER if not self.args else PARAMETER_NOT_ALLOWED))
        word = self.args[0].upper()
        if word in ("ON", "1"):
            return True
        if word in ("OFF", "0"):
            return False
        raise ScpiFault(*ILLEGAL_PARAMETER)

    def no_args(self) -> None:
        """Reject arguments where none are allowed."""
        if self.args:
            raise ScpiFault(*PARAMETER_NOT_ALLOWED)


Handler = Callable[[Request], str | None]


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
            if self.latency_s and line.strip().upper() not in _STATUS_READS:
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
