"""SPI bus captures in VCD: decode SCLK/MOSI/MISO/CS into transactions, and render transactions back.

Drivers layer; the optional sigrok-cli decoder runs as a subprocess. Imports nothing of the rig.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from vcd.common import TimescaleUnit
from vcd.reader import Token, TokenKind, VCDParseError, tokenize
from vcd.writer import VCDWriter

from drivers.errors import FrameError, InstrumentError, ValidationError
from drivers.spi.codec import SpiTransaction

SIGROK_CLI = "sigrok-cli"
SIGROK_TIMEOUT_S = 300.0

Decoder = Literal["auto", "builtin", "sigrok"]
VcdSource = str | bytes | os.PathLike[str]

# (CPOL, CPHA) of each SPI mode. Data is sampled on the rising clock edge when CPOL == CPHA.
SPI_MODES: dict[int, tuple[int, int]] = {0: (0, 0), 1: (0, 1), 2: (1, 0), 3: (1, 1)}

_UNIT_EXPONENT: dict[TimescaleUnit, int] = {
    TimescaleUnit.second: 0,
    TimescaleUnit.millisecond: 3,
    TimescaleUnit.microsecond: 6,
    TimescaleUnit.nanosecond: 9,
    TimescaleUnit.picosecond: 12,
    TimescaleUnit.femtosecond: 15,
    TimescaleUnit.attosecond: 18,
    TimescaleUnit.zeptosecond: 21,
}
_EXPONENT_UNIT = {exponent: unit for unit, exponent in _UNIT_EXPONENT.items()}

_ROLES = ("clk", "mosi", "miso", "cs")
_ROLE_TEXT = {"clk": "clock", "mosi": "MOSI", "miso": "MISO", "cs": "chip select"}


@dataclass(frozen=True)
class SpiSignalNames:
    """Names of the four SPI signals in a capture (bare or dotted with their scope) and CS polarity."""

    clk: str = "clk"
    mosi: str = "mosi"
    miso: str = "miso"
    cs: str = "cs"
    cs_active_low: bool = True

    def of(self, role: str) -> str:
        """The capture's name for a role: 'clk', 'mosi', 'miso' or 'cs'."""
        name: str = getattr(self, role)
        return name


DEFAULT_NAMES = SpiSignalNames()


def _pow10(exponent: int) -> int:
    return int(10**exponent)


def sigrok_available() -> bool:
    """True when sigrok-cli is on PATH."""
    return shutil.which(SIGROK_CLI) is not None


def _cpol_cpha(mode: int) -> tuple[int, int]:
    if isinstance(mode, bool) or mode not in SPI_MODES:
        raise ValidationError(f"SPI mode {mode!r} is not 0, 1, 2 or 3")
    return SPI_MODES[mode]


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    magnitude: int
    exponent: int  # one tick is magnitude * 10**-exponent seconds
    ids: dict[str, str]  # role -> VCD id code
    channels: dict[str, str]  # role -> bare variable name, what sigrok-cli calls the channel
    shared_names: frozenset[str]  # bare names that several variables of the capture carry

    def seconds(self, ticks: int) -> float:
        """Capture time (ticks) to seconds."""
        return ticks * self.magnitude / _pow10(self.exponent)


def _tokens(stream: IO[bytes]) -> Iterator[Token]:
    try:
        yield from tokenize(stream)  # type: ignore[arg-type]  # any binary file object has readinto
    except (VCDParseError, ValueError) as exc:
        raise FrameError(f"not a readable VCD capture: {exc}") from exc


def _open_source(source: VcdSource, stack: ExitStack) -> tuple[IO[bytes], Path | None]:
    """A binary stream of the capture, and its path when it is a file."""
    if isinstance(source, bytes):
        return io.BytesIO(source), None
    # VCD text starts with a $keyword (and spans lines); any other str is a path.
    if isinstance(source, str) and (source.lstrip().startswith("$") or "\n" in source):
        return io.BytesIO(source.encode()), None
    path = Path(source)
    return stack.enter_context(path.open("rb")), path


_Variable = tuple[str, str, str, int]  # (full name, bare name, id code, size)


