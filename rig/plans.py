"""What a plans package hands the rig: where its plans are, and its mutation catalogue.

The rig never imports the plans (they sit above it); a plans package declares both through entry points in its
pyproject.toml, read here with importlib.metadata:

    [project.entry-points."meter_hil_rig.plans"]
    testplans = "testplans"                       # the package whose folder holds the plans
    [project.entry-points."meter_hil_rig.mutations"]
    testplans = "testplans.mutations:MUTATIONS"   # its defect catalogue, for `rig mutate`
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Protocol

from drivers.errors import RigError

PLANS_GROUP = "meter_hil_rig.plans"
MUTATIONS_GROUP = "meter_hil_rig.mutations"


class Mutation(Protocol):
    """One defect of the catalogue, as `rig mutate` uses it."""

    knob: str
    catches: tuple[str, ...]  # plan test ids (file::function) that must fail when the knob is outside its spec

    def override(self, meter: Any, *, violating: bool = True) -> str:
        """The `--set` text that puts the knob outside (or just inside) its spec for `meter`."""
        ...


def _declared(group: str) -> list[EntryPoint]:
    found = sorted(entry_points(group=group), key=lambda point: point.name)
    if not found:
        raise RigError(f"no plans package declares {group!r} entry points: is the rig installed (pip install -e .)?")
    return found


def _load(point: EntryPoint, group: str) -> Any:
    try:
        return point.load()
    except (ImportError, AttributeError) as exc:
        raise RigError(f"entry point {point.name} = {point.value} ({group}) cannot be loaded: {exc}") from None


def plans_dir() -> Path:
    """The folder of the plans package (node ids start with its name wherever it is installed)."""
    points = _declared(PLANS_GROUP)
    if len(points) > 1:
        names = ", ".join(p.value for p in points)
        raise RigError(f"more than one plans package is installed ({names}); the rig runs one")
    module = _load(points[0], PLANS_GROUP)
    return Path(module.__file__).resolve().parent


def mutation_catalogue() -> list[Mutation]:
    """Every declared mutation, catalogue by catalogue in entry-point name order."""
    out: list[Mutation] = []
    for point in _declared(MUTATIONS_GROUP):
        catalogue: Sequence[Mutation] | Callable[[], Sequence[Mutation]] = _load(point, MUTATIONS_GROUP)
        out += list(catalogue() if callable(catalogue) else catalogue)
    return out
