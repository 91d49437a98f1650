"""How the twin meter registers a distorted waveform: the physics of its front end under harmonic content.

Written from the meter's side: it reads the terminals' content and the meter's own harmonic knobs, never the
rig's limits. Power at each order is U1 * I1 * (u_h / 100) * (i_h / 100) * cos(phase_i - phase_u), as the
source and the reference count it. The front end passes orders up to its bandwidth, registers the harmonics'
power with its own error, and its gain moves with the current's content: odd harmonics (crest factor), DC
and even harmonics (a current transformer saturating on half-wave rectified current), and components that
are not whole multiples of the fundamental (sub-harmonics, interharmonics).

Where the harmonic registers live: the twin's metering chip is an RN8209, whose datasheet has no fundamental or
harmonic energy registers (its energy registers count the total active power its front end passes, harmonics
included). The fundamental and harmonic registers and the content readings are therefore the management
firmware's (`HarmonicRegisters`), served over DL/T 645 and DL/T 698.45; no chip profile with harmonic
registers is modelled.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from drivers.dlt645.identifiers import Value
from drivers.source import Harmonic
from rig.config.harmonics import HarmonicKnobs

if TYPE_CHECKING:
    from rig.twin.management import ManagementModule
    from rig.twin.meter import MeteringModule
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
    registered = fundamental_w + harmonic_power_seen_w(t, knobs) * gain
    return registered * (1.0 + distortion_error_pct(t.harmonics, knobs) / 100.0)


def harmonic_power_seen_w(t: Terminals, knobs: HarmonicKnobs) -> float:
    """Active power of the harmonics as the front end sees it (up to its bandwidth, with its own error), W."""
    fraction = harmonic_power_fraction(t.harmonics, knobs.bandwidth_order)
    return t.voltage_v * t.current_a * fraction * (1.0 + knobs.harmonic_error_pct / 100.0)


def content_reading_pct(harmonics: Sequence[Harmonic], order: int, channel: str, knobs: HarmonicKnobs) -> float:
    """The meter's reading of the content at `order` in `channel` ('voltage' or 'current'), % of the
    fundamental (0 above its bandwidth)."""
    if order > knobs.bandwidth_order:
        return 0.0
    pct = sum(h.voltage_pct if channel == "voltage" else h.current_pct for h in harmonics if h.order == order)
    return pct * (1.0 + knobs.content_error_pct / 100.0)


# ---------------------------------------------------------------- the meter's harmonic registers and readings

# DL/T 645-2007 identifiers the twin meter serves for its harmonic metering (drivers.dlt645's table; the
# standard's numbers as recalled, check): fundamental and harmonic forward active energy, and the content of
# phase A's voltage and current at orders 2..21.
FUNDAMENTAL_ENERGY_DI: Final = 0x00810000
HARMONIC_ENERGY_DI: Final = 0x00830000
VOLTAGE_CONTENT_DI: Final = 0x020A0100
CURRENT_CONTENT_DI: Final = 0x020B0100
CONTENT_ORDERS: Final = range(2, 22)


def split_registered_w(t: Terminals, registered_w: float, knobs: HarmonicKnobs) -> tuple[float, float]:
    """The meter's registered power split into its fundamental and harmonic parts, W: both went through the
    same gain (`registered_power_w`), so they share `registered_w` in the proportion the front end saw them."""
    fundamental = t.fundamental_power_w
    harmonic = harmonic_power_seen_w(t, knobs)
    seen = fundamental + harmonic
    if not t.harmonics or seen == 0:
        return registered_w, 0.0
    return registered_w * fundamental / seen, registered_w * harmonic / seen


class HarmonicRegisters:
    """The meter's fundamental and harmonic energy registers (forward), integrated from the energy its front
    end registers, and its harmonic content readings; served over DL/T 645 by its management module."""

    def __init__(self, metering: MeteringModule, management: ManagementModule) -> None:
        self.metering = metering
        self.management = management
        self.fundamental_kwh = 0.0
        self.harmonic_kwh = 0.0

    def step(self, t0: float, dt: float, terminals: Terminals) -> None:
        """Integrate the registers over the step (forward energy only, as the registers are)."""
        if dt <= 0 or not terminals.current_a:
            return
        registered = self.metering.registered_power_w(terminals)
        fundamental_w, harmonic_w = split_registered_w(terminals, registered, self.metering.harmonics)
        self.fundamental_kwh += max(fundamental_w, 0.0) * dt / 3.6e6
        self.harmonic_kwh += max(harmonic_w, 0.0) * dt / 3.6e6

    def _content(self, order: int, channel: str) -> float:
        t = self.management.world.terminals()
        return round(content_reading_pct(t.harmonics, order, channel, self.metering.harmonics), 2)

    def items(self) -> dict[int, Callable[[float], Value]]:
        """DI -> value at bench time `now`: what the management module serves of the harmonic metering."""

        def register(kwh: Callable[[], float]) -> Callable[[float], Value]:
            return lambda now: math.floor(kwh() * 100.0 + 1e-9) / 100.0  # whole hundredths, as the display

        items: dict[int, Callable[[float], Value]] = {
            FUNDAMENTAL_ENERGY_DI: register(lambda: self.fundamental_kwh),
            HARMONIC_ENERGY_DI: register(lambda: self.harmonic_kwh),
        }
        for order in CONTENT_ORDERS:
            items[VOLTAGE_CONTENT_DI + order] = functools.partial(self._reading, order, "voltage")
            items[CURRENT_CONTENT_DI + order] = functools.partial(self._reading, order, "current")
        return items

    def _reading(self, order: int, channel: str, _now: float) -> Value:
        return self._content(order, channel)


def attach_harmonics(management: ManagementModule, knobs: HarmonicKnobs) -> HarmonicRegisters:
    """Give `management`'s meter its harmonic knobs and its harmonic registers and readings (served over
    DL/T 645); the registers to be stepped with the World's models."""
    management.metering.harmonics = knobs
    registers = HarmonicRegisters(management.metering, management)
    management.items.update(registers.items())
    return registers
