"""Driver names a bench file may use, by instrument role (drivers layer).

The bench file names a driver; the bench builder looks it up here. Adding a vendor dialect means
adding a row, not an `if`.
"""

from __future__ import annotations

# role -> driver names accepted for it. Factories live with the bench builder (rig.bench), which
# composes transports and drivers; this table only says which names are valid so a bench file can be
# validated without importing any instrument library.
DRIVERS_BY_ROLE: dict[str, tuple[str, ...]] = {
    "source": ("scpi-phantom-source",),
    "reference": ("scpi-reference",),
}
