"""Metering-accuracy standards as data: error limits, test points, starting, creep, rounding, bench method.

The queries the plans ask (`from testplans.specs import accuracy as spec`); the vocabulary (`terms`), the YAML
shape (`schema`), reading the files (`files`) and the row lookup (`lookup`) are modules beside this one; the
names of theirs that plans use are importable from here too (`__all__`).

Test-plan layer: every value comes from the YAML tables beside this file (a lab corrects a value there,
not here); imports no rig, no instrument I/O and no pytest, and reads nothing at import time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Final, Literal

from testplans.specs.files import Specs, default_specs, load_spec_file, load_specs
from testplans.specs.lookup import (
    REL_TOL,
    InfluenceTest,
    Limit,
    LoadPoint,
    MeterContext,
    SpecValue,
    context_for,
    is_check,
    positive,
    range_lookup,
)
from testplans.specs.schema import CreepSpec, InfluenceTable
from testplans.specs.terms import (
    CHECK_NOTE,
    DEFAULT_PROFILE,
    SPEC_FOLDER,
    MeterTypeLike,
    PowerFactor,
    SpecError,
    SpecFileError,
    as_power_factor,
    label_of_current,
    phase_factor,
    power_factor,
)

# Method of the bench ("How a bench measures error" in the project reference): these are the rig's
# own choices, not values of a standard, so they live here rather than in the tables.
MIN_GATE_TIME_S: Final = 5.0
MIN_READINGS_PER_POINT: Final = 2
REPEATABILITY_MIN_READINGS: Final = 5

_WS_PER_KWH: Final = 3.6e6
_S_PER_MIN: Final = 60.0
_S_PER_H: Final = 3600.0


def error_limit_pct(
    meter: MeterTypeLike,
    current_a: float,
    pf: PowerFactor | str,
    *,
    profile: str = DEFAULT_PROFILE,
    specs: Specs | None = None,
) -> Limit:
    """Basic-error limit (±%) at a current in A and a power factor; SpecError outside the specified range."""
    ctx = context_for(meter, profile, specs)
    return range_lookup(ctx.scheme.error_limits, "error_limits", ctx.path, ctx, current_a, pf, "error limit")


def itr_a(meter: MeterTypeLike, *, profile: str = DEFAULT_PROFILE, specs: Specs | None = None) -> float:
    """Itr in A: the meter type's, or 0.1 Ib / 0.05 In from the transitional_current table when it gives none."""
    return context_for(meter, profile, specs).itr_a()


def imin_a(meter: MeterTypeLike, *, profile: str = DEFAULT_PROFILE, specs: Specs | None = None) -> float:
    """Imin in A: the lowest current with a specified limit at PF 1."""
    return context_for(meter, profile, specs).imin_a()


def load_points(
    meter: MeterTypeLike,
    *,
    include_optional: bool = True,
    profile: str = DEFAULT_PROFILE,
    specs: Specs | None = None,
) -> list[LoadPoint]:
    """Basic-error test points of the meter's class (currents in A), by PF in table order, currents rising."""
    ctx = context_for(meter, profile, specs)
    table = ctx.scheme.load_points
    rows = [(i, row) for i, row in enumerate(table.rows) if ctx.applies(row)]
    if not rows:
        raise SpecError(f"{ctx.path.name}: load_points has no points for {ctx.who()}")
    points: list[LoadPoint] = []
    for i, row in rows:
        factor = power_factor(row.pf)
        wanted = [(e, False) for e in row.currents] + ([(e, True) for e in row.optional] if include_optional else [])
        for current, expr, optional in sorted(((ctx.amps(e), e, o) for e, o in wanted), key=lambda t: t[0]):
            # A meter whose 0.5 Imax equals In would otherwise be tested twice at the same point.
            if any(p.pf == factor and math.isclose(p.current_a, current, rel_tol=REL_TOL) for p in points):
                continue
            try:
                limit = range_lookup(
                    ctx.scheme.error_limits, "error_limits", ctx.path, ctx, current, factor, "error limit"
                )
            except SpecError as exc:
                raise SpecError(
                    f"{ctx.path.name}: load_points.rows[{i}] point {expr!r} ({current:.6g} A) has no limit: {exc}"
                ) from None
            points.append(
                LoadPoint(
                    current,
                    factor,
                    limit,
                    label_of_current(expr, meter.connection),
                    optional=optional,
                    source=row.source or table.source,
                    check=is_check(row.check, table.check),
                )
            )
    return points


def repeatability_limit_pct(
    meter: MeterTypeLike, current_a: float, pf: PowerFactor | str, *, specs: Specs | None = None
) -> Limit:
    """Limit (%) of the standard deviation of >= REPEATABILITY_MIN_READINGS readings at a current in A."""
    ctx = context_for(meter, DEFAULT_PROFILE, specs)
    common = ctx.specs.common
    return range_lookup(
        common.repeatability, "repeatability", ctx.specs.common_path, ctx, current_a, pf, "repeatability limit"
    )


# --------------------------------------------------------------------------------------------------
# Starting and no-load (creep)


