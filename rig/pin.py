"""The resume pin (composition layer): hashes of what a run was asked, so that a resume notices changed inputs.

The first session journals the pin in its metadata, which the session's signed manifest covers. Values are
kept as SM3 hashes (bench file and answers file content, each override's value), so no error message and no
journal row repeats them; differences are named by what changed, never by the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from drivers.crypto import sm3
from rig.config import MAX_INPUT_FILE_BYTES

PIN_FORMAT = "meter-hil-rig/run-pin/1"


def rig_version() -> str:
    """The installed rig's version ('unknown' when it is not installed as a package)."""
    try:
        return metadata.version("meter-hil-rig")
    except metadata.PackageNotFoundError:
        return "unknown"


def _content_sm3(path: Path) -> str | None:
    """SM3 hex of a file's first MAX_INPUT_FILE_BYTES (None when it cannot be read)."""
    try:
        with path.open("rb") as handle:
            return sm3(handle.read(MAX_INPUT_FILE_BYTES + 1)).hex()
    except OSError:
        return None


def _override_hashes(overrides: Sequence[str]) -> dict[str, str]:
    """Key path -> SM3 of its value text (the last one given wins, as when the bench loads)."""
    out: dict[str, str] = {}
    for text in overrides:
        key, _, value = text.partition("=")
        out[key.strip()] = sm3(value.strip().encode("utf-8")).hex()
    return out


def run_pin(*, bench_file: Path, overrides: Sequence[str], plans: Sequence[str], pytest_extra: Sequence[str],
            operator_answers: Path | None) -> dict[str, Any]:
    """What a session was asked: bench file, overrides, plan selection, operator answers, rig version."""
    return {
        "format": PIN_FORMAT,
        "bench_file": {"path": str(bench_file), "sm3": _content_sm3(bench_file)},
        "overrides": _override_hashes(overrides),
        "plans": list(plans),
        "pytest_extra": list(pytest_extra),
        "operator_answers": (None if operator_answers is None
                             else {"path": str(operator_answers), "sm3": _content_sm3(operator_answers)}),
        "rig_version": rig_version(),
    }


def _file_difference(what: str, first: Any, now: Any) -> list[str]:
    """A file input is the same when its content is (a copy elsewhere with the same content is no change)."""
    if not isinstance(first, dict) and not isinstance(now, dict):
        return []
    if not isinstance(first, dict):
        return [f"{what}: none in the first session, {now.get('path')} now"]
    if not isinstance(now, dict):
        return [f"{what}: {first.get('path')} in the first session, none now"]
    if first.get("sm3") == now.get("sm3"):
        return []
    where = (f" {now.get('path')}" if first.get("path") == now.get("path")
             else f" {now.get('path')} (the first session's was {first.get('path')})")
    return [f"{what}{where}: content changed since the first session "
            f"(SM3 {str(first.get('sm3'))[:12]}..., now {str(now.get('sm3'))[:12]}...)"]


def pin_differences(first: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Each input that differs between the first session's pin and this one, named (never its value)."""
    out = _file_difference("bench file", first.get("bench_file"), now.get("bench_file"))
    first_overrides, now_overrides = first.get("overrides") or {}, now.get("overrides") or {}
    for key in sorted(set(first_overrides) | set(now_overrides)):
        if key not in now_overrides:
            out.append(f"override {key} removed")
        elif key not in first_overrides:
            out.append(f"override {key} added")
        elif first_overrides[key] != now_overrides[key]:
            out.append(f"override {key} changed")
    if first.get("plans") != now.get("plans"):
        out.append(f"plans {first.get('plans')} in the first session, {now.get('plans')} now")
    if first.get("pytest_extra") != now.get("pytest_extra"):
        out.append(f"pytest arguments {first.get('pytest_extra')} in the first session, {now.get('pytest_extra')} now")
    out += _file_difference("operator answers file", first.get("operator_answers"), now.get("operator_answers"))
    if first.get("rig_version") != now.get("rig_version"):
        out.append(f"rig version {first.get('rig_version')} in the first session, {now.get('rig_version')} now")
    return out
