"""The shape of the accuracy YAML files (pydantic models): a scheme file per standard (classes, load points,
limits by current range) and the common file (influences, rounding, test uncertainty)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PositiveFloat

from testplans.specs.terms import CONNECTIONS, parse_current, power_factor

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
    multiplier, base = parse_current(value)
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


class TableRow(_Model):
    classes: tuple[ClassName, ...] | None = None
    connections: tuple[Connection, ...] = Field(default=CONNECTIONS, min_length=1)
    profiles: tuple[str, ...] | None = None
    check: bool | None = None
    source: str | None = None
    note: str | None = None


class RangeRow(TableRow):
    """One row of a limit table: a value over from <= I < to at the listed power factors."""

    pfs: tuple[PfLabel, ...] = Field(min_length=1)
    from_: CurrentText = Field(alias="from")
    to: CurrentText
    to_inclusive: bool | None = None
    limit_pct: PositiveFloat


class CurrentRow(TableRow):
    """One row of a current table (Imin, starting current)."""

    current: CurrentText


class LoadPointRow(TableRow):
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
# Each creep method's per-class constant: the key it is given under in a scheme file.
CREEP_VALUES_KEYS: Final[Mapping[str, str]] = {"k_over_imax": "k_by_class",
                                               "one_pulse_at_e_pct_of_imin_power": "e_pct_by_class"}


class CreepDurationSpec(_Table):
    """Minimum no-load test time: which formula, and its per-class constant."""

    method: CreepMethod
    k_by_class: dict[ClassName, PositiveFloat] = Field(default_factory=dict)
    e_pct_by_class: dict[ClassName, PositiveFloat] = Field(default_factory=dict)

    @property
    def values_key(self) -> str:
        """The key of this method's per-class constants (k_by_class or e_pct_by_class)."""
        return CREEP_VALUES_KEYS[self.method]

    @property
    def class_values(self) -> Mapping[str, float]:
        """This method's constant for each class."""
        values: Mapping[str, float] = getattr(self, self.values_key)
        return values


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


FILE_MODELS: Final[Mapping[str, type[SchemeFile] | type[CommonFile]]] = {
    "scheme": SchemeFile,
    "common": CommonFile,
}


