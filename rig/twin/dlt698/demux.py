"""Tells DL/T 645 and DL/T 698.45 frames apart on one byte stream, as a meter's UART task does.

A 645 frame is 68 A0..A5 68 C L ... CS 16; a 698 frame is 68 L L C AF SA.. CA HCS ... FCS 16. At each 68 a
complete 645 frame with a good checksum is taken as 645; a header whose HCS checks is taken as 698 (a chance
match is 1 in 65536); every other byte goes on to the 645 reader, which keeps its own rules (preamble,
bad frames, a half frame flushed by the inter-frame gap).
"""

from __future__ import annotations

from drivers.dlt645 import BadFrame, Dlt645Frame, FrameReader
from drivers.errors import FrameError
from rig.twin.dlt698.codec import START, Bad698Frame, Dlt698Frame, header_valid, parse_frame

Heard = Dlt645Frame | BadFrame | Dlt698Frame | Bad698Frame


def _complete_645(buf: bytes, start: int) -> bool | None:
    """Whether a complete 645 frame with a good checksum starts at `start` (None: not enough bytes yet)."""
    if len(buf) - start < 10:
        return None
    if buf[start + 7] != START:
        return False
    end = start + 12 + buf[start + 9]
    if len(buf) < end:
        return None
    return sum(buf[start:end - 2]) & 0xFF == buf[end - 2] and buf[end - 1] == 0x16


class DualFrameReader:
    """`feed(bytes) -> [frames]` for both protocols, in the order they were heard; `flush()` as FrameReader's."""

    def __init__(self) -> None:
        self.reader645 = FrameReader()
        self._held = b""  # from a 68 that may still start a 698 frame

    def feed(self, data: bytes) -> list[Heard]:
        """Every frame (of either protocol) or bad frame that `data` completes."""
        return self._scan(self._held + data, final=False)

    def flush(self) -> list[Heard]:
        """The line went quiet: end what is pending (a half 698 frame is dropped as a bad frame)."""
        return self._scan(self._held, final=True)

    def _scan(self, buf: bytes, *, final: bool) -> list[Heard]:
        out: list[Heard] = []
        passed = 0  # bytes before this index went to the 645 reader
        pos = 0
        self._held = b""
        while True:
            start = buf.find(START, pos)
            if start < 0:
                break
            is_645 = _complete_645(buf, start)
            if is_645:
                pos = start + 12 + buf[start + 9]
                continue  # stays in the 645 reader's share
            valid = header_valid(buf, start)
            if valid is None or (valid and len(buf) - start < (int.from_bytes(buf[start + 1:start + 3], "little")
                                                               & 0x3FFF) + 2):
                if final:
                    if valid:
                        out.extend(self._to_645(buf[passed:start]))
                        out.append(Bad698Frame(buf[start:], "frame cut short by a gap on the line"))
                        passed = pos = len(buf)
                        break
                    pos = start + 1
                    continue
                consumed = self._completes_645(buf[passed:])
                if consumed:  # the 68 is inside a 645 frame the reader already holds the start of
                    out.extend(self._to_645(buf[passed:passed + consumed]))
                    passed = pos = passed + consumed
                    continue
                # Wait for more bytes before deciding; what came before goes on now.
                out.extend(self._to_645(buf[passed:start]))
                self._held = buf[start:]
                return out
            if not valid:
                pos = start + 1
                continue
            end = start + (int.from_bytes(buf[start + 1:start + 3], "little") & 0x3FFF) + 2
            out.extend(self._to_645(buf[passed:start]))
            try:
                out.append(parse_frame(buf[start:end]))
            except FrameError as exc:
                out.append(Bad698Frame(buf[start:end], str(exc)))
            passed = pos = end
        out.extend(self._to_645(buf[passed:]))
        if final:
            out.extend(self.reader645.flush())
        return out

    def _completes_645(self, chunk: bytes) -> int:
        """How many bytes of `chunk` complete the 645 frame whose start the 645 reader already holds (0: none).

        A 68 near the end of a 645 frame (its checksum, a data byte) must not hold the frame's tail back
        as a possible 698 header: the meter would answer only when the next request arrives. Only the bytes
        of that frame are counted: what follows it may be the start of a 698 frame."""
        held = self.reader645.pending
        if not held:
            return 0
        joined = held + chunk
        if not _complete_645(joined, 0):
            return 0
        return 12 + joined[9] - len(held)

    def _to_645(self, chunk: bytes) -> list[Heard]:
        return list(self.reader645.feed(chunk)) if chunk else []
