"""The SPI plans: pass on the healthy twin (embedded and served), and every `twin.meter.spi.*` knob set
outside its spec fails the plan tests that must catch it while a value inside keeps them passing.
The checks that no knob reaches are proven on captures made to fail."""

from __future__ import annotations

import concurrent.futures
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.spi.codec import SpiTransaction
from drivers.spi.rn8209 import RN8209
from drivers.spi.sniffer import SniffedBus
from rig.config import SpiKnobs, load_bench
from testplans.mutations import MUTATIONS
from testplans.spi.test_bus import write_protection_walk

RIG = [sys.executable, "-m", "rig.cli"]
SPI = [m for m in MUTATIONS if m.knob.startswith("twin.meter.spi.")]
METER = load_bench().meter
# An inside value equal to the healthy default (a flag off, no glitches) is covered by the healthy run.
CASES = [(m.knob, True) for m in SPI] + [
    (m.knob, False) for m in SPI if m.inside(METER) != SpiKnobs.model_fields[m.knob.rsplit(".", 1)[-1]].default
]


def _rig_run(args: list[str], reports: Path) -> dict[str, str]:
    """Outcome per test function of one `rig run` (failed when any of its items failed)."""
    proc = subprocess.run([*RIG, "run", *args, "--reports", str(reports)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    results = json.loads((reports / "latest" / "results.json").read_text())
    outcome: dict[str, str] = {}
    for test in results["tests"]:
        function = test["test"].split("[", 1)[0]
        if outcome.get(function) != "failed":
            outcome[function] = test["outcome"]
    return outcome


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool], dict[str, str]]:
    """The healthy run of every SPI plan, and each case's catching tests; two twins at a time."""
    root = tmp_path_factory.mktemp("spi-knobs")
    by_knob = {m.knob: m for m in SPI}

    def run(index: int, case: tuple[str, bool]) -> dict[str, str]:
        knob, violating = case
        if knob == "healthy":
            return _rig_run(["testplans/spi"], root / "healthy")
        mutation = by_knob[knob]
        return _rig_run([*mutation.catches, "--set", mutation.override(METER, violating=violating)],
                        root / f"case-{index:02d}")

    cases = [("healthy", False), *CASES]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {case: pool.submit(run, i, case) for i, case in enumerate(cases)}
        return {case: future.result() for case, future in futures.items()}


def test_every_spi_plan_passes_on_the_healthy_twin(outcomes) -> None:
    healthy = outcomes[("healthy", False)]
    assert len(healthy) >= 11
    assert set(healthy.values()) == {"passed"}, healthy


def test_every_spi_knob_is_in_the_catalogue() -> None:
    defects = set(SpiKnobs.model_fields) - {"mcu_poll_jitter_s", "rms_noise_pct"}  # realism, not defects
    assert {m.knob.rsplit(".", 1)[-1] for m in SPI} == defects


@pytest.mark.parametrize(("knob", "violating"), CASES,
                         ids=[f"{k.rsplit('.', 1)[-1]}-{'outside' if v else 'inside'}" for k, v in CASES])
def test_knob_outside_fails_inside_passes(outcomes, knob: str, violating: bool) -> None:
    mutation = next(m for m in SPI if m.knob == knob)
    result = outcomes[(knob, violating)]
    for test in mutation.catches:
        assert result.get(test) == ("failed" if violating else "passed"), (mutation.why, result)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Path]:
    """`rig twin serve` in its own process; yields the ready bench file."""
    out = tmp_path / "served.yaml"
    proc = subprocess.Popen([*RIG, "twin", "serve", "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert "twin serving" in (proc.stdout.readline() if proc.stdout else ""), proc.stderr
        yield out
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_spi_plans_pass_against_a_served_twin(served: Path, tmp_path: Path) -> None:
    text = served.read_text()
    assert "master: twin+tcp://127.0.0.1:" in text and "capture: twin+tcp://127.0.0.1:" in text
    outcome = _rig_run(["testplans/spi", "--bench", str(served)], tmp_path)
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