def _declarations(tokens: Iterator[Token]) -> tuple[Any, list[_Variable]]:
    """The header's $timescale (None when missing) and its variables, up to $enddefinitions."""
    timescale = None
    scope: list[str] = []
    variables: list[_Variable] = []
    for token in tokens:
        kind = token.kind
        if kind is TokenKind.TIMESCALE:
            timescale = token.timescale
        elif kind is TokenKind.SCOPE:
            scope.append(token.scope.ident)
        elif kind is TokenKind.UPSCOPE:
            if scope:
                scope.pop()
        elif kind is TokenKind.VAR:
            var = token.var
            variables.append((".".join([*scope, var.reference]), var.reference, var.id_code, var.size))
        elif kind is TokenKind.ENDDEFINITIONS:
            return timescale, variables
        elif kind in (TokenKind.CHANGE_TIME, TokenKind.CHANGE_SCALAR, TokenKind.CHANGE_VECTOR):
            raise FrameError("VCD capture has value changes before $enddefinitions")
    if not variables and timescale is None:
        raise FrameError("not a VCD capture: no header found (empty or other format)")
    raise FrameError("VCD capture ends inside its header (no $enddefinitions): the file is truncated")


def _signal(role: str, wanted: str, variables: list[_Variable]) -> _Variable:
    """The one 1-bit variable a role's name picks (bare or full name), or a FrameError saying what is wrong."""
    matches = [v for v in variables if wanted in (v[0], v[1])]
    if not matches:
        have = ", ".join(v[0] for v in variables) or "no signals"
        raise FrameError(
            f"{_ROLE_TEXT[role]} signal {wanted!r} is not in the VCD capture (it has: {have}); "
            "pass names=SpiSignalNames(...) to match its signal names"
        )
    if len({v[2] for v in matches}) > 1:
        found = ", ".join(v[0] for v in matches)
        raise FrameError(f"signal name {wanted!r} is ambiguous in the VCD capture ({found}): give the full name")
    full, _, _, size = matches[0]
    if size != 1:
        raise FrameError(f"{_ROLE_TEXT[role]} signal {full!r} is {size} bits wide; it must be a 1-bit wire")
    return matches[0]


def _parse_header(tokens: Iterator[Token], names: SpiSignalNames) -> _Header:
    timescale, variables = _declarations(tokens)
    if timescale is None:
        raise FrameError("VCD capture has no $timescale: its times cannot be converted to seconds")
    signals = {role: _signal(role, names.of(role), variables) for role in _ROLES}
    bare_ids: dict[str, set[str]] = {}
    for _, bare, id_code, _ in variables:
        bare_ids.setdefault(bare, set()).add(id_code)
    shared = frozenset(bare for bare, found in bare_ids.items() if len(found) > 1)
    return _Header(timescale.magnitude, _UNIT_EXPONENT[timescale.unit], {r: v[2] for r, v in signals.items()},
                   {r: v[1] for r, v in signals.items()}, shared)


class _Framer:
    """Turns grouped value changes into CS-framed transactions (sans-IO state machine)."""

    def __init__(self, header: _Header, mode: int, names: SpiSignalNames) -> None:
        cpol, cpha = _cpol_cpha(mode)
        self._header = header
        self._names = names
        self._sample_edge = ("0", "1") if cpol == cpha else ("1", "0")
        self._cs_active = "0" if names.cs_active_low else "1"
        self._state = dict.fromkeys(_ROLES, "x")  # unknown until the dump sets them
        self._start: int | None = None  # tick of the CS assertion in progress
        self._bits = 0
        self._mosi = 0
        self._miso = 0
        self.transactions: list[SpiTransaction] = []

    def step(self, tick: int, changes: dict[str, str]) -> None:
        """Apply all changes of one timestamp; samples use the values after them, as sigrok does."""
        old = self._state
        new = {**old, **changes}
        self._state = new
        was_active = old["cs"] == self._cs_active
        is_active = new["cs"] == self._cs_active
        if is_active and not was_active:
            self._start, self._bits, self._mosi, self._miso = tick, 0, 0, 0
        elif was_active and is_active:
            if (old["clk"], new["clk"]) == self._sample_edge:
                self._sample(tick, new)
        elif was_active:
            self._close(tick)

    def _sample(self, tick: int, values: dict[str, str]) -> None:
        for role in ("mosi", "miso"):
            if values[role] not in ("0", "1"):
                raise FrameError(
                    f"{_ROLE_TEXT[role]} signal {self._names.of(role)!r} is {values[role]!r} at "
                    f"{self._header.seconds(tick):.9f} s, where the clock samples it"
                )
        self._mosi = (self._mosi << 1) | (values["mosi"] == "1")
        self._miso = (self._miso << 1) | (values["miso"] == "1")
        self._bits += 1

    def _close(self, tick: int) -> None:
        start, self._start = self._start, None
        if start is None or self._bits == 0:
            return  # a CS pulse without clock edges carries nothing
        if self._bits % 8:
            raise FrameError(
                f"SPI transaction at {self._header.seconds(start):.9f} s ended after {self._bits} clock "
                "edges, not a whole number of bytes: glitch on the clock or CS, or a truncated capture"
            )
        size = self._bits // 8
        self.transactions.append(
            SpiTransaction(
                start_s=self._header.seconds(start),
                end_s=self._header.seconds(tick),
                mosi=self._mosi.to_bytes(size, "big"),
                miso=self._miso.to_bytes(size, "big"),
            )
        )

    def finish(self) -> list[SpiTransaction]:
        """Transactions of the whole capture; FrameError if it ends inside one."""
        if self._start is not None and self._bits:
            raise FrameError(
                f"VCD capture ends inside the SPI transaction begun at "
                f"{self._header.seconds(self._start):.9f} s (CS still asserted): the file is truncated"
            )
        return self.transactions


