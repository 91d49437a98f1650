"""The header of a VCD capture of an SPI bus: which variables are the clock, MOSI, MISO and chip select, and
the capture's timescale (drivers layer; imports nothing of the rig)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from vcd.common import TimescaleUnit
from vcd.reader import Token, TokenKind, VCDParseError, tokenize

from drivers.errors import FrameError, ValidationError

# (CPOL, CPHA) of each SPI mode. Data is sampled on the rising clock edge when CPOL == CPHA.
SPI_MODES: dict[int, tuple[int, int]] = {0: (0, 0), 1: (0, 1), 2: (1, 0), 3: (1, 1)}

UNIT_EXPONENT: dict[TimescaleUnit, int] = {
    TimescaleUnit.second: 0,
    TimescaleUnit.millisecond: 3,
    TimescaleUnit.microsecond: 6,
    TimescaleUnit.nanosecond: 9,
    TimescaleUnit.picosecond: 12,
    TimescaleUnit.femtosecond: 15,
    TimescaleUnit.attosecond: 18,
    TimescaleUnit.zeptosecond: 21,
}
EXPONENT_UNIT = {exponent: unit for unit, exponent in UNIT_EXPONENT.items()}

ROLES = ("clk", "mosi", "miso", "cs")
ROLE_TEXT = {"clk": "clock", "mosi": "MOSI", "miso": "MISO", "cs": "chip select"}


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


def pow10(exponent: int) -> int:
    """10**exponent as an int (exact tick arithmetic)."""
    return int(10**exponent)


def cpol_cpha(mode: int) -> tuple[int, int]:
    """(CPOL, CPHA) of SPI mode `mode`; ValidationError for anything but 0..3."""
    if isinstance(mode, bool) or mode not in SPI_MODES:
        raise ValidationError(f"SPI mode {mode!r} is not 0, 1, 2 or 3")
    return SPI_MODES[mode]


@dataclass(frozen=True)
class VcdHeader:
    magnitude: int
    exponent: int  # one tick is magnitude * 10**-exponent seconds
    ids: dict[str, str]  # role -> VCD id code
    channels: dict[str, str]  # role -> bare variable name, what sigrok-cli calls the channel
    shared_names: frozenset[str]  # bare names that several variables of the capture carry

    def seconds(self, ticks: int) -> float:
        """Capture time (ticks) to seconds."""
        return ticks * self.magnitude / pow10(self.exponent)


def read_tokens(stream: IO[bytes]) -> Iterator[Token]:
    """The capture's VCD tokens; FrameError when it is not readable VCD."""
    try:
        yield from tokenize(stream)  # type: ignore[arg-type]  # any binary file object has readinto
    except (VCDParseError, ValueError) as exc:
        raise FrameError(f"not a readable VCD capture: {exc}") from exc


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
            f"{ROLE_TEXT[role]} signal {wanted!r} is not in the VCD capture (it has: {have}); "
            "pass names=SpiSignalNames(...) to match its signal names"
        )
    if len({v[2] for v in matches}) > 1:
        found = ", ".join(v[0] for v in matches)
        raise FrameError(f"signal name {wanted!r} is ambiguous in the VCD capture ({found}): give the full name")
    full, _, _, size = matches[0]
    if size != 1:
        raise FrameError(f"{ROLE_TEXT[role]} signal {full!r} is {size} bits wide; it must be a 1-bit wire")
    return matches[0]


def parse_header(tokens: Iterator[Token], names: SpiSignalNames) -> VcdHeader:
    """Read the header up to $enddefinitions: timescale and the four signals `names` picks."""
    timescale, variables = _declarations(tokens)
    if timescale is None:
        raise FrameError("VCD capture has no $timescale: its times cannot be converted to seconds")
    signals = {role: _signal(role, names.of(role), variables) for role in ROLES}
    bare_ids: dict[str, set[str]] = {}
    for _, bare, id_code, _ in variables:
        bare_ids.setdefault(bare, set()).add(id_code)
    shared = frozenset(bare for bare, found in bare_ids.items() if len(found) > 1)
    return VcdHeader(timescale.magnitude, UNIT_EXPONENT[timescale.unit], {r: v[2] for r, v in signals.items()},
                   {r: v[1] for r, v in signals.items()}, shared)


def first_tick(tokens: Iterator[Token]) -> int:
    """The first timestamp after the header."""
    for token in tokens:
        if token.kind is TokenKind.CHANGE_TIME:
            return token.time_change
    raise FrameError("VCD capture has no timestamps after its header: no samples to decode")
