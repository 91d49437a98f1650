"""Comparing what was signed or derived with what is there now, leaf by leaf: each difference named by its
path (`results.json tests[...].outcome`), rows of a list matched by the field that tells them apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rig.integrity.chain import canonical_json
from rig.integrity.report import Verification

# How rows of a list are told apart when a list in a document or manifest is compared row by row.
_ROW_KEYS = ("test", "seq", "session", "name", "role")
ABSENT = object()


def _show(value: Any) -> str:
    return "absent" if value is ABSENT else repr(value)


def _row_key(*lists: Sequence[Any]) -> str | None:
    """The field that tells the rows of each list apart, if they are objects with one."""
    if not all(rows and all(isinstance(r, dict) for r in rows) for rows in lists):
        return None
    for key in _ROW_KEYS:
        if all(len({canonical_json(r.get(key)) for r in rows}) == len(rows) and all(key in r for r in rows)
               for rows in lists):
            return key
    return None


def diff(reference: Any, actual: Any, path: str, said: str) -> list[tuple[str, str]]:
    """(path, `actual (said reference)`) for every leaf of `actual` that differs from `reference`."""
    if isinstance(reference, dict) and isinstance(actual, dict):
        out: list[tuple[str, str]] = []
        for key in [*reference, *(k for k in actual if k not in reference)]:
            out += diff(reference.get(key, ABSENT), actual.get(key, ABSENT), f"{path}.{key}", said)
        return out
    if isinstance(reference, list) and isinstance(actual, list):
        return _diff_lists(reference, actual, path, said)
    if canonical_json(reference if reference is not ABSENT else "\0absent") == \
            canonical_json(actual if actual is not ABSENT else "\0absent"):
        return []
    return [(path, f"{_show(actual)} ({said} {_show(reference)})")]


def _diff_lists(reference: list[Any], actual: list[Any], path: str, said: str) -> list[tuple[str, str]]:
    key = _row_key(reference, actual)
    if key is None:
        if len(reference) != len(actual):
            return [(path, f"{len(actual)} entries ({said} {len(reference)})")]
        return [d for i, (a, b) in enumerate(zip(reference, actual)) for d in diff(a, b, f"{path}[{i}]", said)]
    ref = {canonical_json(r[key]): r for r in reference}
    act = {canonical_json(r[key]): r for r in actual}
    out = []
    for k in [*ref, *(k for k in act if k not in ref)]:
        out += diff(ref.get(k, ABSENT), act.get(k, ABSENT), f"{path}[{json.loads(k)}]", said)
    if not out and list(ref) != list(act):
        out.append((path, "the same entries in another order"))
    return out


def compare_rows(out: Verification, what: str, signed: Sequence[Mapping[str, Any]], now: Sequence[Mapping[str, Any]],
                  key: Callable[[Mapping[str, Any]], str]) -> None:
    """Journal rows against the rows a manifest signed: each differing row named with every differing column."""
    signed_by = {key(r): r for r in signed}
    now_by = {key(r): r for r in now}
    for name in [*signed_by, *(k for k in now_by if k not in signed_by)]:
        if name not in now_by:
            out.add("altered", f"{what} {name}", "missing: deleted after it was signed")
        elif name not in signed_by:
            out.add("altered", f"{what} {name}", "not in what was signed: added afterwards")
        else:
            changes = diff(dict(signed_by[name]), dict(now_by[name]), "", "signed:")
            if changes:
                out.add("altered", f"{what} {name}", "; ".join(f"{p.lstrip('.')} {c}" for p, c in changes))
    if set(signed_by) == set(now_by) and list(signed_by) != list(now_by):
        out.add("altered", f"{what}s", "in another order than signed")
