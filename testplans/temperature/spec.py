"""What the temperature plans require of a meter, as data with its source: the mean temperature coefficient
per class at PF 1 and 0.5L over the specified operating range, the chamber's stability and the soak at each
temperature (bench time), and the meter's own temperature reading against the chamber's air.

Test-plan layer; no I/O. `check=True` marks a value that needs confirming against the paid standards
(IEC 62052-11, IEC 62053-21/-22, GB/T 17215.321/.322, EN 50470-3, Q/GDW 1364): the values here are from
memory of them, not read from the documents.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Final, Protocol

from testplans.comms.spec import Limit, di

IEC_62053: Final = ("IEC 62053-21:2003 / GB/T 17215.321 (classes 1, 2) and IEC 62053-22 / GB/T 17215.322 (0.5S, "
                    "0.2S), 'Temperature coefficient' table: mean temperature coefficient, %/K")
LETTER: Final = ("EN 50470-3, letter classes: taken as the classic class of the same accuracy (A~2, B~1, C~0.5S, "
                 "D~0.2S), not read from the standard")


class MeterTypeLike(Protocol):
    """What these limits need of the meter type (rig.config.MeterType)."""

    scheme: str
    accuracy_class: str
    un_v: float
    ib_a: float


# ---------------------------------------------------------------- mean temperature coefficient

# Class -> (PF 1 at 0.1 Ib..Imax, PF 0.5L at 0.2 Ib..Imax), %/K.
COEFFICIENTS: Final[dict[str, tuple[float, float]]] = {
    "2": (0.10, 0.15), "1": (0.05, 0.07), "0.5S": (0.03, 0.05), "0.2S": (0.01, 0.02),
}
LETTER_AS_CLASSIC: Final = {"A": "2", "B": "1", "C": "0.5S", "D": "0.2S"}
POWER_FACTORS: Final = {"1": 0.0, "0.5L": 60.0}  # label -> current behind voltage, degrees


def coefficient_limit(meter: MeterTypeLike, pf: str) -> Limit:
    """The mean temperature coefficient limit of the meter's class at `pf` ('1' or '0.5L'), ±%/K."""
    letter = meter.scheme == "letter"
    cls = LETTER_AS_CLASSIC[meter.accuracy_class] if letter else meter.accuracy_class
    value = COEFFICIENTS[cls][list(POWER_FACTORS).index(pf)]
    return Limit(-value, value, "%/K", LETTER if letter else IEC_62053, check=True)


# The specified operating range (IEC 62052-11, outdoor meters), cut into 20 K ranges; each range's coefficient
# is measured 10 K either side of its middle: (error at the top - error at the bottom) / 20 K.
OPERATING_RANGE_C: Final = (-25.0, 55.0)
RANGE_WIDTH_K: Final = 20.0
RANGE_SOURCE: Final = ("IEC 62053-21 'Temperature coefficient': the operating range divided into 20 K ranges, each "
                       "measured 10 K above and below its middle; range -25..+55 °C from IEC 62052-11 (outdoor)")
REFERENCE_C: Final = 23.0  # IEC 62052-11 reference temperature: the chamber goes back to it after the sweep


def sweep_temperatures() -> list[float]:
    """The chamber's set points, coldest first: the ends of each 20 K range."""
    low, high = OPERATING_RANGE_C
    count = round((high - low) / RANGE_WIDTH_K)
    return [low + n * RANGE_WIDTH_K for n in range(count + 1)]


def ranges() -> list[tuple[float, float]]:
    """Each 20 K range as (bottom, top), °C."""
    points = sweep_temperatures()
    return list(itertools.pairwise(points))


READINGS: Final = 2  # error readings averaged at each temperature and power factor
AIR_READS: Final = 10  # the chamber's air read this many times, a second apart, and averaged (its loop swings)


# ---------------------------------------------------------------- the chamber and the soak (bench time)

@dataclass(frozen=True)
class Soak:
    """How the chamber reaches a temperature, how long the meters then soak at it, and their warm-up."""

    band_k: float  # the air within this of the set point ...
    hold_s: float  # ... for this long counts as reached
    reach_timeout_s: float  # bench time allowed to reach it
    soak_s: float  # then the meters soak (de-energised) so their inside follows the air
    warm_up_s: float  # then on mains at Un, Ib (PF 1) before anything is measured
    source: str
    check: bool = True


SOAK: Final = Soak(band_k=1.0, hold_s=600.0, reach_timeout_s=3 * 3600.0, soak_s=3 * 3600.0, warm_up_s=900.0,
                   source="lab method: chamber within ±1 K for 10 min, a 3 h soak (six times a meter case's "
                          "thermal time constant of about 30 min), 15 min on mains at Un, Ib before the readings "
                          "(IEC 62052-11 asks for thermal equilibrium; the times are the lab's)")

# ---------------------------------------------------------------- the meter's temperature reading

TEMPERATURE: Final = di("internal temperature")  # DL/T 645-2007 02 80 00 07, XXX.X °C
TEMPERATURE_READING: Final = Limit(-1.0, 1.0, "°C", "Q/GDW 1364-2013 (from memory): the meter's internal "
                                   "temperature measured within ±1 °C; against the chamber's air after the soak",
                                   check=True)
