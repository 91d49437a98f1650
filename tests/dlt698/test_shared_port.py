"""A DL/T 698.45 link that borrows a DL/T 645 link's port (a meter speaking both on one UART) sees bytes on
their way in as the owner would: the causal clock must not pass a reply timeout while the reply sits in the
RFC 2217 socket, not yet moved to `in_waiting`."""

from __future__ import annotations

import socket
from types import SimpleNamespace

from drivers.dlt698.link import SharedPort
from drivers.serial_transport import bytes_arriving


class _Owner:
    """The part of a MeterLink a SharedPort uses: its current port, and dropping it."""

    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair()
        self.port = SimpleNamespace(in_waiting=0, _socket=self.ours, read=self.ours.recv,
                                    write=self.ours.send, close=lambda: None)
        self.dropped = 0

    def _require(self) -> SimpleNamespace:
        return self.port

    def _drop_port(self) -> None:
        self.dropped += 1


def test_bytes_in_the_owners_socket_count_as_arriving() -> None:
    owner = _Owner()
    shared = SharedPort(owner)  # type: ignore[arg-type]
    try:
        assert not bytes_arriving(shared)
        owner.theirs.send(b"\x68")
        assert bytes_arriving(shared)
        assert shared.read(1) == b"\x68"
        shared.write(b"\xfe")
        assert owner.theirs.recv(1) == b"\xfe"
        shared.close()
        assert owner.dropped == 1  # the owner opens its port again at its next use
    finally:
        owner.ours.close()
        owner.theirs.close()
