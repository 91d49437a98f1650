"""Metering-accuracy standards as data: error limits, test points, starting, creep, rounding, bench method.

Test-plan layer: every value comes from the YAML tables beside this file (a lab corrects a value there,
not here); imports no rig, no instrument I/O and no pytest, and reads nothing at import time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Annotated, Final, Literal, Protocol, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PositiveFloat, ValidationError

from drivers.errors import RigError

SPEC_FOLDER: Final = Path(__file__).resolve().parent
DEFAULT_PROFILE: Final = "iec"
CHECK_NOTE: Final = "value not yet confirmed against the standard"

# Method of the bench ("How a bench measures error" in the project reference): these are the rig's
# own choices, not values of a standard, so they live here rather than in the tables.
MIN_GATE_TIME_S: Final = 5.0
MIN_READINGS_PER_POINT: Final = 2
REPEATABILITY_MIN_READINGS: Final = 5

_WS_PER_KWH: Final = 3.6e6
_S_PER_MIN: Final = 60.0
_S_PER_H: Final = 3600.0
# A current within this relative distance of a range boundary counts as on the boundary: a caller's
# 0.1 * Ib and the table's 0.1 Ib may differ in the last bit.
_REL_TOL: Final = 1e-9


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
_CONNECTIONS: Final = ("direct", "ct")


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


def _as_pf(pf: PowerFactor | str) -> PowerFactor:
    return power_factor(pf)


# --------------------------------------------------------------------------------------------------
# Current expressions used by the tables: "0.05 Ib", "Imax", "10 Itr"

_BASES: Final[Mapping[str, str]] = {b.lower(): b for b in ("Ib", "In", "Iref", "Itr", "Imin", "Imax")}
_CURRENT_EXPR: Final = re.compile(r"(?:(?P<x>[0-9]*\.?[0-9]+)\s*)?(?P<base>[A-Za-z]+)")


@cache
def _parse_current(text: str) -> tuple[float, str]:
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


def _current_label(expr: str, connection: str) -> str:
    multiplier, base = _parse_current(expr)
    if base == "Iref":
        base = "Ib" if connection == "direct" else "In"
    return base if multiplier == 1.0 else f"{multiplier:g}{base}"


# --------------------------------------------------------------------------------------------------
# Table models (pydantic): the shape of the YAML files


def _class_name(value: object) -> object:
    # YAML reads an unquoted 2 or 1 as a number; a class name is text.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return value


def _pf_label(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = f"{value:g}"
    return power_factor(value).label if isinstance(value, str) else value


def _current_text(value: object) -> object:
    if not isinstance(value, str):
        return value
    multiplier, base = _parse_current(value)
    return base if multiplier == 1.0 else f"{multiplier:g} {base}"


ClassName = Annotated[str, BeforeValidator(_class_name)]
PfLabel = Annotated[str, BeforeValidator(_pf_label)]
CurrentText = Annotated[str, BeforeValidator(_current_text)]
Connection = Literal["direct", "ct"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Table(_Model):
    source: str = Field(min_length=1)
    check: bool = False


class _Row(_Model):
    classes: tuple[ClassName, ...] | None = None
    connections: tuple[Connection, ...] = Field(default=_CONNECTIONS, min_length=1)
    profiles: tuple[str, ...] | None = None
    check: bool | None = None
    source: str | None = None
    note: str | None = None


class RangeRow(_Row):
    """One row of a limit table: a value over from <= I < to at the listed power factors."""

    pfs: tuple[PfLabel, ...] = Field(min_length=1)
    from_: CurrentText = Field(alias="from")
    to: CurrentText
    to_inclusive: bool | None = None
    limit_pct: PositiveFloat


class CurrentRow(_Row):
    """One row of a current table (Imin, starting current)."""

    current: CurrentText


class LoadPointRow(_Row):
    """The test currents of one power factor."""

    pf: PfLabel
    currents: tuple[CurrentText, ...] = Field(min_length=1)
    optional: tuple[CurrentText, ...] = ()


class RangeTable(_Table):
    """A limit table in ranges of current."""

    rows: tuple[RangeRow, ...] = Field(min_length=1)


class CurrentTable(_Table):
    """A table of currents by class and connection."""

    rows: tuple[CurrentRow, ...] = Field(min_length=1)


class LoadPointTable(_Table):
    """The basic-error test points."""

    rows: tuple[LoadPointRow, ...] = Field(min_length=1)


class StartingTimeSpec(_Table):
    """Starting-test time as a number of pulse periods at Ist."""

    pulse_periods: PositiveFloat


CreepMethod = Literal["k_over_imax", "one_pulse_at_e_pct_of_imin_power"]


class CreepDurationSpec(_Table):
    """Minimum no-load test time: which formula, and its per-class constant."""

    method: CreepMethod
    k_by_class: dict[ClassName, PositiveFloat] = Field(default_factory=dict)
    e_pct_by_class: dict[ClassName, PositiveFloat] = Field(default_factory=dict)


class CreepSpec(_Table):
    """No-load (creep) test."""

    voltage_pct_un: PositiveFloat
    max_pulses: int = Field(ge=0)
    duration: CreepDurationSpec


class SchemeFile(_Model):
    """One scheme file (classic_2003.yaml, letter_2020.yaml)."""

    kind: Literal["scheme"]
    scheme: str = Field(min_length=1)
    title: str
    classes: tuple[ClassName, ...] = Field(min_length=1)
    profiles: dict[str, str] = Field(min_length=1)
    transitional_current: CurrentTable
    minimum_current: CurrentTable
    error_limits: RangeTable
    load_points: LoadPointTable
    starting_current: CurrentTable
    starting_time: StartingTimeSpec
    creep: CreepSpec


class InfluenceTestSpec(_Model):
    """Conditions of one influence test."""

    description: str
    varies: Literal["voltage", "frequency"] | None = None
    deviations_pct: tuple[float, ...] = ()
    current: CurrentText
    pfs: tuple[PfLabel, ...] = Field(min_length=1)
    check: bool | None = None
    source: str | None = None


class InfluenceRow(_Model):
    """Allowed change of error for one influence at one PF, by class."""

    influence: str
    pf: PfLabel
    limits_pct: dict[ClassName, PositiveFloat] = Field(min_length=1)
    check: bool | None = None
    source: str | None = None


class InfluenceTable(_Table):
    """Influence quantities: test conditions and limits."""

    class_aliases: dict[ClassName, ClassName] = Field(default_factory=dict)
    tests: dict[str, InfluenceTestSpec] = Field(min_length=1)
    rows: tuple[InfluenceRow, ...] = Field(min_length=1)


class RoundingTable(_Table):
    """Rounding of reported errors."""

    rule: Literal["half_even", "half_up"]
    error_interval_pct: dict[ClassName, PositiveFloat]
    std_dev_interval_pct: dict[ClassName, PositiveFloat]


class UncertaintyRow(_Model):
    """Expanded uncertainty of the bench at some power factors."""

    pfs: tuple[PfLabel, ...] = Field(min_length=1)
    uncertainty_pct: PositiveFloat


class UncertaintyTable(_Table):
    """Typical bench uncertainty."""

    coverage_factor: PositiveFloat
    rows: tuple[UncertaintyRow, ...] = Field(min_length=1)


class CommonFile(_Model):
    """The file of tables shared by both schemes (common.yaml)."""

    kind: Literal["common"]
    title: str
    repeatability: RangeTable
    influence: InfluenceTable
    rounding: RoundingTable
    test_uncertainty: UncertaintyTable


_FILE_MODELS: Final[Mapping[str, type[SchemeFile] | type[CommonFile]]] = {
    "scheme": SchemeFile,
    "common": CommonFile,
}


# --------------------------------------------------------------------------------------------------
# Loading and cross-checking the files


def _key_path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _file_error(path: Path, problems: Sequence[str]) -> SpecFileError:
    if len(problems) == 1:
        return SpecFileError(f"{path}: {problems[0]}")
    return SpecFileError(f"{path}: {len(problems)} problems:\n  " + "\n  ".join(problems))


def _validation_problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        given = error.get("input")
        if error["type"] not in ("missing", "extra_forbidden") and isinstance(given, str | int | float):
            message += f" (got {given!r})"
        problems.append(f"{_key_path(error['loc'])}: {message}")
    return problems


def _row_expressions(row: _Row) -> list[tuple[str, str]]:
    if isinstance(row, RangeRow):
        return [("from", row.from_), ("to", row.to)]
    if isinstance(row, CurrentRow):
        return [("current", row.current)]
    if isinstance(row, LoadPointRow):
        return [(f"currents[{i}]", e) for i, e in enumerate(row.currents)] + [
            (f"optional[{i}]", e) for i, e in enumerate(row.optional)
        ]
    return []


def _row_problems(key: str, row: _Row, classes: Collection[str] | None, profiles: Collection[str] | None) -> list[str]:
    problems = []
    if row.classes is not None and classes is not None:
        problems += [
            f"{key}.classes: unknown class {c!r} (known: {', '.join(classes)})" for c in row.classes if c not in classes
        ]
    if row.profiles is not None:
        if profiles is None:
            problems.append(f"{key}.profiles: this file has no profiles")
        else:
            problems += [
                f"{key}.profiles: unknown profile {p!r} (declared: {', '.join(profiles)})"
                for p in row.profiles
                if p not in profiles
            ]
    # Ib and In are the same attribute of the meter; naming the wrong one is a sign of a misplaced row.
    for key_part, expr in _row_expressions(row):
        base = _parse_current(expr)[1]
        if base == "Ib" and set(row.connections) != {"direct"}:
            problems.append(
                f"{key}.{key_part}: {expr!r}: Ib belongs to rows for direct connection only "
                "(write In for CT rows, Iref for rows of both)"
            )
        if base == "In" and set(row.connections) != {"ct"}:
            problems.append(
                f"{key}.{key_part}: {expr!r}: In belongs to rows for CT connection only "
                "(write Ib for direct rows, Iref for rows of both)"
            )
    if isinstance(row, RangeRow):
        (x_from, b_from), (x_to, b_to) = _parse_current(row.from_), _parse_current(row.to)
        if b_from == b_to and x_from >= x_to:
            problems.append(f"{key}: from {row.from_!r} must be below to {row.to!r}")
    return problems


def _scheme_problems(data: SchemeFile) -> list[str]:
    problems = []
    if DEFAULT_PROFILE not in data.profiles:
        problems.append(f"profiles: must declare the default profile {DEFAULT_PROFILE!r}")
    tables: Sequence[tuple[str, Sequence[_Row]]] = (
        ("transitional_current", data.transitional_current.rows),
        ("minimum_current", data.minimum_current.rows),
        ("error_limits", data.error_limits.rows),
        ("load_points", data.load_points.rows),
        ("starting_current", data.starting_current.rows),
    )
    for name, rows in tables:
        for i, row in enumerate(rows):
            problems += _row_problems(f"{name}.rows[{i}]", row, data.classes, tuple(data.profiles))
    problems += [
        f"minimum_current.rows[{i}].current: Imin cannot be defined by itself"
        for i, row in enumerate(data.minimum_current.rows)
        if _parse_current(row.current)[1] == "Imin"
    ]
    problems += [
        f"transitional_current.rows[{i}].current: write Itr in Ib, In or Iref"
        for i, row in enumerate(data.transitional_current.rows)
        if _parse_current(row.current)[1] in ("Itr", "Imin", "Imax")
    ]
    duration = data.creep.duration
    key = _CREEP_FORMULAS[duration.method].values_key
    values = _CREEP_FORMULAS[duration.method].values(duration)
    problems += [f"creep.duration.{key}: no value for class {c!r}" for c in data.classes if c not in values]
    problems += [f"creep.duration.{key}: unknown class {c!r}" for c in values if c not in data.classes]
    return problems


def _common_problems(data: CommonFile, classes: Collection[str] | None) -> list[str]:
    problems = []
    for i, row in enumerate(data.repeatability.rows):
        problems += _row_problems(f"repeatability.rows[{i}]", row, classes, None)
    influence = data.influence
    for name, test in influence.tests.items():
        if bool(test.deviations_pct) != (test.varies is not None):
            problems.append(f"influence.tests.{name}: deviations_pct and varies go together")
        if _parse_current(test.current)[1] in ("Ib", "In"):
            problems.append(f"influence.tests.{name}.current: write Iref: the test is for both connections")
    problems += [
        f"influence.rows[{i}].influence: {row.influence!r} is not under influence.tests ({', '.join(influence.tests)})"
        for i, row in enumerate(influence.rows)
        if row.influence not in influence.tests
    ]
    if classes is not None:
        named: list[tuple[str, str]] = [
            (f"influence.rows[{i}].limits_pct", c) for i, row in enumerate(influence.rows) for c in row.limits_pct
        ]
        named += [("influence.class_aliases", c) for pair in influence.class_aliases.items() for c in pair]
        for key in ("error_interval_pct", "std_dev_interval_pct"):
            table: Mapping[str, float] = getattr(data.rounding, key)
            named += [(f"rounding.{key}", c) for c in table]
            problems += [f"rounding.{key}: no value for class {c!r}" for c in classes if c not in table]
        problems += [
            f"{key}: unknown class {c!r} (known: {', '.join(classes)})" for key, c in named if c not in classes
        ]
    return problems


def load_spec_file(path: str | Path, *, known_classes: Collection[str] | None = None) -> SchemeFile | CommonFile:
    """Read and validate one spec YAML file; a bad file raises SpecFileError naming the file and the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecFileError(f"{path}: cannot read the spec file ({exc.strerror or exc})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = exc.problem_mark if isinstance(exc, yaml.MarkedYAMLError) else None
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = exc.problem if isinstance(exc, yaml.MarkedYAMLError) and exc.problem else str(exc)
        raise SpecFileError(f"{path}: {where}not valid YAML ({problem})") from None
    if not isinstance(raw, dict):
        raise SpecFileError(f"{path}: the file must be a mapping of keys (kind, title, tables)")
    model = _FILE_MODELS.get(str(raw.get("kind")))
    if model is None:
        raise SpecFileError(f"{path}: kind: must be one of {', '.join(_FILE_MODELS)} (got {raw.get('kind')!r})")
    try:
        data = model.model_validate(raw)
    except ValidationError as exc:
        raise _file_error(path, _validation_problems(exc)) from None
    problems = _scheme_problems(data) if isinstance(data, SchemeFile) else _common_problems(data, known_classes)
    if problems:
        raise _file_error(path, problems)
    return data


@dataclass(frozen=True)
class Specs:
    """The validated tables of one spec folder: one file per scheme plus the common file."""

    folder: Path
    schemes: Mapping[str, SchemeFile]
    scheme_paths: Mapping[str, Path]
    common: CommonFile
    common_path: Path


def load_specs(folder: str | Path = SPEC_FOLDER) -> Specs:
    """Read and cross-check every *.yaml of a spec folder (default: the tables shipped with this module)."""
    folder = Path(folder)
    paths = sorted(folder.glob("*.yaml"))
    if not paths:
        raise SpecFileError(f"{folder}: no *.yaml spec files in this folder")
    schemes: dict[str, SchemeFile] = {}
    scheme_paths: dict[str, Path] = {}
    commons: list[tuple[Path, CommonFile]] = []
    for path in paths:
        data = load_spec_file(path)
        if isinstance(data, CommonFile):
            commons.append((path, data))
        elif data.scheme in schemes:
            raise SpecFileError(f"{path}: scheme: {data.scheme!r} is also defined by {scheme_paths[data.scheme]}")
        else:
            schemes[data.scheme] = data
            scheme_paths[data.scheme] = path
    if len(commons) != 1:
        found = ", ".join(str(p) for p, _ in commons) or "none"
        raise SpecFileError(f"{folder}: needs exactly one file of kind common (found: {found})")
    common_path, common = commons[0]
    # The common file names classes of every scheme, so it is checked once all schemes are known.
    known = [c for data in schemes.values() for c in data.classes]
    problems = _common_problems(common, known)
    if problems:
        raise _file_error(common_path, problems)
    return Specs(folder, schemes, scheme_paths, common, common_path)


@cache
def default_specs() -> Specs:
    """The tables shipped beside this module, read and validated on first use."""
    return load_specs(SPEC_FOLDER)


# --------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Limit:
    """A limit in ±% with its source; check=True: not yet confirmed against the standard."""

    value_pct: float
    source: str
    check: bool
    clause: str

    @property
    def note(self) -> str:
        """CHECK_NOTE for a value still to be confirmed, else ''."""
        return CHECK_NOTE if self.check else ""


@dataclass(frozen=True)
class SpecValue:
    """A value of a table (unit in `unit`) with its source; check=True: not yet confirmed."""

    value: float
    unit: str
    source: str
    check: bool
    clause: str

    @property
    def note(self) -> str:
        """CHECK_NOTE for a value still to be confirmed, else ''."""
        return CHECK_NOTE if self.check else ""


@dataclass(frozen=True)
class LoadPoint:
    """One basic-error test point: current in A, power factor, its limit and a label such as '0.05Ib'."""

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
_R = TypeVar("_R", bound=_Row)


def _positive(name: str, value: object, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise SpecError(f"{name} = {value!r} {unit}: must be a positive number")
    return float(value)


@dataclass(frozen=True)
class _Ctx:
    meter: MeterTypeLike
    specs: Specs
    scheme: SchemeFile
    path: Path
    profile: str

    def who(self) -> str:
        m = self.meter
        profile = f", profile {self.profile}" if len(self.scheme.profiles) > 1 else ""
        return f"class {m.accuracy_class} ({m.scheme} scheme, {m.connection} connection{profile})"

    def applies(self, row: _Row) -> bool:
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
        multiplier, base = _parse_current(expr)
        return multiplier * _BASE_CURRENTS[base](self)


_BASE_CURRENTS: Final[Mapping[str, Callable[[_Ctx], float]]] = {
    "Ib": lambda c: c.meter.ib_a,
    "In": lambda c: c.meter.ib_a,
    "Iref": lambda c: c.meter.ib_a,
    "Itr": lambda c: c.itr_a(),
    "Imax": lambda c: c.meter.imax_a,
    "Imin": lambda c: c.imin_a(),
}


def _context(meter: MeterTypeLike, profile: str, specs: Specs | None) -> _Ctx:
    tables = specs if specs is not None else default_specs()
    scheme = tables.schemes.get(meter.scheme)
    if scheme is None:
        raise SpecError(f"meter type: scheme {meter.scheme!r} is not one of {', '.join(tables.schemes)}")
    if meter.accuracy_class not in scheme.classes:
        raise SpecError(
            f"meter type: class {meter.accuracy_class!r} is not a class of the {meter.scheme} scheme "
            f"({', '.join(scheme.classes)})"
        )
    if meter.connection not in _CONNECTIONS:
        raise SpecError(f"meter type: connection {meter.connection!r} is not one of {', '.join(_CONNECTIONS)}")
    phase_factor(meter)
    for name in _METER_NUMBERS:
        _positive(f"meter type: {name}", getattr(meter, name), "")
    if meter.itr_a is not None:
        _positive("meter type: itr_a", meter.itr_a, "")
    if meter.imax_a < meter.ib_a:
        raise SpecError(f"meter type: imax_a = {meter.imax_a} A is below ib_a = {meter.ib_a} A")
    if profile not in scheme.profiles:
        raise SpecError(
            f"profile {profile!r} is not defined for the {meter.scheme} scheme (defined: {', '.join(scheme.profiles)})"
        )
    ctx = _Ctx(meter, tables, scheme, tables.scheme_paths[meter.scheme], profile)
    if ctx.itr_a() > meter.ib_a:
        raise SpecError(f"meter type: itr_a = {ctx.itr_a()} A is above ib_a = {meter.ib_a} A")
    return ctx


def _check(row_check: bool | None, table_check: bool) -> bool:
    return table_check if row_check is None else row_check


def _inside(current: float, low: float, high: float, high_inclusive: bool) -> bool:
    if current < low * (1.0 - _REL_TOL):
        return False
    return current <= high * (1.0 + _REL_TOL) if high_inclusive else current < high * (1.0 - _REL_TOL)


def _range_lookup(
    table: RangeTable, key: str, path: Path, ctx: _Ctx, current_a: float, pf: PowerFactor | str, what: str
) -> Limit:
    current = _positive("current", current_a, "A")
    factor = _as_pf(pf)
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
        inclusive = row.to_inclusive if row.to_inclusive is not None else _parse_current(row.to) == (1.0, "Imax")
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
    return Limit(row.limit_pct, row.source or table.source, _check(row.check, table.check), ", ".join(details))


def error_limit_pct(
    meter: MeterTypeLike,
    current_a: float,
    pf: PowerFactor | str,
    *,
    profile: str = DEFAULT_PROFILE,
    specs: Specs | None = None,
) -> Limit:
    """Basic-error limit (±%) at a current in A and a power factor; SpecError outside the specified range."""
    ctx = _context(meter, profile, specs)
    return _range_lookup(ctx.scheme.error_limits, "error_limits", ctx.path, ctx, current_a, pf, "error limit")


def itr_a(meter: MeterTypeLike, *, profile: str = DEFAULT_PROFILE, specs: Specs | None = None) -> float:
    """Itr in A: the meter type's, or 0.1 Ib / 0.05 In from the transitional_current table when it gives none."""
    return _context(meter, profile, specs).itr_a()


def imin_a(meter: MeterTypeLike, *, profile: str = DEFAULT_PROFILE, specs: Specs | None = None) -> float:
    """Imin in A: the lowest current with a specified limit at PF 1."""
    return _context(meter, profile, specs).imin_a()


def load_points(
    meter: MeterTypeLike,
    *,
    include_optional: bool = True,
    profile: str = DEFAULT_PROFILE,
    specs: Specs | None = None,
) -> list[LoadPoint]:
    """Basic-error test points of the meter's class (currents in A), by PF in table order, currents rising."""
    ctx = _context(meter, profile, specs)
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
            if any(p.pf == factor and math.isclose(p.current_a, current, rel_tol=_REL_TOL) for p in points):
                continue
            try:
                limit = _range_lookup(
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
                    _current_label(expr, meter.connection),
                    optional=optional,
                    source=row.source or table.source,
                    check=_check(row.check, table.check),
                )
            )
    return points


def repeatability_limit_pct(
    meter: MeterTypeLike, current_a: float, pf: PowerFactor | str, *, specs: Specs | None = None
) -> Limit:
    """Limit (%) of the standard deviation of >= REPEATABILITY_MIN_READINGS readings at a current in A."""
    ctx = _context(meter, DEFAULT_PROFILE, specs)
    common = ctx.specs.common
    return _range_lookup(
        common.repeatability, "repeatability", ctx.specs.common_path, ctx, current_a, pf, "repeatability limit"
    )


# --------------------------------------------------------------------------------------------------
# Starting and no-load (creep)


def starting_current(meter: MeterTypeLike, *, profile: str = DEFAULT_PROFILE, specs: Specs | None = None) -> SpecValue:
    """Starting current Ist (A) with its source and check flag."""
    ctx = _context(meter, profile, specs)
    table = ctx.scheme.starting_current
    row = ctx.one_row(table.rows, "starting_current", ctx.path, "starting current")
    return SpecValue(
        ctx.amps(row.current),
        "A",
        row.source or table.source,
        _check(row.check, table.check),
        f"starting current {row.current}, {ctx.who()}",
    )


def starting_current_a(meter: MeterTypeLike, *, profile: str = DEFAULT_PROFILE, specs: Specs | None = None) -> float:
    """Starting current Ist in A (classic: fraction of Ib/In; letter: fraction of Itr)."""
    return starting_current(meter, profile=profile, specs=specs).value


def starting_time(meter: MeterTypeLike, *, profile: str = DEFAULT_PROFILE, specs: Specs | None = None) -> SpecValue:
    """Starting-test time (s) = pulse_periods x 3.6e6 / (C m Un Ist), with source and check flag."""
    ctx = _context(meter, profile, specs)
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
    ctx = _context(meter, DEFAULT_PROFILE, specs)
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


def _creep_k_over_imax(ctx: _Ctx, creep: CreepSpec) -> float:
    m = ctx.meter
    k = creep.duration.k_by_class[m.accuracy_class]
    minutes = k * 1e6 / (m.constant_imp_per_kwh * phase_factor(m) * m.un_v * m.imax_a)
    return minutes * _S_PER_MIN


def _creep_one_pulse_at_e_pct(ctx: _Ctx, creep: CreepSpec) -> float:
    m = ctx.meter
    e_pct = creep.duration.e_pct_by_class[m.accuracy_class]
    voltage_factor = creep.voltage_pct_un / 100.0
    hours = 1e5 / (voltage_factor * e_pct * m.constant_imp_per_kwh * phase_factor(m) * m.un_v * ctx.imin_a())
    return hours * _S_PER_H


@dataclass(frozen=True)
class _CreepFormula:
    values_key: str
    values: Callable[[CreepDurationSpec], Mapping[str, float]]
    duration_s: Callable[[_Ctx, CreepSpec], float]


_CREEP_FORMULAS: Final[Mapping[str, _CreepFormula]] = {
    "k_over_imax": _CreepFormula("k_by_class", lambda d: d.k_by_class, _creep_k_over_imax),
    "one_pulse_at_e_pct_of_imin_power": _CreepFormula(
        "e_pct_by_class", lambda d: d.e_pct_by_class, _creep_one_pulse_at_e_pct
    ),
}


def creep_duration(meter: MeterTypeLike, *, specs: Specs | None = None) -> SpecValue:
    """Minimum no-load test time (s) with its source and check flag."""
    ctx = _context(meter, DEFAULT_PROFILE, specs)
    creep = ctx.scheme.creep
    duration = creep.duration
    return SpecValue(
        _CREEP_FORMULAS[duration.method].duration_s(ctx, creep),
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
    return _context(meter, DEFAULT_PROFILE, specs).scheme.creep.max_pulses


# --------------------------------------------------------------------------------------------------
# Influence quantities


def _influence_table(influence: str, ctx: _Ctx) -> InfluenceTable:
    table = ctx.specs.common.influence
    if influence not in table.tests:
        raise SpecError(f"influence {influence!r} is not one of {', '.join(table.tests)}")
    return table


def influence_limit_pct(
    meter: MeterTypeLike, influence: str, pf: PowerFactor | str, *, specs: Specs | None = None
) -> Limit:
    """Allowed change of error (±%) for an influence ('voltage', 'frequency', 'harmonics') at a PF."""
    ctx = _context(meter, DEFAULT_PROFILE, specs)
    table = _influence_table(influence, ctx)
    factor = _as_pf(pf)
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
        _check(row.check, table.check),
        f"{influence}: {table.tests[influence].description}, PF {factor.label}, class {cls}{alias}",
    )


def influence_test(meter: MeterTypeLike, influence: str, *, specs: Specs | None = None) -> InfluenceTest:
    """Conditions of an influence test for this meter: settings in V or Hz, current in A, power factors."""
    ctx = _context(meter, DEFAULT_PROFILE, specs)
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
        current_label=_current_label(test.current, meter.connection),
        pfs=tuple(power_factor(label) for label in test.pfs),
        source=test.source or table.source,
        check=_check(test.check, table.check),
    )


