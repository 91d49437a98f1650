"""The rig's DL/T 698.45 host side against the `dlt698` package's own server playing a meter.

The package's `Server` is a complete DL/T 698.45 server (its C++ core); it listens on loopback TCP and the
rig's link reaches it through pyserial's socket:// URL, the same code path as an RS-485 adapter. What the
server was given is what the link must read back, with the standard's scalers applied.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dlt698 import ConnectionProfile, Device, Server, ServerOptions
from dlt698._native import AddressType, DeviceOptions, Role, ServerAddress, SessionOptions

from drivers.clock import WallClock
from drivers.dlt698 import DarRefused, Data, Dlt698Link, address_bytes, layout, oad, scaled
from drivers.dlt698.link import ServiceRefused

METER = "000000000001"
CLIENT = 0x10


def _server(address: str = METER) -> Server:
    options = ServerOptions(protocol=SessionOptions(
        server=ServerAddress(bytes=address_bytes(address), logical=0, type=AddressType.single),
        role=Role.server, client_address=CLIENT))
    server = Server(Device(DeviceOptions(layout=layout())), options=options)  # single phase, as the twin
    server.set(oad(0x200F), Data.uint16(4998))
    server.set(oad(0x2000), Data.array([Data.uint16(2203)]))
    server.set(oad(0x2001), Data.array([Data.int32(5012)]))
    server.set(oad(0x0010), Data.array([Data.uint32(v) for v in (123456, 30000, 40000, 50000, 3456)]))
    return server


@pytest.fixture
def served() -> Iterator[tuple[Server, Dlt698Link]]:
    with _server() as server:
        server.start_tcp("127.0.0.1", 0, ConnectionProfile.local_public)
        link = Dlt698Link(f"socket://127.0.0.1:{server.local_port}", METER, WallClock(), client=CLIENT,
                          reply_timeout_s=2.0)
        link.open()
        try:
            yield server, link
        finally:
            link.close()


def test_link_reads_what_the_package_server_was_given(served: tuple[Server, Dlt698Link]) -> None:
    _, link = served
    link.connect()
    assert link.get(oad(0x200F)).value == 4998
    assert scaled(oad(0x200F), link.get(oad(0x200F))).value == pytest.approx(49.98)
    assert scaled(oad(0x2000), link.get(oad(0x2000))).value == pytest.approx(220.3)
    assert scaled(oad(0x2001), link.get(oad(0x2001))).value == pytest.approx(5.012)
    energy = scaled(oad(0x0010), link.get(oad(0x0010)))
    assert energy.unit == "kWh"
    assert energy.values == pytest.approx((1234.56, 300.0, 400.0, 500.0, 34.56))
    # The package's server conforms: the link finds nothing to report in its replies.
    assert link.last is not None and link.last.problems() == []
    assert link.last.latency_s is not None and link.last.latency_s >= 0


def test_get_list_and_refusal_of_an_absent_object(served: tuple[Server, Dlt698Link]) -> None:
    _, link = served
    link.connect()
    voltage, frequency = link.get_list([oad(0x2000), oad(0x200F)])
    assert frequency.value == 4998
    assert scaled(oad(0x2000), voltage).value == pytest.approx(220.3)
    with pytest.raises(DarRefused) as refused:
        link.get(oad(0x2004))  # never given to the server
    assert refused.value.dar != 0
    assert "2004" in str(refused.value)


def test_without_an_association_the_server_refuses_the_service(served: tuple[Server, Dlt698Link]) -> None:
    _, link = served
    with pytest.raises(ServiceRefused, match="ERROR-Response"):
        link.get(oad(0x200F))
    link.connect()
    assert link.get(oad(0x200F)).value == 4998
    link.release()
    assert link.connected is None


def test_package_server_answers_nothing_for_another_address_and_the_link_says_so() -> None:
    with _server("000000000002") as server:
        server.start_tcp("127.0.0.1", 0, ConnectionProfile.local_public)
        link = Dlt698Link(f"socket://127.0.0.1:{server.local_port}", METER, WallClock(), client=CLIENT,
                          reply_timeout_s=0.3, retries=0)
        link.open()
        try:
            exchange = link.exchange(b"\x05\x01\x00\x20\x0f\x02\x00\x00")
        finally:
            link.close()
    assert exchange.reply is None
    assert exchange.problems() == ["no reply"]
