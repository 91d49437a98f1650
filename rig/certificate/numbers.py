"""How a certificate writes its numbers and cites its limits: errors rounded to the class's rounding interval,
every other value to a fixed fraction of its limit, and limit sources reduced to the standard's clause (the
rig's own notes on where a value came from stay in its documentation, docs/limit-sources.md).
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_EVEN, Decimal

# Rounding interval of a reported error, % (1/10 of the class index, JJG 596-2012 practice; the letter classes
# as their counterparts A=2, B=1, C=0.5S, D=0.2S). The same values as the rig's accuracy specs.
ERROR_ROUNDING_PCT: dict[str, float] = {"2": 0.2, "1": 0.1, "0.5S": 0.05, "0.2S": 0.02,
                                        "A": 0.2, "B": 0.1, "C": 0.05, "D": 0.02}
# A value that is not an error: to 1/1000 of its limit's magnitude (four figures of the limit).
LIMIT_FRACTION_DIGITS = 3
MAX_DECIMALS = 6

# The standards a limit may be cited from; a source naming none of them is the rig's own specification.
_STANDARD = re.compile(r"\b(IEC|GB/T|JJG|DL/T|EN|OIML|ISO|IR46|Bluetooth Core Specification)\b")
# Where a source's own notes begin (how a value was found, which project file gives it): cut there.
_NOTES = re.compile(r"(:\s| as given in | as the project reference| as coded in | values as coded|,? as recalled|;)")
_PROJECT_NOTE = re.compile(r"\s*\((not in the project reference|[^)]*reference/[^)]*)\)")
_NAMED = re.compile(r"\(((?:IEC|GB/T|JJG|DL/T|EN|OIML|ISO)[^()]*)\)")
RIG_SPECIFICATION = "test specification of the rig (limits and their origin: the rig's docs/limit-sources.md)"
DECLARED = "the meter type's declared value"


def rounding_interval_pct(accuracy_class: str) -> float | None:
    """The rounding interval (%) of a reported error for an accuracy class; None for a class not in the table."""
    return ERROR_ROUNDING_PCT.get(accuracy_class)


def _decimals(step: float) -> int:
    text = f"{Decimal(str(step)).normalize():f}"
    return min(MAX_DECIMALS, len(text.partition(".")[2]))


def round_to(value: float, step: float) -> float:
    """`value` rounded to a multiple of `step`, ties to even (the rounding of a reported error)."""
    steps = (Decimal(str(value)) / Decimal(str(step))).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return float(steps * Decimal(str(step))) + 0.0  # + 0.0: no "-0"


def format_error(value: float | None, interval_pct: float | None) -> str:
    """An error in % at the class's rounding interval ('-0.4', '0.05'); '—' when there is no reading."""
    if value is None or not math.isfinite(value):
        return "—"
    if interval_pct is None:
        return format_value(value, None)
    return f"{round_to(value, interval_pct):.{_decimals(interval_pct)}f}"


def format_value(value: float | None, scale: float | None) -> str:
    """A value to 1/1000 of `scale` (its limit's magnitude), else to four significant figures."""
    if value is None or not math.isfinite(value):
        return "—"
    if float(value).is_integer() and abs(value) < 1e9:
        return f"{int(value)}"
    if scale is None or scale == 0 or not math.isfinite(scale):
        return f"{value:.4g}"
    decimals = max(0, min(MAX_DECIMALS, LIMIT_FRACTION_DIGITS - math.floor(math.log10(abs(scale)))))
    text = f"{value:.{decimals}f}"
    return "0" + text[2:] if text.startswith("-0") and float(text) == 0 else text


def cited_clause(source: str) -> str:
    """The standard's clause a limit source names, without the rig's notes; the rig's specification otherwise."""
    text = source.strip()
    if text.startswith("the meter type's"):
        return DECLARED
    if not text or text.lower().startswith(("lab requirement", "limits of the rig")):
        return RIG_SPECIFICATION
    if text.startswith("project reference") and (named := _NAMED.search(text)):
        return named.group(1)  # the project file only retells the standard it names
    cited = _PROJECT_NOTE.sub("", _NOTES.split(text, maxsplit=1)[0]).strip(" ,.")
    if cited.count("(") > cited.count(")"):  # a note cut inside its parenthesis
        cited = cited.rpartition("(")[0].strip(" ,.")
    return cited if _STANDARD.search(cited) else RIG_SPECIFICATION
