"""SPI bus captures in VCD: decode SCLK/MOSI/MISO/CS into transactions, and render transactions back.

Drivers layer; imports nothing of the rig. The header is read by drivers.spi.vcd_header, the optional sigrok-cli
decoder runs as a subprocess in drivers.spi.vcd_sigrok.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Literal

from vcd.reader import Token, TokenKind
from vcd.writer import VCDWriter

from drivers.errors import FrameError, InstrumentError, ValidationError
from drivers.spi.codec import SpiTransaction
from drivers.spi.vcd_header import (
    DEFAULT_NAMES,
    EXPONENT_UNIT,
    ROLE_TEXT,
    ROLES,
    SpiSignalNames,
    VcdHeader,
    cpol_cpha,
    first_tick,
    parse_header,
    pow10,
    read_tokens,
)
from drivers.spi.vcd_sigrok import SIGROK_CLI, decode_sigrok, sigrok_available

__all__ = ["DEFAULT_NAMES", "Decoder", "SpiSignalNames", "VcdSource", "decode_vcd", "sigrok_available", "write_vcd"]

Decoder = Literal["auto", "builtin", "sigrok"]
VcdSource = str | bytes | os.PathLike[str]

# --- reading ---------------------------------------------------------------------------------


def _open_source(source: VcdSource, stack: ExitStack) -> tuple[IO[bytes], Path | None]:
    """A binary stream of the capture, and its path when it is a file."""
    if isinstance(source, bytes):
        return io.BytesIO(source), None
    # VCD text starts with a $keyword (and spans lines); any other str is a path.
    if isinstance(source, str) and (source.lstrip().startswith("$") or "\n" in source):
        return io.BytesIO(source.encode()), None
    path = Path(source)
    return stack.enter_context(path.open("rb")), path


class _Framer:
    """Turns grouped value changes into CS-framed transactions (sans-IO state machine)."""

    def __init__(self, header: VcdHeader, mode: int, names: SpiSignalNames) -> None:
        cpol, cpha = cpol_cpha(mode)
        self._header = header
        self._names = names
        self._sample_edge = ("0", "1") if cpol == cpha else ("1", "0")
        self._cs_active = "0" if names.cs_active_low else "1"
        self._state = dict.fromkeys(ROLES, "x")  # unknown until the dump sets them
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
                    f"{ROLE_TEXT[role]} signal {self._names.of(role)!r} is {values[role]!r} at "
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


def _decode_builtin(tokens: Iterator[Token], header: VcdHeader, mode: int,
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
    cpol_cpha(mode)
    if decoder not in ("auto", "builtin", "sigrok"):
        raise ValidationError(f"decoder {decoder!r} is not 'auto', 'builtin' or 'sigrok'")
    use_sigrok = decoder == "sigrok" or (decoder == "auto" and sigrok_available())
    if decoder == "sigrok" and not sigrok_available():
        raise InstrumentError(
            f"{SIGROK_CLI} is not on PATH: apt-get install sigrok-cli, or use decoder='builtin'"
        )
    with ExitStack() as stack:
        stream, path = _open_source(source, stack)
        tokens = read_tokens(stream)
        header = parse_header(tokens, names)
        if not use_sigrok:
            return _decode_builtin(tokens, header, mode, names)
        start_tick = first_tick(tokens)
        if path is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="spi-vcd-"))
            path = Path(folder) / "capture.vcd"
            stream.seek(0)
            path.write_bytes(stream.read())
        return decode_sigrok(path, header, start_tick, mode, names)


# --- writing ---------------------------------------------------------------------------------


def _timescale_for(half_period_s: float) -> tuple[int, int]:
    """(magnitude, exponent) of the coarsest VCD tick that fits a clock half-period well."""
    candidates = [(m, e) for e in sorted(EXPONENT_UNIT) if e <= 15 for m in (100, 10, 1)]
    for magnitude, exponent in candidates:
        ticks = half_period_s * pow10(exponent) / magnitude
        if ticks >= 1 and abs(ticks - round(ticks)) <= 1e-9 * ticks:
            return magnitude, exponent
    # No exact fit: a coarse tick keeps the file and sigrok-cli's sample count small, 100 ticks per
    # half-period keep the rounding of the clock under 0.5 %.
    for magnitude, exponent in candidates:
        if half_period_s * pow10(exponent) / magnitude >= 100:
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
    cpol, cpha = cpol_cpha(mode)
    if isinstance(clock_hz, bool) or not isinstance(clock_hz, int | float) or not clock_hz > 0:
        raise ValidationError(f"clock_hz {clock_hz!r} must be a positive frequency in Hz")
    half_s = 1 / (2 * clock_hz)
    magnitude, exponent = _timescale_for(half_s)
    tick_s = magnitude / pow10(exponent)
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
        writer = VCDWriter(stream, timescale=(magnitude, EXPONENT_UNIT[exponent].value), date="",
                           version="meter-hil-rig drivers.spi.vcd")
        scope_vars = {}
        initial = {"clk": cpol, "mosi": 0, "miso": 0, "cs": idle}
        for role in ROLES:
            scope, _, name = names.of(role).rpartition(".")
            scope_vars[role] = writer.register_var(scope or "spi", name, "wire", size=1, init=initial[role])
        for at, role, value in events:
            writer.change(scope_vars[role], at, value)
        # A trailing idle sample: sigrok-cli does not see a change on the capture's last timestamp.
        writer.close(to_tick(earliest_s))
