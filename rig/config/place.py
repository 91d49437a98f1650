"""`place:` of the bench file: the labgrid place a bench is (its coordinator and name), and `place:NAME`
values that stand for the place's exported resources.

A lab that shares its benches through labgrid exports each bench's instruments and meter ports from an
exporter and groups them into a place on the coordinator. The bench file then says where the bench is
rather than its addresses:

    place: {name: bench-3, coordinator: 10.0.0.5:20408}
    instruments:
      - {role: source, driver: ..., resource: "place:source"}

`rig run --place NAME` (rig.lab) acquires the place, turns its exported resources into the rig's resource
strings and publishes them for the run in RIG_PLACE_RESOURCES; the bench file is validated with every
`place:NAME` value replaced. Outside such a run a `place:NAME` value is an error that says so.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import Field

from rig.config.base import StrictModel

# Where the run publishes the acquired place's resources (JSON {"place": NAME, "resources": {NAME: STRING}}):
# the environment, so the run's own pytest session (in this process) and anything it starts see the same.
PLACE_RESOURCES_ENV = "RIG_PLACE_RESOURCES"
PLACE_PREFIX = "place:"
# labgrid's own default coordinator address (labgrid-client and labgrid-exporter use it when nothing is set)
DEFAULT_COORDINATOR = "127.0.0.1:20408"


class PlaceConfig(StrictModel):
    """The labgrid place this bench is: the run acquires it first and releases it on every ending."""

    name: str | None = Field(None, description="the place's name on the coordinator (or `rig run --place NAME`)")
    coordinator: str | None = Field(
        None, description="the coordinator's HOST:PORT (else LG_COORDINATOR, else labgrid's 127.0.0.1:20408)")
    wait: bool = Field(False, description="wait (a labgrid reservation) while another run holds the place")

    def address(self) -> str:
        """The coordinator to ask: the bench file's, else LG_COORDINATOR, else labgrid's default."""
        return self.coordinator or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR


def published_resources() -> tuple[str | None, dict[str, str]]:
    """(place name, {resource name: rig resource string}) of the place the current run holds; (None, {})."""
    text = os.environ.get(PLACE_RESOURCES_ENV)
    if not text:
        return None, {}
    try:
        data = json.loads(text)
        return str(data["place"]), {str(k): str(v) for k, v in dict(data["resources"]).items()}
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{PLACE_RESOURCES_ENV} is not what rig run writes there; unset it") from None


def resolve_references(data: Any) -> Any:
    """The raw bench document with every `place:NAME` string replaced by the held place's resource.

    ValueError names the key path: a resource the place does not export, or no place held at all."""
    if not isinstance(data, dict):
        return data
    place, resources = published_resources()
    return {key: _resolve(value, (str(key),), place, resources) for key, value in data.items()}


def _resolve(value: Any, path: tuple[str, ...], place: str | None, resources: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _resolve(v, (*path, str(k)), place, resources) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, (*path, str(n)), place, resources) for n, v in enumerate(value)]
    if not isinstance(value, str) or not value.startswith(PLACE_PREFIX) or path[0] == "place":
        return value
    name = value.removeprefix(PLACE_PREFIX)
    where = ".".join(path)
    if place is None:
        raise ValueError(f"{where}: {value!r} is a resource of a labgrid place, but no place is held; run it "
                         "with `rig run --place NAME` (or a `place: {name: ...}` section)")
    if name not in resources:
        exported = ", ".join(sorted(resources)) or "nothing"
        raise ValueError(f"{where}: place {place} exports no resource {name!r} (it exports {exported})")
    return resources[name]
