"""The twin meter's load relay: the control function of its expansion module, driven by the
management MCU's remote-control commands (1CH).

The twin's positions share one series current loop, as on a bench without per-position bypass
switches: an open relay breaks the loop, so no current flows through any meter of the rack (the
source and the reference standard measure none, no meter registers energy) until it closes again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Relay:
    """A latching load relay and the command state around it (keeps its state without mains)."""

    closed: bool = True
    trip_commanded: bool = False  # the last switching command was a trip (status word 3, bit 6)
    close_allowed: bool = False  # tripped, and the customer may close it with the button
    alarm: bool = False  # pre-trip alarm on (status word 3, bit 7)
    keep_power: bool = False  # trips are refused (status word 3, bit 12)
    operations: int = 0  # contact operations since the twin started
    welded: bool = False  # defect: the contacts stay closed whatever the meter commands (and reports)

    @property
    def is_open(self) -> bool:
        """True while the meter holds the relay open (what it reports in status word 3)."""
        return not self.closed

    @property
    def contacts_open(self) -> bool:
        """True while the contacts really are open (no load current): welded contacts never open."""
        return self.is_open and not self.welded

    def trip(self) -> None:
        """Open the contacts."""
        if self.closed:
            self.operations += 1
        self.closed = False
        self.trip_commanded = True
        self.close_allowed = False

    def allow_close(self) -> None:
        """Close allowed: the contacts stay open until the customer presses the button."""
        self.trip_commanded = False
        self.close_allowed = not self.closed

    def close(self) -> None:
        """Close the contacts (direct close)."""
        if not self.closed:
            self.operations += 1
        self.closed = True
        self.trip_commanded = False
        self.close_allowed = False

    def press_button(self) -> None:
        """The customer's button: closes the relay only when closing is allowed."""
        if self.close_allowed:
            self.close()
