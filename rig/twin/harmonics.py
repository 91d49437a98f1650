"""How the twin meter registers a distorted waveform: the physics of its front end under harmonic content.

Written from the meter's side: it reads the terminals' content and the meter's own harmonic knobs, never the
rig's limits. Power at each order is U1 * I1 * (u_h / 100) * (i_h / 100) * cos(phase_i - phase_u), as the
source and the reference count it. The front end passes orders up to its bandwidth, registers the harmonics'
power with its own error, and its gain moves with the current's content: odd harmonics (crest factor), DC
and even harmonics (a current transformer saturating on half-wave rectified current), and components that
are not whole multiples of the fundamental (sub-harmonics, interharmonics).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from drivers.source import Harmonic
from rig.config.harmonics import HarmonicKnobs

if TYPE_CHECKING:
    from rig.twin.world import Terminals


def is_whole(order: float) -> bool:
    """True for a harmonic (a whole multiple of the fundamental), False for a sub- or interharmonic."""
    return order == int(order)


def odd_content_pct(harmonics: Sequence[Harmonic]) -> float:
    """RMS of the current's odd harmonics (3rd and up), % of the fundamental."""
    return math.hypot(*(h.current_pct for h in harmonics if is_whole(h.order) and h.order >= 3 and h.order % 2))


def dc_even_content_pct(harmonics: Sequence[Harmonic]) -> float:
    """RMS of the current's DC and even harmonics, % of the fundamental."""
    return math.hypot(*(h.current_pct for h in harmonics if is_whole(h.order) and h.order % 2 == 0))


def fractional_content_pct(harmonics: Sequence[Harmonic]) -> float:
    """RMS of the current's sub- and interharmonics, % of the fundamental."""
    return math.hypot(*(h.current_pct for h in harmonics if not is_whole(h.order)))


def harmonic_power_fraction(harmonics: Sequence[Harmonic], max_order: float = math.inf) -> float:
    """Active power of the components up to `max_order`, as a fraction of U1 * I1."""
    return sum(h.power_fraction for h in harmonics if h.order <= max_order)


def distortion_error_pct(harmonics: Sequence[Harmonic], knobs: HarmonicKnobs) -> float:
    """Change of the front end's gain with the current's content, %."""
    return (knobs.distortion_sensitivity_pct_per_pct * odd_content_pct(harmonics)
            + knobs.dc_sensitivity_pct_per_pct * dc_even_content_pct(harmonics)
            + knobs.subharmonic_sensitivity_pct_per_pct * fractional_content_pct(harmonics))


def registered_power_w(t: Terminals, fundamental_w: float, knobs: HarmonicKnobs) -> float:
    """Active power the meter registers, W: `fundamental_w` (the fundamental as its error model registers
    it) plus the harmonics' power it passes, both through the gain the content moves."""
    if not t.harmonics:
        return fundamental_w
    true_fundamental = t.fundamental_power_w
    gain = fundamental_w / true_fundamental if true_fundamental else 1.0
    harmonic_w = t.voltage_v * t.current_a * harmonic_power_fraction(t.harmonics, knobs.bandwidth_order)
    registered = fundamental_w + harmonic_w * (1.0 + knobs.harmonic_error_pct / 100.0) * gain
    return registered * (1.0 + distortion_error_pct(t.harmonics, knobs) / 100.0)


def registered_harmonic_power_w(t: Terminals, knobs: HarmonicKnobs) -> float:
    """Active power of the harmonics alone as the meter registers it (its harmonic energy register), W."""
    fraction = harmonic_power_fraction(t.harmonics, knobs.bandwidth_order)
    return t.voltage_v * t.current_a * fraction * (1.0 + knobs.harmonic_error_pct / 100.0)


def content_reading_pct(harmonics: Sequence[Harmonic], order: int, channel: str, knobs: HarmonicKnobs) -> float:
    """The meter's reading of the content at `order` in `channel` ('voltage' or 'current'), % of the
    fundamental (0 above its bandwidth)."""
    if order > knobs.bandwidth_order:
        return 0.0
    pct = sum(h.voltage_pct if channel == "voltage" else h.current_pct for h in harmonics if h.order == order)
    return pct * (1.0 + knobs.content_error_pct / 100.0)
