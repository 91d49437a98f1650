"""What the harmonic plans require of a meter, as data with its source: the influence tests of IEC 62053-21
(GB/T 17215.321) and -22 for distorted waveforms, their test waveforms as harmonic content, and the limits of
the meter's own harmonic readings.

Test-plan layer; no I/O. The 5th-harmonic row is the specs' own (testplans/specs/common.yaml, through
`testplans.specs.accuracy`); the waveform rows below are recalled from IEC 62053-21:2003 table 8 and annexes
A-C and are marked `check` until confirmed against the paid text.

Each waveform is the standard's test current (half-wave rectified, phase-fired, burst-fired) cut from a sine;
its content is the waveform's Fourier series, computed here (numpy) rather than typed in, so it is the same
waveform on any source that programs content per order. The change of error is the distorted waveform's error
against the error at the sine it is cut from (same peak).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np

from drivers.source import Harmonic
from testplans.comms.spec import di
from testplans.specs import accuracy as accuracy_spec

IEC_62053_21: Final = "IEC 62053-21:2003 (GB/T 17215.321-2008) table 8 and annex {annex}, as recalled; not in the " \
    "project reference"
IEC_62053_22: Final = "IEC 62053-22:2003 (GB/T 17215.322-2008) table 8, as recalled; not in the project reference"
LAB: Final = "lab requirement (harmonic plans); no standard value at hand"

# Letter classes (IEC 62053-21:2020 / EN 50470-3) are looked up as their classic counterparts, as the
# specs' influence table does.
CLASS_ALIASES: Final = {"A": "2", "B": "1", "C": "0.5S", "D": "0.2S"}

# Samples per fundamental cycle when a waveform is analysed, and the analysis window in cycles (a burst-fired
# waveform repeats every 4 cycles, so its sub-harmonics fall on quarter orders).
SAMPLES_PER_CYCLE: Final = 512
WINDOW_CYCLES: Final = 4
# Components below this fraction of the fundamental, and orders above this, are left out of what the source
# is asked to generate (they carry less than 0.1 % of the content's power).
MIN_COMPONENT_PCT: Final = 1.0
MAX_ORDER: Final = 40


class MeterTypeLike(Protocol):
    """What these tests need of the meter type (rig.config.MeterType)."""

    accuracy_class: str
    connection: str
    un_v: float
    ib_a: float
    imax_a: float
    constant_imp_per_kwh: float


@dataclass(frozen=True)
class Spectrum:
    """A current waveform as the source programs it: the fundamental's RMS (per unit of the sine's peak) and
    phase angle, and the content on top of it."""

    fundamental: float
    fundamental_phase_deg: float
    content: tuple[Harmonic, ...]


def _lag_deg(value: complex) -> float:
    # x = a sin(kθ - φ) has the bin (a/2j) e^{-jφ}: φ = -arg - 90°, folded into -180..180.
    return (-math.degrees(float(np.angle(value))) - 90.0 + 180.0) % 360.0 - 180.0


def spectrum(samples: Callable[[np.ndarray], np.ndarray]) -> Spectrum:
    """The content of a current waveform `samples(θ)` (θ: fundamental angle, radians, over WINDOW_CYCLES
    cycles), in the drivers' convention: RMS in % of the fundamental, phase angle behind the voltage's zero
    crossing."""
    n = SAMPLES_PER_CYCLE * WINDOW_CYCLES
    theta = 2 * math.pi * np.arange(n) / SAMPLES_PER_CYCLE
    bins = np.fft.rfft(samples(theta)) / n
    fundamental = math.sqrt(2) * float(abs(bins[WINDOW_CYCLES]))
    content = []
    for k, value in enumerate(bins):
        order = k / WINDOW_CYCLES
        if order == 1 or order > MAX_ORDER:
            continue
        rms = float(abs(value)) if k == 0 else math.sqrt(2) * float(abs(value))
        pct = 100.0 * rms / fundamental
        if pct < MIN_COMPONENT_PCT:
            continue
        phase = 0.0 if k == 0 else _lag_deg(value)  # DC has no phase angle
        content.append(Harmonic(order, current_pct=round(pct, 3), current_phase_deg=round(phase, 2)))
    return Spectrum(fundamental, round(_lag_deg(bins[WINDOW_CYCLES]), 2), tuple(content))


def half_wave(theta: np.ndarray) -> np.ndarray:
    """Half-wave rectified sine (annex A: a diode in the current circuit)."""
    return np.maximum(np.sin(theta), 0.0)


def phase_fired(theta: np.ndarray) -> np.ndarray:
    """Sine conducting from 90° of each half cycle (annex B: a thyristor fired at 90°)."""
    return np.where(np.mod(theta, math.pi) >= math.pi / 2, np.sin(theta), 0.0)


def burst_fired(theta: np.ndarray) -> np.ndarray:
    """Two cycles of sine, two cycles off (annex C: burst-fire control)."""
    return np.where(np.mod(theta, 4 * math.pi * 2) < 2 * math.pi * 2, np.sin(theta), 0.0)


@dataclass(frozen=True)
class WaveformTest:
    """One influence test of a distorted current: its waveform, current, limits by class, source."""

    name: str
    description: str
    waveform: Callable[[np.ndarray], np.ndarray]
    current: Callable[[MeterTypeLike], float]  # RMS of the sine the waveform is cut from, A
    limits_pct: dict[str, float]
    source: str
    check: bool = True
    direct_only: bool = False  # a current transformer does not pass DC: not a test of CT-operated meters


WAVEFORM_TESTS: Final = (
    WaveformTest("dc_even", "DC and even harmonics: half-wave rectified current", half_wave,
                 lambda m: m.imax_a / math.sqrt(2), {"2": 6.0, "1": 3.0}, IEC_62053_21.format(annex="A"),
                 direct_only=True),
    WaveformTest("odd", "odd harmonics: current phase-fired at 90°", phase_fired,
                 lambda m: 0.5 * m.ib_a, {"2": 6.0, "1": 3.0, "0.5S": 1.5, "0.2S": 0.6},
                 IEC_62053_21.format(annex="B") + "; 0.5S, 0.2S: " + IEC_62053_22),
    WaveformTest("sub", "sub-harmonics: current burst-fired two cycles on, two off", burst_fired,
                 lambda m: 0.5 * m.ib_a, {"2": 6.0, "1": 3.0, "0.5S": 1.5, "0.2S": 0.6},
                 IEC_62053_21.format(annex="C") + "; 0.5S, 0.2S: " + IEC_62053_22),
)


def waveform_tests(meter: MeterTypeLike) -> list[WaveformTest]:
    """The waveform tests that apply to this meter type (a CT-operated meter has no DC test)."""
    return [t for t in WAVEFORM_TESTS if not (t.direct_only and meter.connection == "ct")]


def waveform_limit(meter: MeterTypeLike, test: WaveformTest) -> accuracy_spec.Limit:
    """Allowed change of error (±%) of a waveform test for the meter's class."""
    cls = CLASS_ALIASES.get(meter.accuracy_class, meter.accuracy_class)
    if cls not in test.limits_pct:
        raise accuracy_spec.SpecError(f"{test.name}: no limit for class {meter.accuracy_class} (specified: "
                                      f"{', '.join(test.limits_pct)})")
    return accuracy_spec.Limit(test.limits_pct[cls], test.source, test.check, f"{test.description}, class {cls}")


