"""The vocabulary of the accuracy tables: their errors, the meter type they are read for, power factors
('0.5L') and current expressions ('0.05 Ib'). Pure: no file is read here."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final, Protocol

from drivers.errors import RigError

SPEC_FOLDER: Final = Path(__file__).resolve().parent
DEFAULT_PROFILE: Final = "iec"
CHECK_NOTE: Final = "value not yet confirmed against the standard"

class SpecError(RigError, ValueError):
    """A meter type, current or power factor is outside what the accuracy tables specify."""


class SpecFileError(SpecError):
    """A spec YAML file is missing or invalid; the message names the file and the key to fix."""


# --------------------------------------------------------------------------------------------------
# Meter type and power factors


class MeterTypeLike(Protocol):
    """The meter type as the rig's config gives it; read-only attributes are enough."""

    @property
    def scheme(self) -> str: ...  # 'classic' | 'letter'
    @property
    def accuracy_class(self) -> str: ...  # '2', '1', '0.5S', '0.2S' | 'A', 'B', 'C', 'D'
    @property
    def connection(self) -> str: ...  # 'direct' | 'ct'
    @property
    def un_v(self) -> float: ...
    @property
    def ib_a(self) -> float: ...  # Ib for direct connection, In for CT: the reference current
    @property
    def imax_a(self) -> float: ...
    @property
    def itr_a(self) -> float | None: ...  # None: from the scheme's transitional_current table
    @property
    def constant_imp_per_kwh(self) -> float: ...
    @property
    def wiring(self) -> str: ...  # '1P2W' | '3P4W' | '3P3W'
    @property
    def frequency_hz(self) -> float: ...


_PHASE_FACTORS: Final[Mapping[str, float]] = {"1P2W": 1.0, "3P4W": 3.0, "3P3W": math.sqrt(3.0)}
CONNECTIONS: Final = ("direct", "ct")


def phase_factor(meter: MeterTypeLike) -> float:
    """Factor m of the pulse-period formulas: 1 for 1P2W, 3 for 3P4W, sqrt(3) for 3P3W (dimensionless)."""
    try:
        return _PHASE_FACTORS[meter.wiring]
    except KeyError:
        raise SpecError(f"meter type: wiring {meter.wiring!r} is not one of {', '.join(_PHASE_FACTORS)}") from None


@dataclass(frozen=True)
class PowerFactor:
    """A test power factor: label ('1', '0.5L', '0.8C'), cos φ, φ in degrees (+ lagging L, - leading C)."""

    label: str
    cos_phi: float
    angle_deg: float

    @property
    def is_unity(self) -> bool:
        """True for PF 1."""
        return self.cos_phi == 1.0


_PF_LABEL: Final = re.compile(r"(?P<cos>[0-9]*\.?[0-9]+)\s*(?P<kind>[LC]?)")
_PF_HINT: Final = (
    "write '1', or cos φ followed by L (inductive, current lagging) or C (capacitive, current leading),"
    " e.g. '0.5L', '0.8C'"
)


def power_factor(label: str | PowerFactor) -> PowerFactor:
    """Parse a power-factor label such as '1', '0.5L', '0.8C', '0.25L' (angle in degrees, + = lagging)."""
    if isinstance(label, PowerFactor):
        return label
    match = _PF_LABEL.fullmatch(str(label).strip().upper())
    if match is None:
        raise SpecError(f"{label!r} is not a power-factor label: {_PF_HINT}")
    cos_phi = float(match["cos"])
    kind = match["kind"]
    if not 0.0 < cos_phi <= 1.0:
        raise SpecError(f"power factor {label!r}: cos φ must be above 0 and at most 1")
    if cos_phi == 1.0:
        if kind:
            raise SpecError(f"power factor {label!r}: unity is written '1', without L or C")
        return PowerFactor("1", 1.0, 0.0)
    if not kind:
        raise SpecError(
            f"power factor {label!r}: below 1 it needs L (inductive) or C (capacitive), e.g. '{cos_phi:g}L'"
        )
    angle = math.degrees(math.acos(cos_phi))
    return PowerFactor(f"{cos_phi:g}{kind}", cos_phi, angle if kind == "L" else -angle)


def as_power_factor(pf: PowerFactor | str) -> PowerFactor:
    return power_factor(pf)


# --------------------------------------------------------------------------------------------------
# Current expressions used by the tables: "0.05 Ib", "Imax", "10 Itr"

_BASES: Final[Mapping[str, str]] = {b.lower(): b for b in ("Ib", "In", "Iref", "Itr", "Imin", "Imax")}
_CURRENT_EXPR: Final = re.compile(r"(?:(?P<x>[0-9]*\.?[0-9]+)\s*)?(?P<base>[A-Za-z]+)")


@cache
def parse_current(text: str) -> tuple[float, str]:
    match = _CURRENT_EXPR.fullmatch(text.strip())
    base = _BASES.get(match["base"].lower()) if match else None
    if match is None or base is None:
        raise SpecError(
            f"{text!r} is not a current: write '<multiplier> <base>' or '<base>', base one of "
            f"{', '.join(_BASES.values())}, e.g. '0.05 Ib'"
        )
    multiplier = float(match["x"]) if match["x"] else 1.0
    if multiplier <= 0.0:
        raise SpecError(f"{text!r}: the multiplier must be above 0")
    return multiplier, base


def label_of_current(expr: str, connection: str) -> str:
    multiplier, base = parse_current(expr)
    if base == "Iref":
        base = "Ib" if connection == "direct" else "In"
    return base if multiplier == 1.0 else f"{multiplier:g}{base}"