# --------------------------------------------------------------------------------------------------
# Rounding, gate time, bench uncertainty

_ROUNDING_MODES: Final[Mapping[str, str]] = {"half_even": ROUND_HALF_EVEN, "half_up": ROUND_HALF_UP}


def rounding_interval(
    meter: MeterTypeLike, *, quantity: Literal["error", "std_dev"] = "error", specs: Specs | None = None
) -> SpecValue:
    """Rounding interval (%) of the mean error (or of the standard deviation), with source and check flag."""
    ctx = _context(meter, DEFAULT_PROFILE, specs)
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
    step = _positive("interval", interval, "%")
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
    power = _positive("power_w", power_w, "W")
    constant = _positive("constant_imp_per_kwh", constant_imp_per_kwh, "imp/kWh")
    gate = _positive("min_gate_s", min_gate_s, "s")
    pulse_period_s = _WS_PER_KWH / (power * constant)
    # An exact ratio can land a hair above an integer in binary (3.0000000000000004); that must not
    # cost a whole extra pulse.
    return max(1, math.ceil(gate / pulse_period_s * (1.0 - 1e-12)))


def test_uncertainty(pf: PowerFactor | str, *, specs: Specs | None = None) -> SpecValue:
    """Typical expanded bench uncertainty (%, k in the clause) at a power factor, with source and check flag."""
    factor = _as_pf(pf)
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
    limit = _positive("limit_pct", abs(_finite("limit_pct", limit_pct)), "%")
    return limit / _positive("uncertainty_pct", uncertainty_pct, "%")