def starting_current(meter: MeterTypeLike, *, profile: str = DEFAULT_PROFILE, specs: Specs | None = None) -> SpecValue:
    """Starting current Ist (A) with its source and check flag."""
    ctx = context_for(meter, profile, specs)
    table = ctx.scheme.starting_current
    row = ctx.one_row(table.rows, "starting_current", ctx.path, "starting current")
    return SpecValue(
        ctx.amps(row.current),
        "A",
        row.source or table.source,
        is_check(row.check, table.check),
        f"starting current {row.current}, {ctx.who()}",
    )


def starting_current_a(meter: MeterTypeLike, *, profile: str = DEFAULT_PROFILE, specs: Specs | None = None) -> float:
    """Starting current Ist in A (classic: fraction of Ib/In; letter: fraction of Itr)."""
    return starting_current(meter, profile=profile, specs=specs).value


def starting_time(meter: MeterTypeLike, *, profile: str = DEFAULT_PROFILE, specs: Specs | None = None) -> SpecValue:
    """Starting-test time (s) = pulse_periods x 3.6e6 / (C m Un Ist), with source and check flag."""
    ctx = context_for(meter, profile, specs)
    ist = starting_current(meter, profile=profile, specs=ctx.specs)
    spec = ctx.scheme.starting_time
    pulse_period_s = _WS_PER_KWH / (meter.constant_imp_per_kwh * phase_factor(meter) * meter.un_v * ist.value)
    return SpecValue(
        spec.pulse_periods * pulse_period_s,
        "s",
        spec.source,
        spec.check or ist.check,  # a time derived from an unconfirmed Ist is unconfirmed too
        f"{spec.pulse_periods:g} pulse periods at Ist = {ist.value:.6g} A, {ctx.who()}",
    )


def starting_time_s(meter: MeterTypeLike, *, profile: str = DEFAULT_PROFILE, specs: Specs | None = None) -> float:
    """Starting-test time in s: at least one pulse must come within it at Ist."""
    return starting_time(meter, profile=profile, specs=specs).value


def creep_voltage(meter: MeterTypeLike, *, specs: Specs | None = None) -> SpecValue:
    """No-load test voltage (V) with its source and check flag."""
    ctx = context_for(meter, DEFAULT_PROFILE, specs)
    creep = ctx.scheme.creep
    return SpecValue(
        creep.voltage_pct_un / 100.0 * meter.un_v,
        "V",
        creep.source,
        creep.check,
        f"{creep.voltage_pct_un:g} % Un, current circuit open, {ctx.who()}",
    )


def creep_voltage_v(meter: MeterTypeLike, *, specs: Specs | None = None) -> float:
    """No-load test voltage in V (115 % Un classic, 110 % Un letter)."""
    return creep_voltage(meter, specs=specs).value


def _creep_k_over_imax(ctx: MeterContext, creep: CreepSpec) -> float:
    m = ctx.meter
    k = creep.duration.k_by_class[m.accuracy_class]
    minutes = k * 1e6 / (m.constant_imp_per_kwh * phase_factor(m) * m.un_v * m.imax_a)
    return minutes * _S_PER_MIN


def _creep_one_pulse_at_e_pct(ctx: MeterContext, creep: CreepSpec) -> float:
    m = ctx.meter
    e_pct = creep.duration.e_pct_by_class[m.accuracy_class]
    voltage_factor = creep.voltage_pct_un / 100.0
    hours = 1e5 / (voltage_factor * e_pct * m.constant_imp_per_kwh * phase_factor(m) * m.un_v * ctx.imin_a())
    return hours * _S_PER_H


# The bench time each creep method asks for, by the method's name in the scheme file.
_CREEP_DURATIONS: Final[Mapping[str, Callable[[MeterContext, CreepSpec], float]]] = {
    "k_over_imax": _creep_k_over_imax,
    "one_pulse_at_e_pct_of_imin_power": _creep_one_pulse_at_e_pct,
}


def creep_duration(meter: MeterTypeLike, *, specs: Specs | None = None) -> SpecValue:
    """Minimum no-load test time (s) with its source and check flag."""
    ctx = context_for(meter, DEFAULT_PROFILE, specs)
    creep = ctx.scheme.creep
    duration = creep.duration
    return SpecValue(
        _CREEP_DURATIONS[duration.method](ctx, creep),
        "s",
        duration.source,
        duration.check,
        f"no-load test time ({duration.method}), {ctx.who()}",
    )


def creep_duration_s(meter: MeterTypeLike, *, specs: Specs | None = None) -> float:
    """Minimum no-load test time in s."""
    return creep_duration(meter, specs=specs).value


def creep_max_pulses(meter: MeterTypeLike, *, specs: Specs | None = None) -> int:
    """Most pulses (count) a meter may give during the no-load test."""
    return context_for(meter, DEFAULT_PROFILE, specs).scheme.creep.max_pulses


# --------------------------------------------------------------------------------------------------
# Influence quantities


