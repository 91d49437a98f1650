"""Metering-accuracy standards as data: error limits, test points, starting, creep, rounding, bench method.

The queries the plans ask (`from testplans.specs import accuracy as spec`); the vocabulary (`terms`), the YAML
shape (`schema`), reading the files (`files`), the row lookup (`lookup`) and the bench's method (`method`:
rounding, gate, uncertainty) are modules beside this one; the names of theirs that plans use are importable
from here too (`__all__`).

Test-plan layer: every value comes from the YAML tables beside this file (a lab corrects a value there,
not here); imports no rig, no instrument I/O and no pytest, and reads nothing at import time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Final

from testplans.specs.files import Specs, default_specs, load_spec_file, load_specs
from testplans.specs.lookup import (
    REL_TOL,
    InfluenceTest,
    Limit,
    LoadPointSpec,
    MeterContext,
    SpecValue,
    context_for,
    is_check,
    range_lookup,
)
from testplans.specs.method import (
    MIN_READINGS_PER_POINT,
    REPEATABILITY_MIN_READINGS,
    WS_PER_KWH,
    round_error,
    rounding_interval,
    rounding_interval_pct,
    test_uncertainty,
    test_uncertainty_pct,
    tur,
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
) -> list[LoadPointSpec]:
    """Basic-error test points of the meter's class (currents in A), by PF in table order, currents rising."""
    ctx = context_for(meter, profile, specs)
    table = ctx.scheme.load_points
    rows = [(i, row) for i, row in enumerate(table.rows) if ctx.applies(row)]
    if not rows:
        raise SpecError(f"{ctx.path.name}: load_points has no points for {ctx.who()}")
    points: list[LoadPointSpec] = []
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
                LoadPointSpec(
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
    pulse_period_s = WS_PER_KWH / (meter.constant_imp_per_kwh * phase_factor(meter) * meter.un_v * ist.value)
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


__all__ = [  # the queries, and the names of the modules beside this one that the plans use
    "CHECK_NOTE",
    "DEFAULT_PROFILE",
    "MIN_READINGS_PER_POINT",
    "REPEATABILITY_MIN_READINGS",
    "SPEC_FOLDER",
    "CreepSpec",
    "InfluenceTable",
    "InfluenceTest",
    "Limit",
    "LoadPointSpec",
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
