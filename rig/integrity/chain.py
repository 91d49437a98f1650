"""The SM3 record chain (composition layer): canonical bytes and each record's hash over the previous one.
Pure functions over plain dicts; imports neither rig.results nor pytest.

h_0 = SM3("meter-hil-rig/chain/1:" + run_id), h_n = SM3(h_{n-1} || canonical(record_n)).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from drivers.crypto import sm3
from drivers.errors import RigError

CHAIN_FORMAT = "meter-hil-rig/chain/1"
# Fields of a record that the chain covers, in the journal's words.
RECORD_FIELDS = ("run_id", "seq", "session", "test", "position", "meter", "quantity", "value", "unit", "low",
                 "high", "verdict", "bench_time_s", "recorded_utc", "detail")


class IntegrityError(RigError):
    """Signing or checking a run failed for a reason other than an alteration (e.g. a bad key)."""


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no spaces, UTF-8 kept, floats as Python's shortest repr."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)


def canonical_bytes(value: Any) -> bytes:
    """`canonical_json(value)` as UTF-8 bytes."""
    return canonical_json(value).encode("utf-8")


def finite_or_none(value: float | int | None) -> float | None:
    """A measured number as stored: float, or None when missing or not finite (NaN, inf)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def normalise_detail(detail: Mapping[str, Any] | None) -> str | None:
    """A record's detail as the canonical JSON text the journal stores and the chain covers."""
    if not detail:
        return None
    # Round trip through JSON first: tuples become lists, unknown types their str().
    return canonical_json(json.loads(json.dumps(dict(detail), default=str, allow_nan=True)))


def genesis(run_id: str) -> str:
    """The chain's start for a run: binds the whole chain to the run id."""
    return sm3(f"{CHAIN_FORMAT}:{run_id}".encode()).hex()


def record_digest(previous_hex: str, body: Mapping[str, Any]) -> str:
    """h_n = SM3(h_{n-1} || canonical(body)), hex; `body` holds exactly RECORD_FIELDS."""
    missing = [f for f in RECORD_FIELDS if f not in body]
    if missing:
        raise IntegrityError(f"record body lacks {', '.join(missing)}")
    covered = {f: body[f] for f in RECORD_FIELDS}
    return sm3(bytes.fromhex(previous_hex) + canonical_bytes(covered)).hex()


def body_from_json(run_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The chain body of a record as results.json shows it (detail as an object there)."""
    body = {f: data.get(f) for f in RECORD_FIELDS}
    body["run_id"] = run_id
    for key in ("value", "low", "high", "bench_time_s"):
        if isinstance(body[key], int | float) and not isinstance(body[key], bool):
            body[key] = finite_or_none(body[key])
    body["detail"] = normalise_detail(data.get("detail"))
    return body
