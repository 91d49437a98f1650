"""Decoding an SPI capture with sigrok-cli's SPI decoder, run as a subprocess (drivers layer; imports nothing
of the rig). Its results must agree with the builtin decoder of drivers.spi.vcd on sound captures."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from drivers.errors import FrameError, InstrumentError, ValidationError
from drivers.spi.codec import SpiTransaction
from drivers.spi.vcd_header import ROLES, SpiSignalNames, VcdHeader, cpol_cpha, pow10

SIGROK_CLI = "sigrok-cli"
SIGROK_TIMEOUT_S = 300.0


def sigrok_available() -> bool:
    """True when sigrok-cli is on PATH."""
    return shutil.which(SIGROK_CLI) is not None


def _sigrok_channel(header: VcdHeader, role: str) -> str:
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


def decode_sigrok(path: Path, header: VcdHeader, first_tick: int, mode: int,
                   names: SpiSignalNames) -> list[SpiTransaction]:
    cpol, cpha = cpol_cpha(mode)
    channels = ":".join(f"{role}={_sigrok_channel(header, role)}" for role in ROLES)
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
    tick_s = header.magnitude / pow10(header.exponent)

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
