"""Reading a bench file: size-capped, YAML, dotted `--set` overrides applied, then validated; and the
`--ambient` text. Errors name the key path and the reason in one paragraph (`ConfigError`); nothing here
opens a port."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

import benches
from rig.config.base import ConfigError, describe_errors
from rig.config.bench import BenchConfig
from rig.operator import TOPICS

BENCHES_DIR = Path(benches.__file__).resolve().parent
DEFAULT_BENCH = BENCHES_DIR / "twin.yaml"

# Bench files, answers files: a few kB. Reading stops here, so /dev/zero or a huge file is an error, not a hang.
MAX_INPUT_FILE_BYTES = 1024 * 1024


def parse_ambient(text: str) -> dict[str, float]:
    """`TEMP_C,RH_PCT` (e.g. `23.1,45`) -> {temperature_c, humidity_pct}; ConfigError naming what is wrong.

    The ranges are those of the operator's answers to the same questions (`rig.operator.TOPICS`)."""
    parts = str(text).split(",")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        values = []
    if len(values) != 2:
        raise ConfigError(f"--ambient {text!r}: give TEMP_C,RH_PCT, e.g. 23.1,45")
    out = dict(zip(("temperature_c", "humidity_pct"), values, strict=True))
    for name, value in out.items():
        topic = TOPICS[f"ambient.{name}"]
        low = topic.low if topic.low is not None else -math.inf
        high = topic.high if topic.high is not None else math.inf
        if not low <= value <= high:
            raise ConfigError(f"--ambient {text!r}: {name} {value:g} {topic.unit} is outside {low:g}..{high:g}")
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `a.b.c=value` into a key path and a YAML-scalar value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        # Shown up to the first space or colon only: `keys.esam_master: 0011...` must not echo the key.
        shown = re.split(r"[\s:]", text.strip(), maxsplit=1)[0]
        shown += "..." if shown != text.strip() else ""
        raise ConfigError(f"override {shown!r} must look like key.path=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    except RecursionError:
        raise ConfigError(f"override {key.strip()}: the value is nested too deeply to be a bench setting") from None
    return key.strip().split("."), value


def apply_override(data: dict[str, Any], path: list[str], value: Any) -> None:
    """Set `value` at `path` in the raw bench document, creating mappings and indexing lists."""
    node: Any = data
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        where = ".".join(path[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override {'.'.join(path)}: {where} is not an index of a list of {len(node)}")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"override {'.'.join(path)}: {'.'.join(path[:depth])} is a value, not a mapping")
        # twin.positions is keyed by integer index.
        in_twin_positions = path[0] == "twin" and path[:depth][-1:] == ["positions"]
        key: Any = int(part) if part.isdigit() and in_twin_positions else part
        if last:
            node[key] = value
        else:
            node = node.setdefault(key, {})


def read_bench_yaml(source: Path) -> dict[str, Any]:
    """A bench file's YAML as a mapping (size-capped), or a ConfigError naming what is wrong with it."""
    text = read_text_capped(source, "bench file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"bench file {source} is not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise ConfigError(f"bench file {source} is nested too deeply to be a bench file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"bench file {source} must be a YAML mapping at the top level")
    return data


def load_bench(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> BenchConfig:
    """Read, override and validate a bench file (default: the embedded twin bench)."""
    source = Path(path) if path is not None else DEFAULT_BENCH
    data = read_bench_yaml(source)
    overridden = []
    for text_override in overrides:
        key_path, value = parse_override(text_override)
        apply_override(data, key_path, value)
        overridden.append(key_path)
    try:
        return validate_bench(data, source=str(source), overridden=overridden)
    except RecursionError:
        raise ConfigError(f"bench file {source}: a value is nested too deeply to be a bench setting") from None


def read_text_capped(path: Path, what: str) -> str:
    """A small input file's text; ConfigError (naming `what` and the path) when it cannot be read, is larger
    than MAX_INPUT_FILE_BYTES (/dev/zero, a log given by mistake) or is not UTF-8."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_INPUT_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror}") from None
    if len(data) > MAX_INPUT_FILE_BYTES:
        raise ConfigError(f"{what} {path} is larger than {MAX_INPUT_FILE_BYTES // 1024} KiB: is it the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:  # found by fuzzing: a damaged file is not a traceback
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {exc.start}): is it the right file?") from None


def validate_bench(data: dict[str, Any], source: str = "", overridden: list[list[str]] | None = None) -> BenchConfig:
    """Validate a bench document; ConfigError on any problem (blaming `--set` when every problem is at or
    under an overridden key path)."""
    try:
        bench = BenchConfig.model_validate(data, context={"source": source})
        if bench.twin is not None:
            for index in range(len(bench.positions)):
                bench.twin.knobs_for(index)
    except ValidationError as exc:
        raise ConfigError(_override_errors(exc, overridden or []) or describe_errors(exc, source=source)) from None
    return bench


def _override_errors(exc: ValidationError, overridden: list[list[str]]) -> str | None:
    """`--set twin.meter.metering.gian_error_pct: unknown key ...` when each problem lies on an override's path
    (the bench file is not to blame); None otherwise. The value is not repeated (it may be a key)."""
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        hit = next((path for path in overridden if loc[:len(path)] == path or path[:len(loc)] == loc), None)
        if hit is None:
            return None
        if err["type"] == "extra_forbidden":
            why = "unknown key (check the spelling; `rig twin knobs` lists the twin's knobs, README 'Bench file' " \
                  "the rest)"
        else:
            why = err["msg"].removeprefix("Value error, ")
        parts.append(f"--set {'.'.join(hit)}: " + (f"{'.'.join(loc)}: " if loc != hit else "") + why)
    return "; ".join(parts) or None


def dump_bench(bench: BenchConfig) -> str:
    """The bench as YAML text (what `rig twin serve` prints)."""
    data = bench.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False)