def _decode_builtin(tokens: Iterator[Token], header: _Header, mode: int,
                    names: SpiSignalNames) -> list[SpiTransaction]:
    roles_of: dict[str, list[str]] = {}
    for role, id_code in header.ids.items():
        roles_of.setdefault(id_code, []).append(role)
    framer = _Framer(header, mode, names)
    tick = 0
    changes: dict[str, str] = {}
    for token in tokens:
        kind = token.kind
        if kind is TokenKind.CHANGE_TIME:
            new_tick = token.time_change
            if changes:
                framer.step(tick, changes)
                changes = {}
            if new_tick < tick:
                raise FrameError(f"VCD capture time goes back from #{tick} to #{new_tick}")
            tick = new_tick
        elif kind is TokenKind.CHANGE_SCALAR:
            scalar = token.scalar_change
            for role in roles_of.get(scalar.id_code, ()):
                changes[role] = scalar.value.lower()
        elif kind is TokenKind.CHANGE_VECTOR:  # some tools dump 1-bit wires as b0/b1
            vector = token.vector_change
            for role in roles_of.get(vector.id_code, ()):
                changes[role] = str(vector.value).lower()
    if changes:
        framer.step(tick, changes)
    return framer.finish()


def _first_tick(tokens: Iterator[Token]) -> int:
    for token in tokens:
        if token.kind is TokenKind.CHANGE_TIME:
            return token.time_change
    raise FrameError("VCD capture has no timestamps after its header: no samples to decode")


def _sigrok_channel(header: _Header, role: str) -> str:
    name = header.channels[role]
    # sigrok-cli splits its -P argument on ':' and '=', and names channels without their scope.
    if ":" in name or "=" in name:
        raise ValidationError(f"signal name {name!r} contains ':' or '=' and cannot be passed to sigrok-cli")
    if name in header.shared_names:
        raise FrameError(
            f"several signals of the VCD capture are called {name!r}; sigrok-cli cannot tell them apart "
            "(it drops the scope): use decoder='builtin'"
        )
    return name


