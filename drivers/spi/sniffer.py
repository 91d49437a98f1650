"""SPI bus sniffer: logic-analyser captures (VCD) to CS-framed transactions to register accesses.

Drivers layer: imports nothing of the rig. A capture source is where VCD files come from: a file or a
folder a logic analyser writes on a bench, or any object with `begin()`/`end()` (the twin's recorder).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from drivers.clock import Clock
from drivers.errors import InstrumentError, ValidationError
from drivers.spi.codec import RegisterAccess, SpiTransaction, decode_transaction
from drivers.spi.registers import ChipProfile, Command
from drivers.spi.rn8209 import RN8209
from drivers.spi.vcd import DEFAULT_NAMES, Decoder, SpiSignalNames, VcdSource, decode_vcd


class CaptureSource(Protocol):
    """Where a sniffer gets the capture of a time window: `begin()` at its start, `end()` at its end."""

    def begin(self) -> None:
        """Mark the start of the window (arm the analyser, note which files exist)."""
        ...

    def end(self) -> VcdSource:
        """The VCD capture of the window: a path, VCD text or bytes; InstrumentError if there is none."""
        ...


class VcdFileCapture:
    """A VCD file the logic analyser rewrites for each capture (it must be rewritten within the window)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._began_ns: int | None = None
        self._armed = False

    def _mtime_ns(self) -> int | None:
        try:
            return self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def begin(self) -> None:
        """Note the file's modification time."""
        self._began_ns = self._mtime_ns()
        self._armed = True

    def end(self) -> Path:
        """The file, once rewritten since `begin()`."""
        if not self._armed:
            raise InstrumentError(f"capture from {self.path} ended without begin()")
        self._armed = False
        now = self._mtime_ns()
        if now is None:
            raise InstrumentError(f"no capture file {self.path}: is the logic analyser writing there?")
        if now == self._began_ns:
            raise InstrumentError(
                f"capture file {self.path} was not rewritten during the capture window: "
                "is the logic analyser recording?"
            )
        return self.path


class VcdFolderCapture:
    """A folder a logic analyser writes one VCD file per capture into; the newest new file is taken."""

    def __init__(self, folder: str | os.PathLike[str], pattern: str = "*.vcd") -> None:
        self.folder = Path(folder)
        self.pattern = pattern
        self._before: dict[Path, int] | None = None

    def _files(self) -> dict[Path, int]:
        if not self.folder.is_dir():
            raise InstrumentError(f"capture folder {self.folder} does not exist or is not a folder")
        return {p: p.stat().st_mtime_ns for p in self.folder.glob(self.pattern) if p.is_file()}

    def begin(self) -> None:
        """Note the files already in the folder."""
        self._before = self._files()

    def end(self) -> Path:
        """The newest file written or rewritten since `begin()`."""
        if self._before is None:
            raise InstrumentError(f"capture from {self.folder} ended without begin()")
        before, self._before = self._before, None
        fresh = {p: t for p, t in self._files().items() if before.get(p) != t}
        if not fresh:
            raise InstrumentError(
                f"no new {self.pattern} capture in {self.folder} since the window began: "
                "is the logic analyser recording into it?"
            )
        return max(fresh, key=lambda p: (fresh[p], p.name))


def capture_source_for(location: str | os.PathLike[str]) -> VcdFileCapture | VcdFolderCapture:
    """A folder source for an existing folder (or a path ending in a separator), else a file source."""
    text = os.fspath(location)
    path = Path(text)
    if path.is_dir() or text.endswith(("/", os.sep)):
        return VcdFolderCapture(path)
    return VcdFileCapture(path)


@dataclass(frozen=True)
class SniffedFrame:
    """One CS-framed transaction and how the chip's register map reads it."""

    transaction: SpiTransaction
    access: RegisterAccess

    @property
    def start_s(self) -> float:
        """When CS was asserted, s from the start of the capture."""
        return self.transaction.start_s

    @property
    def ok(self) -> bool:
        """True for a well-formed access to a known register."""
        return self.access.ok

    def describe(self) -> str:
        """One line for a report: time, bytes on both lines, and what is wrong with the frame."""
        txn = self.transaction
        what = "; ".join(self.access.problems) or "ok"
        return f"{txn.start_s:.6f} s MOSI {txn.mosi.hex(' ')} MISO {txn.miso.hex(' ')}: {what}"


@dataclass(frozen=True)
class SniffedBus:
    """Every frame of a capture, decoded against one chip profile."""

    profile: ChipProfile
    frames: tuple[SniffedFrame, ...]

    @classmethod
    def from_transactions(cls, profile: ChipProfile, transactions: Iterable[SpiTransaction]) -> SniffedBus:
        """Decode transactions against the profile's register map."""
        return cls(profile, tuple(SniffedFrame(t, decode_transaction(profile, t)) for t in transactions))

    def malformed(self) -> list[SniffedFrame]:
        """Frames whose structure is wrong (length, unknown register, access direction)."""
        return [f for f in self.frames if not f.ok]

    def _values(self, kind: str, name: str) -> list[tuple[float, int]]:
        register = self.profile.register(name)
        return [
            (f.start_s, f.access.value)
            for f in self.frames
            if f.ok and f.access.kind == kind and f.access.register == register and f.access.value is not None
        ]

    def reads(self, name: str) -> list[tuple[float, int]]:
        """(time s, value) of every well-formed read of a register, in capture order."""
        return self._values("read", name)

    def writes(self, name: str) -> list[tuple[float, int]]:
        """(time s, value) of every well-formed write of a register, in capture order."""
        return self._values("write", name)

    def commands(self) -> list[tuple[float, Command | None]]:
        """(time s, command) of every special-command write; None for a code the profile does not know."""
        by_register: dict[str, dict[int, Command]] = {}
        for command, special in self.profile.commands.items():
            by_register.setdefault(special.register, {})[special.code] = command
        out: list[tuple[float, Command | None]] = []
        for register, codes in by_register.items():
            out += [(at, codes.get(code)) for at, code in self.writes(register)]
        return sorted(out, key=lambda item: item[0])


class SpiSniffer:
    """Listens to a chip's SPI bus through a capture source and decodes what it saw."""

    def __init__(
        self,
        source: CaptureSource,
        *,
        profile: ChipProfile = RN8209,
        names: SpiSignalNames = DEFAULT_NAMES,
        decoder: Decoder = "builtin",
    ) -> None:
        if decoder not in ("auto", "builtin", "sigrok"):
            raise ValidationError(f"decoder {decoder!r} is not 'auto', 'builtin' or 'sigrok'")
        self.source = source
        self.profile = profile
        self.names = names
        self.decoder: Decoder = decoder

    def begin(self) -> None:
        """Start a capture window."""
        self.source.begin()

    def end(self) -> SniffedBus:
        """End the window and decode its capture."""
        return self.decode(self.source.end())

    def capture(self, clock: Clock, duration_s: float) -> SniffedBus:
        """Listen for `duration_s` of bench time and decode what went over the bus."""
        if not duration_s > 0:
            raise ValidationError(f"capture duration {duration_s!r} s must be positive")
        self.begin()
        clock.sleep(duration_s)
        return self.end()

    def decode(self, capture: VcdSource) -> SniffedBus:
        """Decode a capture (path, VCD text or bytes) in the chip's SPI mode."""
        transactions = decode_vcd(capture, mode=self.profile.spi_mode, names=self.names, decoder=self.decoder)
        return SniffedBus.from_transactions(self.profile, transactions)
