"""The SPI plans pass against a served twin (the embedded twin and the `twin.meter.spi.*` knobs are
tests/test_knobs.py's). The checks that no knob reaches are proven on captures made to fail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drivers.spi.codec import SpiTransaction
from drivers.spi.rn8209 import RN8209
from drivers.spi.sniffer import SniffedBus
from testplans.spi.test_bus import write_protection_walk


def test_spi_plans_pass_against_a_served_twin(served_twin: Any, tmp_path: Path, rig_run: Any) -> None:
    served = served_twin.out
    text = served.read_text()
    assert "master: twin+tcp://127.0.0.1:" in text and "capture: twin+tcp://127.0.0.1:" in text
    outcome = rig_run("testplans/spi", "--bench", str(served), reports=tmp_path).by_function()
    assert len(outcome) >= 11 and set(outcome.values()) == {"passed"}, outcome


# ------------------------------------------------------------- checks no knob reaches, on made-up captures


def _bus(*frames: tuple[str, str]) -> SniffedBus:
    return SniffedBus.from_transactions(RN8209, [
        SpiTransaction(i * 1e-3, i * 1e-3 + 1e-4, bytes.fromhex(mosi), bytes.fromhex(miso))
        for i, (mosi, miso) in enumerate(frames)])


UNLOCK, LOCK, WRITE_PSTART = ("ea e5", "00 00"), ("ea dc", "00 00"), ("83 00 10", "00 00 00")


def test_write_protection_walk_flags_writes_while_locked_and_a_chip_left_open() -> None:
    assert write_protection_walk(_bus(UNLOCK, WRITE_PSTART, LOCK)) == (0, False)
    assert write_protection_walk(_bus(WRITE_PSTART)) == (1, False)
    assert write_protection_walk(_bus(UNLOCK, WRITE_PSTART)) == (0, True)
    assert write_protection_walk(_bus(UNLOCK, ("ea fa", "00 00"), WRITE_PSTART)) == (1, False), "reset locks"