def _decode_sigrok(path: Path, header: _Header, first_tick: int, mode: int,
                   names: SpiSignalNames) -> list[SpiTransaction]:
    cpol, cpha = _cpol_cpha(mode)
    channels = ":".join(f"{role}={_sigrok_channel(header, role)}" for role in _ROLES)
    polarity = "active-low" if names.cs_active_low else "active-high"
    command = [
        SIGROK_CLI, "-I", "vcd", "-i", str(path),
        "-P", f"spi:{channels}:cpol={cpol}:cpha={cpha}:cs_polarity={polarity}",
        # The trace output labels every annotation with its class, so MOSI and MISO never get mixed up.
        "-A", "spi=mosi-transfer:miso-transfer:mosi-data", "--protocol-decoder-jsontrace",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=SIGROK_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise InstrumentError(
            f"sigrok-cli did not finish decoding {path} in {SIGROK_TIMEOUT_S:.0f} s"
        ) from exc
    if done.returncode != 0:
        raise FrameError(
            f"sigrok-cli could not decode {path} (exit {done.returncode}): {done.stderr.strip()}"
        )
    try:
        events: list[dict[str, Any]] = json.loads(done.stdout)["traceEvents"]
    except (ValueError, KeyError, TypeError) as exc:
        raise FrameError(f"sigrok-cli gave no decoder trace for {path}: {done.stderr.strip()}") from exc
    # sigrok-cli counts samples from the first timestamp, one per tick; the trace is in microseconds.
    tick_s = header.magnitude / _pow10(header.exponent)

    def tick_of(event: dict[str, Any]) -> int:
        return first_tick + round(float(event["ts"]) * 1e-6 / tick_s)

    begins: dict[str, list[dict[str, Any]]] = {}
    ends: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        target = begins if event.get("ph") == "B" else ends
        target.setdefault(str(event.get("tid")), []).append(event)
    mosi = begins.get("MOSI transfer", [])
    miso = begins.get("MISO transfer", [])
    closes = ends.get("MOSI transfer", [])
    if len(mosi) != len(miso) or len(closes) != len(mosi):
        raise FrameError(f"sigrok-cli gave {len(mosi)} MOSI and {len(miso)} MISO transfers for {path}")
    transactions: list[SpiTransaction] = []
    for out, back, close in zip(mosi, miso, closes):
        if not out["name"]:
            continue  # a CS pulse without clock edges carries nothing (builtin skips it too)
        start = tick_of(out)
        if tick_of(back) != start:
            raise FrameError(
                f"sigrok-cli's MOSI and MISO transfers at {header.seconds(start):.9f} s do not line up"
            )
        transactions.append(SpiTransaction(
            start_s=header.seconds(start),
            end_s=header.seconds(tick_of(close)),
            mosi=bytes.fromhex(str(out["name"])),
            miso=bytes.fromhex(str(back["name"])),
        ))
    last_end = max((tick_of(e) for e in closes), default=None)
    stray = [e for e in begins.get("MOSI data", []) if last_end is None or tick_of(e) >= last_end]
    if stray:
        raise FrameError(
            f"VCD capture ends inside an SPI transaction ({len(stray)} bytes after the last CS release, "
            f"from {header.seconds(tick_of(stray[0])):.9f} s): the file is truncated, or CS rises on its "
            "very last timestamp, which sigrok-cli does not see (use decoder='builtin')"
        )
    return transactions


def decode_vcd(
    source: VcdSource,
    *,
    mode: int = 1,
    names: SpiSignalNames = DEFAULT_NAMES,
    decoder: Decoder = "auto",
) -> list[SpiTransaction]:
    """CS-framed SPI transactions (times in s) of a VCD capture given as a path, VCD text or bytes."""
    # decoder: 'builtin' parses the VCD here, 'sigrok' runs sigrok-cli's SPI decoder, 'auto' takes
    # sigrok-cli when it is on PATH. Both agree on sound captures; sigrok-cli silently drops an
    # incomplete last byte of a transaction (builtin refuses it) and misses a CS release on the
    # capture's very last timestamp (builtin sees it).
    _cpol_cpha(mode)
    if decoder not in ("auto", "builtin", "sigrok"):
        raise ValidationError(f"decoder {decoder!r} is not 'auto', 'builtin' or 'sigrok'")
    use_sigrok = decoder == "sigrok" or (decoder == "auto" and sigrok_available())
    if decoder == "sigrok" and not sigrok_available():
        raise InstrumentError(
            f"{SIGROK_CLI} is not on PATH: apt-get install sigrok-cli, or use decoder='builtin'"
        )
    with ExitStack() as stack:
        stream, path = _open_source(source, stack)
        tokens = _tokens(stream)
        header = _parse_header(tokens, names)
        if not use_sigrok:
            return _decode_builtin(tokens, header, mode, names)
        first_tick = _first_tick(tokens)
        if path is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="spi-vcd-"))
            path = Path(folder) / "capture.vcd"
            stream.seek(0)
            path.write_bytes(stream.read())
        return _decode_sigrok(path, header, first_tick, mode, names)


# --- writing ---------------------------------------------------------------------------------


def _timescale_for(half_period_s: float) -> tuple[int, int]:
    """(magnitude, exponent) of the coarsest VCD tick that fits a clock half-period well."""
    candidates = [(m, e) for e in sorted(_EXPONENT_UNIT) if e <= 15 for m in (100, 10, 1)]
    for magnitude, exponent in candidates:
        ticks = half_period_s * _pow10(exponent) / magnitude
        if ticks >= 1 and abs(ticks - round(ticks)) <= 1e-9 * ticks:
            return magnitude, exponent
    # No exact fit: a coarse tick keeps the file and sigrok-cli's sample count small, 100 ticks per
    # half-period keep the rounding of the clock under 0.5 %.
    for magnitude, exponent in candidates:
        if half_period_s * _pow10(exponent) / magnitude >= 100:
            return magnitude, exponent
    raise ValidationError(f"clock half-period {half_period_s} s is too short to write as VCD")


