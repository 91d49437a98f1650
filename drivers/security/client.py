"""A meter's secure session over its DL/T 645 link (drivers layer): `EsamSession` requests sent through a
`MeterLink`, replies handed back to the session. Imports nothing above the drivers layer."""

from __future__ import annotations

import datetime as dt

from drivers.clock import Clock
from drivers.dlt645.identifiers import Value
from drivers.dlt645.link import AbnormalReply, MeterLink
from drivers.security.session import (
    MAC_LEVEL,
    Accepted,
    Authenticated,
    EsamSession,
    RemoteControl,
    SecureRequest,
)

__all__ = ["MeterSecurityClient"]


class MeterSecurityClient:
    """Identity authentication, protected commands and session end with one meter, over its link.

    Each call returns the event of the meter's reply or raises: `SecurityRefused` (the meter refused,
    with its error word), `SecurityError` (no open session here), `FrameError` / `InstrumentTimeout`
    (the reply is malformed or missing)."""

    def __init__(self, link: MeterLink, session: EsamSession, clock: Clock) -> None:
        self.link = link
        self.session = session
        self.clock = clock

    def __repr__(self) -> str:
        return f"MeterSecurityClient({self.link.url}, {self.session!r})"

    def send(self, request: SecureRequest) -> Authenticated | Accepted:
        """Send a prepared (or tampered, or already sent) request and handle its reply."""
        try:
            exchange = self.link.request(request.frame)
        except AbnormalReply as exc:
            reply = exc.reply
        else:
            assert exchange.reply is not None
            reply = exchange.reply
        return self.session.handle_reply(request, reply, self.clock.now())

    def authenticate(self, **options: bytes) -> Authenticated:
        """Identity authentication (see `EsamSession.authentication_request` for the test options)."""
        event = self.send(self.session.authentication_request(**options))
        assert isinstance(event, Authenticated)
        return event

    def set_validity(self, minutes: int) -> Accepted:
        """Set the meter's session validity, minutes (with MAC)."""
        event = self.send(self.session.validity_request(minutes, now_s=self.clock.now()))
        assert isinstance(event, Accepted)
        return event

    def control_request(self, command: RemoteControl, deadline: dt.datetime | None = None, *,
                        valid_for_s: float = 600.0, even_if_closed: bool = False) -> SecureRequest:
        """A remote-control request; the deadline defaults to the bench's calendar time + `valid_for_s`."""
        when = deadline if deadline is not None else self.clock.datetime_now() + dt.timedelta(seconds=valid_for_s)
        return self.session.control_request(command, when, now_s=self.clock.now(), even_if_closed=even_if_closed)

    def control(self, command: RemoteControl, deadline: dt.datetime | None = None, *,
                even_if_closed: bool = False) -> Accepted:
        """Send a remote-control command (trip, close, alarm, keep-power) with ciphertext and MAC."""
        event = self.send(self.control_request(command, deadline, even_if_closed=even_if_closed))
        assert isinstance(event, Accepted)
        return event

    def write(self, di: int, value: Value, *, level: int = MAC_LEVEL, even_if_closed: bool = False) -> Accepted:
        """A 14H write at level 99 (MAC) or 98 (ciphertext and MAC)."""
        event = self.send(self.session.write_request(di, value, level=level, now_s=self.clock.now(),
                                                     even_if_closed=even_if_closed))
        assert isinstance(event, Accepted)
        return event

    def end(self) -> Accepted:
        """End the identity authentication at the meter."""
        event = self.send(self.session.end_request())
        assert isinstance(event, Accepted)
        return event
