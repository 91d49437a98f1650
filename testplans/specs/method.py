"""The bench's method around the tables: its own reading counts, rounding a reported error, the bench's
uncertainty and the test uncertainty ratio. The gate time and the pulses to gate on are the rig's
(rig.procedures: MIN_GATE_S, pulses_for_gate), where the readings are taken."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Final, Literal

from testplans.specs.files import Specs, default_specs
from testplans.specs.lookup import SpecValue, context_for, positive
from testplans.specs.terms import DEFAULT_PROFILE, MeterTypeLike, PowerFactor, SpecError, as_power_factor

# Method of the bench ("How a bench measures error" in the project reference): these are the rig's
# own choices, not values of a standard, so they live here rather than in the tables.
MIN_READINGS_PER_POINT: Final = 2
REPEATABILITY_MIN_READINGS: Final = 5

WS_PER_KWH: Final = 3.6e6  # energy units: W·s in a kWh


# --------------------------------------------------------------------------------------------------
# Rounding, bench uncertainty

_ROUNDING_MODES: Final[Mapping[str, str]] = {"half_even": ROUND_HALF_EVEN, "half_up": ROUND_HALF_UP}


def rounding_interval(
    meter: MeterTypeLike, *, quantity: Literal["error", "std_dev"] = "error", specs: Specs | None = None
) -> SpecValue:
    """Rounding interval (%) of the mean error (or of the standard deviation), with source and check flag."""
    ctx = context_for(meter, DEFAULT_PROFILE, specs)
    table = ctx.specs.common.rounding
    intervals = table.error_interval_pct if quantity == "error" else table.std_dev_interval_pct
    if meter.accuracy_class not in intervals:
        raise SpecError(f"{ctx.specs.common_path.name}: rounding has no {quantity} interval for {ctx.who()}")
    return SpecValue(
        intervals[meter.accuracy_class],
        "%",
        table.source,
        table.check,
        f"rounding interval of the {quantity}, rule {table.rule}, {ctx.who()}",
    )


def rounding_interval_pct(
    meter: MeterTypeLike, *, quantity: Literal["error", "std_dev"] = "error", specs: Specs | None = None
) -> float:
    """Rounding interval in % of the reported mean error (quantity='std_dev': of the standard deviation)."""
    return rounding_interval(meter, quantity=quantity, specs=specs).value


def round_error(
    value_pct: float,
    interval: float,
    *,
    rule: Literal["half_even", "half_up"] | None = None,
    specs: Specs | None = None,
) -> float:
    """Round an error (%) to a multiple of interval (%); ties to even unless the rule says otherwise."""
    value = _finite("value_pct", value_pct)
    step = positive("interval", interval, "%")
    chosen = rule if rule is not None else (specs if specs is not None else default_specs()).common.rounding.rule
    mode = _ROUNDING_MODES.get(chosen)
    if mode is None:
        raise SpecError(f"rounding rule {chosen!r} is not one of {', '.join(_ROUNDING_MODES)}")
    # Decimal from the shortest text of each float: 0.35 at 0.1 is a tie as written, whatever its binary value.
    steps = (Decimal(str(value)) / Decimal(str(step))).quantize(Decimal(1), rounding=mode)
    return float(steps * Decimal(str(step))) + 0.0  # + 0.0 turns -0.0 into 0.0


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecError(f"{name} = {value!r}: must be a finite number")
    return float(value)


def test_uncertainty(pf: PowerFactor | str, *, specs: Specs | None = None) -> SpecValue:
    """Typical expanded bench uncertainty (%, k in the clause) at a power factor, with source and check flag."""
    factor = as_power_factor(pf)
    tables = specs if specs is not None else default_specs()
    table = tables.common.test_uncertainty
    for row in table.rows:
        if factor.label in row.pfs:
            return SpecValue(
                row.uncertainty_pct,
                "%",
                table.source,
                table.check,
                f"expanded uncertainty (k = {table.coverage_factor:g}) at PF {factor.label}",
            )
    specified = ", ".join(label for row in table.rows for label in row.pfs)
    raise SpecError(f"no bench uncertainty is given for PF {factor.label} (given: {specified})")


def test_uncertainty_pct(pf: PowerFactor | str, *, specs: Specs | None = None) -> float:
    """Typical expanded bench uncertainty in % (k = 2) at a power factor."""
    return test_uncertainty(pf, specs=specs).value


# Named by the field's words, but pytest would collect them from a test module that imports them by name.
test_uncertainty.__test__ = False  # type: ignore[attr-defined]
test_uncertainty_pct.__test__ = False  # type: ignore[attr-defined]


def tur(limit_pct: float, uncertainty_pct: float) -> float:
    """Test uncertainty ratio: limit / expanded uncertainty (dimensionless)."""
    limit = positive("limit_pct", abs(_finite("limit_pct", limit_pct)), "%")
    return limit / positive("uncertainty_pct", uncertainty_pct, "%")
