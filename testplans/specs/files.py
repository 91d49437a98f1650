"""Reading the accuracy YAML files: each validated against its model (`schema`), then cross-checked (every
current expression, class and profile named exists); errors name the file and the key path."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from testplans.specs.schema import FILE_MODELS, CommonFile, CurrentRow, LoadPointRow, RangeRow, SchemeFile, TableRow
from testplans.specs.terms import DEFAULT_PROFILE, SPEC_FOLDER, SpecFileError, parse_current

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


def _row_expressions(row: TableRow) -> list[tuple[str, str]]:
    if isinstance(row, RangeRow):
        return [("from", row.from_), ("to", row.to)]
    if isinstance(row, CurrentRow):
        return [("current", row.current)]
    if isinstance(row, LoadPointRow):
        return [(f"currents[{i}]", e) for i, e in enumerate(row.currents)] + [
            (f"optional[{i}]", e) for i, e in enumerate(row.optional)
        ]
    return []


def _row_problems(
    key: str, row: TableRow, classes: Collection[str] | None, profiles: Collection[str] | None
) -> list[str]:
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
        base = parse_current(expr)[1]
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
        (x_from, b_from), (x_to, b_to) = parse_current(row.from_), parse_current(row.to)
        if b_from == b_to and x_from >= x_to:
            problems.append(f"{key}: from {row.from_!r} must be below to {row.to!r}")
    return problems


def _scheme_problems(data: SchemeFile) -> list[str]:
    problems = []
    if DEFAULT_PROFILE not in data.profiles:
        problems.append(f"profiles: must declare the default profile {DEFAULT_PROFILE!r}")
    tables: Sequence[tuple[str, Sequence[TableRow]]] = (
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
        if parse_current(row.current)[1] == "Imin"
    ]
    problems += [
        f"transitional_current.rows[{i}].current: write Itr in Ib, In or Iref"
        for i, row in enumerate(data.transitional_current.rows)
        if parse_current(row.current)[1] in ("Itr", "Imin", "Imax")
    ]
    duration = data.creep.duration
    key = duration.values_key
    values = duration.class_values
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
        if parse_current(test.current)[1] in ("Ib", "In"):
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
    model = FILE_MODELS.get(str(raw.get("kind")))
    if model is None:
        raise SpecFileError(f"{path}: kind: must be one of {', '.join(FILE_MODELS)} (got {raw.get('kind')!r})")
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