@dataclass(frozen=True)
class DistortedPoint:
    """A load point of a waveform test: the fundamental's RMS current and the content on top of it."""

    sine_a: float  # RMS of the sine the waveform is cut from
    fundamental_a: float
    phase_deg: float  # the fundamental's phase angle (a phase-fired current's lags the voltage)
    content: tuple[Harmonic, ...]


def distorted_point(meter: MeterTypeLike, test: WaveformTest) -> DistortedPoint:
    """What the source must deliver for a waveform test."""
    sine_a = test.current(meter)
    wave = spectrum(test.waveform)
    return DistortedPoint(sine_a, sine_a * math.sqrt(2) * wave.fundamental, wave.fundamental_phase_deg, wave.content)


# ---------------------------------------------------------------- the 5th harmonic in voltage and current

FIFTH: Final = "harmonics"  # its row in the specs' influence table


def fifth_harmonic(voltage_pct: float = 10.0, current_pct: float = 40.0) -> tuple[Harmonic, ...]:
    """The 5th harmonic of the specs' row: 10 % in the voltage, 40 % in the current, in phase."""
    return (Harmonic(5, voltage_pct, 0.0, current_pct, 0.0),)


# ---------------------------------------------------------------- the meter's harmonic readings

# DL/T 645-2007 items of the meter's harmonic metering (drivers.dlt645's table: the standard's numbers as
# recalled, check): phase A content per order and the forward fundamental and harmonic energy registers.
def voltage_content(order: int) -> int:
    """DI of phase A's voltage content at `order` (2..21)."""
    return di(f"phase A voltage harmonic content, order {order}")


def current_content(order: int) -> int:
    """DI of phase A's current content at `order` (2..21)."""
    return di(f"phase A current harmonic content, order {order}")


# DL/T 698.45 objects of the same content: attribute 2 per phase, orders 2..21, in 0.01 % (the layout as the twin
# reads the standard: check).
VOLTAGE_CONTENT_OI: Final = 0x200D
CURRENT_CONTENT_OI: Final = 0x200E
FIRST_CONTENT_ORDER: Final = 2

FUNDAMENTAL_ENERGY: Final = di("forward active fundamental energy, total")
HARMONIC_ENERGY: Final = di("forward active harmonic energy, total")
REGISTER_RESOLUTION_KWH: Final = 0.01  # XXXXXX.XX kWh

# Orders whose content the content test reads at the 5th-harmonic point: the 5th carries 10 % / 40 %, the
# others must read about zero.
CONTENT_ORDERS: Final = (2, 3, 5, 7)
# The meter's content readings against the reference's: 1 % of the fundamental, absolute (a 40 % harmonic read
# 2.5 % off its value). No standard value at hand (IEC 61000-4-7 class A instruments are far tighter; a meter
# is not one).
CONTENT_TOLERANCE_PCT: Final = 1.0
CONTENT_SOURCE: Final = LAB
# The energy dose at the 5th-harmonic point at Imax: enough harmonic energy that the register's 0.01 kWh is
# a small part of the limit below.
HARMONIC_DOSE_KWH: Final = 0.25
# The harmonic energy register: its error, as a share of the total energy, within the class's harmonic
# influence limit (a meter that loses that much harmonic energy fails the 5th-harmonic influence test too);
# the fundamental register: within the basic error limit at Imax plus the harmonic influence limit. The
# lab's composition of the standards' limits: check.
ENERGY_SOURCE: Final = f"{LAB}: basic error and harmonic influence limits of testplans/specs combined"
