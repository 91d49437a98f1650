"""Replies are matched to their request: a late reply to an earlier request, arriving while the link waits for
the answer to the next one, is logged as late and discarded, never taken as the answer.

The meter here is a scripted peer on a loopback socket (pyserial's socket:// port): it answers the first read
only after the link has given up on it, then answers the next read at once."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator

import pytest

from drivers.clock import WallClock
from drivers.dlt645 import Dlt645Frame, FrameReader, Function, decode, encode, encode_di, encode_value
from drivers.dlt645.link import MeterLink, answers_request
from drivers.errors import FrameError, InstrumentTimeout

ADDRESS = "000000000001"
DATE_DI, TIME_DI = 0x04000101, 0x04000102
REPLY_TIMEOUT_S = 0.4
DATE, TIME = dt.date(2026, 1, 2), dt.time(8, 30, 15)


class ScriptedMeter:
    """A meter on a socket that is too slow for the link on the date: its reply to the first date read goes out
    only when the next request (the time) has come in, right before the time's own reply."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _reply(self, request: Dlt645Frame, di: int) -> bytes:
        value = DATE if di == DATE_DI else TIME
        return encode(request.reply_to(encode_di(di) + encode_value(di, value), address=ADDRESS))

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        reader = FrameReader()
        late: bytes | None = None
        with conn:
            while data := conn.recv(4096):
                for frame in reader.feed(data):
                    if not isinstance(frame, Dlt645Frame):
                        continue
                    di = int.from_bytes(frame.data[:4], "little")
                    if di == DATE_DI and late is None:
                        late = self._reply(frame, di)  # answered, but too late: see below
                    elif di == TIME_DI:
                        conn.sendall((late or b"") + self._reply(frame, di))
                        late = b""

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5.0)


@pytest.fixture
def meter() -> Iterator[ScriptedMeter]:
    peer = ScriptedMeter()
    yield peer
    peer.close()


def test_a_late_reply_to_an_earlier_request_is_logged_and_discarded(meter: ScriptedMeter) -> None:
    traffic: list[tuple[str, bytes]] = []
    link = MeterLink(meter.url, ADDRESS, WallClock(), reply_timeout_s=REPLY_TIMEOUT_S, retries=1,
                     traffic=lambda _url, direction, data: traffic.append((direction, data)))
    link.open()
    try:
        with pytest.raises(InstrumentTimeout):
            link.read(DATE_DI)  # both tries time out: the meter is slow
        assert link.read(TIME_DI) == TIME  # the date reply arrives first, during this read, and is not taken
        attempt = link.history[-1].attempts[-1]
        assert [int.from_bytes(f.data[:4], "little") for f in attempt.late] == [DATE_DI]
        assert attempt.reply is not None and attempt.reply.data[:4] == encode_di(TIME_DI)
        late = [data for direction, data in traffic if direction == "late"]
        assert len(late) == 1 and encode_di(DATE_DI) in decode(late[0]).data
    finally:
        link.close()


def test_a_meter_answering_another_item_every_time_is_a_frame_error() -> None:
    """Only replies to another request, every try: a meter defect, named as such (not a timeout)."""
    request = Dlt645Frame.request(ADDRESS, Function.READ, encode_di(TIME_DI))
    wrong = request.reply_to(encode_di(DATE_DI) + encode_value(DATE_DI, DATE), address=ADDRESS)
    assert not answers_request(wrong, request)
    right = request.reply_to(encode_di(TIME_DI) + encode_value(TIME_DI, TIME), address=ADDRESS)
    assert answers_request(right, request)
    swapped = request.reply_to(right.data, address="010000000000")  # the address high byte first: its own slip
    assert answers_request(swapped, request)
    other_meter = request.reply_to(right.data, address="000000000002")
    assert not answers_request(other_meter, request)

    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        reader = FrameReader()
        with conn:
            while data := conn.recv(4096):
                for frame in reader.feed(data):
                    if isinstance(frame, Dlt645Frame):
                        conn.sendall(encode(wrong))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    link = MeterLink(f"socket://127.0.0.1:{listener.getsockname()[1]}", ADDRESS, WallClock(),
                     reply_timeout_s=0.3, retries=1)
    link.open()
    try:
        with pytest.raises(FrameError, match="an answer to another request"):
            link.read(TIME_DI)
        assert any("only a reply to another request" in p for p in link.history[-1].problems())
    finally:
        link.close()
        listener.close()
        thread.join(5.0)
