"""What every part of the bench file shares: the strict pydantic base, the one error type, and how a
validation error becomes one paragraph naming each bad key path."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from drivers.errors import RigError

# The resource string that means "the embedded twin fills this in when it starts".
TWIN_RESOURCE = "twin"


class ConfigError(RigError):
    """The bench file or an override is invalid; the message names the key and the reason."""


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo is never ignored) and a loaded bench cannot change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` merged over `base`, mapping by mapping (neither is changed)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _secret_path(loc: tuple[Any, ...]) -> bool:
    """Key material and passwords: an error names the key path, never the value given there."""
    return bool(loc) and (loc[0] == "keys" or "write_password" in loc)


def describe_errors(exc: ValidationError, prefix: str = "", source: str = "") -> str:
    """One paragraph naming each bad key path and why."""
    parts = []
    for err in exc.errors():
        path = ".".join(str(p) for p in ((prefix,) if prefix else ()) + tuple(err["loc"]))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see README 'Bench file')"
        shows_input = (err["type"] not in ("missing", "extra_forbidden") and not isinstance(err["input"], dict | list)
                       and not _secret_path(((prefix,) if prefix else ()) + tuple(err["loc"])))
        got = f" (got {err['input']!r})" if shows_input else ""
        parts.append(f"{path or '(top level)'}: {msg}{got}")
    where = f"{source}: " if source else ""
    return f"{where}invalid bench file: " + "; ".join(parts) + "."