def write_vcd(
    transactions: Iterable[SpiTransaction],
    out: IO[str] | str | os.PathLike[str],
    *,
    clock_hz: float,
    mode: int = 1,
    names: SpiSignalNames = DEFAULT_NAMES,
) -> None:
    """Render transactions (times in s) as SCLK/MOSI/MISO/CS waveforms at clock_hz (Hz) to a VCD."""
    # CS is asserted at each start_s and released at end_s, or after the last bit if that is later;
    # a transaction starting less than half a clock period after the previous release is refused.
    cpol, cpha = _cpol_cpha(mode)
    if isinstance(clock_hz, bool) or not isinstance(clock_hz, int | float) or not clock_hz > 0:
        raise ValidationError(f"clock_hz {clock_hz!r} must be a positive frequency in Hz")
    half_s = 1 / (2 * clock_hz)
    magnitude, exponent = _timescale_for(half_s)
    tick_s = magnitude / _pow10(exponent)
    active, idle = (0, 1) if names.cs_active_low else (1, 0)

    def to_tick(seconds: float) -> int:
        return round(seconds / tick_s)

    # Every event is planned (and every transaction checked) before anything is written. Edge times
    # are rounded one by one from seconds, so a clock that is not a whole number of ticks never drifts.
    events: list[tuple[int, str, int]] = []
    earliest_s = half_s  # the first CS assertion must follow some idle bus
    for index, txn in enumerate(transactions):
        where = f"transaction {index} at {txn.start_s} s"
        if not txn.mosi:
            raise ValidationError(f"{where} has no bytes to clock")
        if len(txn.miso) != len(txn.mosi):
            raise ValidationError(
                f"{where} has {len(txn.mosi)} MOSI and {len(txn.miso)} MISO bytes; full duplex needs equal"
            )
        start_s = txn.start_s
        if to_tick(start_s) < to_tick(earliest_s):
            raise ValidationError(
                f"{where} starts before {earliest_s} s: CS must stay released for half a clock "
                f"period ({half_s} s) before each transaction and after the previous one"
            )
        events.append((to_tick(start_s), "cs", active))
        for bit in range(8 * len(txn.mosi)):
            leading_s = start_s + (2 * bit + 1) * half_s
            # CPHA 0 presents each bit half a period before its (leading) sampling edge,
            # CPHA 1 shifts it out on the leading edge to be sampled on the trailing one.
            data_at = to_tick(leading_s - half_s if cpha == 0 else leading_s)
            shift = 7 - bit % 8
            events.append((data_at, "mosi", (txn.mosi[bit // 8] >> shift) & 1))
            events.append((data_at, "miso", (txn.miso[bit // 8] >> shift) & 1))
            events.append((to_tick(leading_s), "clk", 1 - cpol))
            events.append((to_tick(leading_s + half_s), "clk", cpol))
        end_s = max(txn.end_s, start_s + (16 * len(txn.mosi) + 1) * half_s)
        events.append((to_tick(end_s), "cs", idle))
        earliest_s = end_s + half_s
    events.sort(key=lambda event: event[0])  # stable: same-tick events keep their planned order

    with ExitStack() as stack:
        stream: IO[str] = (
            stack.enter_context(open(out, "w", encoding="ascii", newline="\n"))
            if isinstance(out, str | os.PathLike) else out
        )
        writer = VCDWriter(stream, timescale=(magnitude, _EXPONENT_UNIT[exponent].value), date="",
                           version="meter-hil-rig drivers.spi.vcd")
        scope_vars = {}
        initial = {"clk": cpol, "mosi": 0, "miso": 0, "cs": idle}
        for role in _ROLES:
            scope, _, name = names.of(role).rpartition(".")
            scope_vars[role] = writer.register_var(scope or "spi", name, "wire", size=1, init=initial[role])
        for at, role, value in events:
            writer.change(scope_vars[role], at, value)
        # A trailing idle sample: sigrok-cli does not see a change on the capture's last timestamp.
        writer.close(to_tick(earliest_s))