def _influence_table(influence: str, ctx: MeterContext) -> InfluenceTable:
    table = ctx.specs.common.influence
    if influence not in table.tests:
        raise SpecError(f"influence {influence!r} is not one of {', '.join(table.tests)}")
    return table


def influence_limit_pct(
    meter: MeterTypeLike, influence: str, pf: PowerFactor | str, *, specs: Specs | None = None
) -> Limit:
    """Allowed change of error (±%) for an influence ('voltage', 'frequency', 'harmonics') at a PF."""
    ctx = context_for(meter, DEFAULT_PROFILE, specs)
    table = _influence_table(influence, ctx)
    factor = as_power_factor(pf)
    cls = meter.accuracy_class
    looked_up = table.class_aliases.get(cls, cls)
    rows = [(i, row) for i, row in enumerate(table.rows) if row.influence == influence]
    at_pf = [(i, row) for i, row in rows if row.pf == factor.label]
    if not at_pf:
        specified = ", ".join(dict.fromkeys(row.pf for _, row in rows))
        raise SpecError(f"the influence table has no {influence} test at PF {factor.label} (specified: {specified})")
    hits = [(i, row) for i, row in at_pf if looked_up in row.limits_pct]
    alias = f" (looked up as class {looked_up})" if looked_up != cls else ""
    if not hits:
        raise SpecError(f"the influence table has no value for class {cls}{alias}: {influence} at PF {factor.label}")
    if len(hits) > 1:
        raise SpecError(
            f"{ctx.specs.common_path.name}: influence.rows[{hits[0][0]}] and rows[{hits[1][0]}] both give class "
            f"{looked_up} for {influence} at PF {factor.label}; keep one"
        )
    _, row = hits[0]
    return Limit(
        row.limits_pct[looked_up],
        row.source or table.source,
        is_check(row.check, table.check),
        f"{influence}: {table.tests[influence].description}, PF {factor.label}, class {cls}{alias}",
    )


def influence_test(meter: MeterTypeLike, influence: str, *, specs: Specs | None = None) -> InfluenceTest:
    """Conditions of an influence test for this meter: settings in V or Hz, current in A, power factors."""
    ctx = context_for(meter, DEFAULT_PROFILE, specs)
    table = _influence_table(influence, ctx)
    test = table.tests[influence]
    reference = {"voltage": (meter.un_v, "V"), "frequency": (meter.frequency_hz, "Hz")}
    base, unit = reference[test.varies] if test.varies is not None else (0.0, "")
    return InfluenceTest(
        influence=influence,
        description=test.description,
        varies=test.varies,
        deviations_pct=test.deviations_pct,
        settings=tuple(base * (1.0 + d / 100.0) for d in test.deviations_pct),
        unit=unit,
        current_a=ctx.amps(test.current),
        current_label=label_of_current(test.current, meter.connection),
        pfs=tuple(power_factor(label) for label in test.pfs),
        source=test.source or table.source,
        check=is_check(test.check, table.check),
    )


# --------------------------------------------------------------------------------------------------
# Rounding, gate time, bench uncertainty

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


def pulses_for_gate(power_w: float, constant_imp_per_kwh: float, min_gate_s: float = MIN_GATE_TIME_S) -> int:
    """Meter pulses N (count) to gate on so one reading lasts at least min_gate_s: ceil(T_min / T_pulse), >= 1."""
    power = positive("power_w", power_w, "W")
    constant = positive("constant_imp_per_kwh", constant_imp_per_kwh, "imp/kWh")
    gate = positive("min_gate_s", min_gate_s, "s")
    pulse_period_s = _WS_PER_KWH / (power * constant)
    # An exact ratio can land a hair above an integer in binary (3.0000000000000004); that must not
    # cost a whole extra pulse.
    return max(1, math.ceil(gate / pulse_period_s * (1.0 - 1e-12)))


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


__all__ = [  # the queries, and the names of the modules beside this one that the plans use
    "CHECK_NOTE",
    "DEFAULT_PROFILE",
    "MIN_GATE_TIME_S",
    "MIN_READINGS_PER_POINT",
    "REPEATABILITY_MIN_READINGS",
    "SPEC_FOLDER",
    "CreepSpec",
    "InfluenceTable",
    "InfluenceTest",
    "Limit",
    "LoadPoint",
    "MeterTypeLike",
    "PowerFactor",
    "SpecError",
    "SpecFileError",
    "SpecValue",
    "Specs",
    "creep_duration",
    "creep_duration_s",
    "creep_max_pulses",
    "creep_voltage",
    "creep_voltage_v",
    "default_specs",
    "error_limit_pct",
    "imin_a",
    "influence_limit_pct",
    "influence_test",
    "itr_a",
    "load_points",
    "load_spec_file",
    "load_specs",
    "phase_factor",
    "power_factor",
    "pulses_for_gate",
    "repeatability_limit_pct",
    "round_error",
    "rounding_interval",
    "rounding_interval_pct",
    "starting_current",
    "starting_current_a",
    "starting_time",
    "starting_time_s",
    "test_uncertainty",
    "test_uncertainty_pct",
    "tur",
]
