"""What the accuracy queries return (Limit, SpecValue, LoadPointSpec, InfluenceTest) and how a table row is
found for one meter type (its scheme, class, connection and profile), with clear errors."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

from testplans.specs.files import Specs, default_specs
from testplans.specs.schema import RangeRow, RangeTable, SchemeFile, TableRow
from testplans.specs.terms import (
    CHECK_NOTE,
    CONNECTIONS,
    MeterTypeLike,
    PowerFactor,
    SpecError,
    as_power_factor,
    parse_current,
    phase_factor,
)

# A current within this relative distance of a range boundary counts as on the boundary: a caller's
# 0.1 * Ib and the table's 0.1 Ib may differ in the last bit.
REL_TOL: Final = 1e-9

# --------------------------------------------------------------------------------------------------
# Results


class _Sourced:
    """A value read from a table: `check` says it is not yet confirmed against the standard."""

    check: bool

    @property
    def note(self) -> str:
        """CHECK_NOTE for a value still to be confirmed, else ''."""
        return CHECK_NOTE if self.check else ""


@dataclass(frozen=True)
class Limit(_Sourced):
    """A limit in ±% with its source; check=True: not yet confirmed against the standard."""

    value_pct: float
    source: str
    check: bool
    clause: str


@dataclass(frozen=True)
class SpecValue(_Sourced):
    """A value of a table (unit in `unit`) with its source; check=True: not yet confirmed."""

    value: float
    unit: str
    source: str
    check: bool
    clause: str


@dataclass(frozen=True)
class LoadPointSpec:
    """One basic-error test point as the tables ask for it: current in A, power factor, its limit and a label
    such as '0.05Ib' (what the source is then set to is a rig.procedures.LoadPoint)."""

    current_a: float
    pf: PowerFactor
    limit: Limit
    label: str
    optional: bool = field(default=False, kw_only=True)
    source: str = field(default="", kw_only=True)  # where the choice of point comes from
    check: bool = field(default=False, kw_only=True)  # the choice of point is not yet confirmed


@dataclass(frozen=True)
class InfluenceTest:
    """Conditions of an influence test: settings in `unit` (V or Hz), current in A, power factors."""

    influence: str
    description: str
    varies: str | None
    deviations_pct: tuple[float, ...]
    settings: tuple[float, ...]
    unit: str
    current_a: float
    current_label: str
    pfs: tuple[PowerFactor, ...]
    source: str
    check: bool


# --------------------------------------------------------------------------------------------------
# Looking values up for one meter

_METER_NUMBERS: Final = ("un_v", "ib_a", "imax_a", "constant_imp_per_kwh", "frequency_hz")
_R = TypeVar("_R", bound=TableRow)


def positive(name: str, value: object, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise SpecError(f"{name} = {value!r} {unit}: must be a positive number")
    return float(value)


@dataclass(frozen=True)
class MeterContext:
    meter: MeterTypeLike
    specs: Specs
    scheme: SchemeFile
    path: Path
    profile: str

    def who(self) -> str:
        m = self.meter
        profile = f", profile {self.profile}" if len(self.scheme.profiles) > 1 else ""
        return f"class {m.accuracy_class} ({m.scheme} scheme, {m.connection} connection{profile})"

    def applies(self, row: TableRow) -> bool:
        m = self.meter
        return (
            (row.classes is None or m.accuracy_class in row.classes)
            and m.connection in row.connections
            and (row.profiles is None or self.profile in row.profiles)
        )

    def one_row(self, rows: Sequence[_R], key: str, path: Path, what: str) -> _R:
        hits = [(i, row) for i, row in enumerate(rows) if self.applies(row)]
        if not hits:
            raise SpecError(f"{path.name}: {key} has no {what} for {self.who()}")
        if len(hits) > 1:
            raise SpecError(
                f"{path.name}: {key}.rows[{hits[0][0]}] and rows[{hits[1][0]}] both apply to {self.who()}; keep one"
            )
        return hits[0][1]

    def imin_a(self) -> float:
        row = self.one_row(self.scheme.minimum_current.rows, "minimum_current", self.path, "Imin")
        return self.amps(row.current)

    def itr_a(self) -> float:
        if self.meter.itr_a is not None:
            return self.meter.itr_a
        row = self.one_row(self.scheme.transitional_current.rows, "transitional_current", self.path, "Itr")
        return self.amps(row.current)

    def amps(self, expr: str) -> float:
        multiplier, base = parse_current(expr)
        return multiplier * _BASE_CURRENTS[base](self)


_BASE_CURRENTS: Final[Mapping[str, Callable[[MeterContext], float]]] = {
    "Ib": lambda c: c.meter.ib_a,
    "In": lambda c: c.meter.ib_a,
    "Iref": lambda c: c.meter.ib_a,
    "Itr": lambda c: c.itr_a(),
    "Imax": lambda c: c.meter.imax_a,
    "Imin": lambda c: c.imin_a(),
}


def context_for(meter: MeterTypeLike, profile: str, specs: Specs | None) -> MeterContext:
    tables = specs if specs is not None else default_specs()
    scheme = tables.schemes.get(meter.scheme)
    if scheme is None:
        raise SpecError(f"meter type: scheme {meter.scheme!r} is not one of {', '.join(tables.schemes)}")
    if meter.accuracy_class not in scheme.classes:
        raise SpecError(
            f"meter type: class {meter.accuracy_class!r} is not a class of the {meter.scheme} scheme "
            f"({', '.join(scheme.classes)})"
        )
    if meter.connection not in CONNECTIONS:
        raise SpecError(f"meter type: connection {meter.connection!r} is not one of {', '.join(CONNECTIONS)}")
    phase_factor(meter)
    for name in _METER_NUMBERS:
        positive(f"meter type: {name}", getattr(meter, name), "")
    if meter.itr_a is not None:
        positive("meter type: itr_a", meter.itr_a, "")
    if meter.imax_a < meter.ib_a:
        raise SpecError(f"meter type: imax_a = {meter.imax_a} A is below ib_a = {meter.ib_a} A")
    if profile not in scheme.profiles:
        raise SpecError(
            f"profile {profile!r} is not defined for the {meter.scheme} scheme (defined: {', '.join(scheme.profiles)})"
        )
    ctx = MeterContext(meter, tables, scheme, tables.scheme_paths[meter.scheme], profile)
    if ctx.itr_a() > meter.ib_a:
        raise SpecError(f"meter type: itr_a = {ctx.itr_a()} A is above ib_a = {meter.ib_a} A")
    return ctx


def is_check(row_check: bool | None, table_check: bool) -> bool:
    return table_check if row_check is None else row_check


def _inside(current: float, low: float, high: float, high_inclusive: bool) -> bool:
    if current < low * (1.0 - REL_TOL):
        return False
    return current <= high * (1.0 + REL_TOL) if high_inclusive else current < high * (1.0 - REL_TOL)


def range_lookup(
    table: RangeTable, key: str, path: Path, ctx: MeterContext, current_a: float, pf: PowerFactor | str, what: str
) -> Limit:
    current = positive("current", current_a, "A")
    factor = as_power_factor(pf)
    rows = [(i, row) for i, row in enumerate(table.rows) if ctx.applies(row)]
    if not rows:
        raise SpecError(f"{path.name}: {key} has no {what} for {ctx.who()}")
    at_pf = [(i, row) for i, row in rows if factor.label in row.pfs]
    if not at_pf:
        specified = list(dict.fromkeys(label for _, row in rows for label in row.pfs))
        raise SpecError(
            f"PF {factor.label} is not specified for the {what} of {ctx.who()}; specified: {', '.join(specified)}"
        )
    spans: list[str] = []
    hits: list[tuple[int, RangeRow, str]] = []
    for i, row in at_pf:
        low, high = ctx.amps(row.from_), ctx.amps(row.to)
        inclusive = row.to_inclusive if row.to_inclusive is not None else parse_current(row.to) == (1.0, "Imax")
        relation = "<=" if inclusive else "<"
        spans.append(f"{row.from_} ({low:.6g} A) <= I {relation} {row.to} ({high:.6g} A)")
        if _inside(current, low, high, inclusive):
            hits.append((i, row, f"{row.from_} <= I {relation} {row.to}"))
    if not hits:
        raise SpecError(
            f"current {current:.6g} A is outside the specified range of the {what} of {ctx.who()} at PF "
            f"{factor.label}: {'; '.join(spans)}"
        )
    if len(hits) > 1:
        raise SpecError(
            f"{path.name}: {key}.rows[{hits[0][0]}] and rows[{hits[1][0]}] both cover {current:.6g} A at PF "
            f"{factor.label} for {ctx.who()}; correct the table"
        )
    _, row, span = hits[0]
    details = [ctx.who(), f"PF {factor.label}", span]
    if row.note:
        details.append(row.note)
    return Limit(row.limit_pct, row.source or table.source, is_check(row.check, table.check), ", ".join(details))


