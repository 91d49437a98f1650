"""Error types shared by every driver and codec (drivers layer; imports nothing of the rig)."""

from __future__ import annotations


class RigError(Exception):
    """Base of every error the rig raises on purpose; the CLI prints these without a traceback."""


class FrameError(RigError, ValueError):
    """A byte sequence is not a valid frame of its protocol; the message names what is wrong."""


class SecurityError(RigError):
    """A cryptographic check, key source or secure session failed."""


class InstrumentError(RigError):
    """An instrument or DUT link misbehaved: bad reply, error queue entry, closed port."""


class InstrumentTimeout(InstrumentError):
    """An instrument or DUT did not answer within its timeout."""


class NotOpenError(InstrumentError):
    """A driver was used before `open()` or after `close()`."""


class SafetyLimitError(RigError):
    """A set-point exceeds the bench's safety limits; nothing was sent."""


class ValidationError(RigError, ValueError):
    """A value given to a driver setting is outside what the instrument accepts; nothing was sent."""


class LinkError(InstrumentError):
    """The connection to an instrument or a DUT port broke (reset, vanished, garbled): a bench problem that
    reconnecting may cure (`drivers.retry`), never something the device under test did."""


class ConnectionRefused(LinkError):
    """The instrument's address refused the connection: nothing listens there (the instrument is off or still
    booting, or the host or port is wrong). Not a timeout: the other end said no at once."""


class AddressError(RigError):
    """An instrument's address leads nowhere useful: it is not a VISA resource name, or what answers there is
    not an IEEE 488.2 (SCPI) instrument. A bench-file mistake, not a link fault: never retried."""


class BenchFault(InstrumentError):
    """An instrument or link of the bench kept failing after the bounded retries (`drivers.retry`): the point
    it served is not measured. Never a verdict on the meter."""

    def __init__(self, message: str, *, instrument: str, what: str, attempts: int) -> None:
        super().__init__(message)
        self.instrument = instrument
        self.what = what
        self.attempts = attempts
