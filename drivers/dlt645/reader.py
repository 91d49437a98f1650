"""DL/T 645-2007 stream reader, sans-IO (drivers layer): bytes in as they arrive, frames out.

Split reads are buffered here once, so no transport has to; nothing above the drivers layer is imported.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.dlt645.frame import (
    HEADER_LENGTH,
    MAX_DATA_LENGTH,
    OVERHEAD,
    START,
    WAKE_UP,
    Dlt645Frame,
    check_tail,
    parse_at,
)
from drivers.errors import FrameError


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame-shaped byte sequence (68 A0..A5 68 C L ...) that failed a check; `reason` says which."""

    raw: bytes
    reason: str


class FrameReader:
    """Finds DL/T 645 frames in a byte stream: `feed(bytes) -> [Dlt645Frame | BadFrame]`.

    Bytes before a start byte are skipped and counted in `discarded` (FE wake-up bytes are not
    counted). A bad frame is reported as `BadFrame` and the search resumes at the byte after its start
    byte, so a real frame hidden behind a false start is still found. Never raises; at most one
    incomplete frame (under 12 + `max_length` bytes) stays buffered, until more bytes or `flush`.
    """

    def __init__(self, max_length: int = MAX_DATA_LENGTH) -> None:
        if not 0 <= max_length <= MAX_DATA_LENGTH:
            raise FrameError(
                f"max_length must be 0..{MAX_DATA_LENGTH} (the largest L accepted), got {max_length}"
            )
        self.max_length = max_length
        self.discarded = 0
        self._buffer = b""
        # Bytes of the buffer before this index were already reported in a BadFrame: a resync scans
        # them again but must not count them a second time as discarded.
        self._reported_until = 0

    @property
    def pending(self) -> bytes:
        """Bytes held back as the start of an incomplete frame."""
        return self._buffer

    def feed(self, data: bytes) -> list[Dlt645Frame | BadFrame]:
        """Every complete frame or bad frame that `data` (after what is pending) finishes, in order."""
        return self._scan(self._buffer + data if self._buffer else bytes(data), final=False)

    def flush(self) -> list[Dlt645Frame | BadFrame]:
        """The line went quiet (a gap longer than the inter-byte limit): end the incomplete frame.

        It is reported as a BadFrame and its bytes are searched for frames, since a false start (a 68
        in noise) can hold back a real frame that arrived behind it. Nothing stays pending.
        """
        return self._scan(self._buffer, final=True)

    def _scan(self, buf: bytes, *, final: bool) -> list[Dlt645Frame | BadFrame]:
        size = len(buf)
        max_length = self.max_length
        out: list[Dlt645Frame | BadFrame] = []
        pos = 0
        while pos < size:
            start = buf.find(START, pos)
            if start < 0:
                self._skip(buf, pos, size)
                pos = size
                break
            if start > pos:
                # Most often the gap is the FE wake-up preamble, which counts as nothing.
                if buf.count(WAKE_UP, pos, start) != start - pos:
                    self._skip(buf, pos, start)
                pos = start
            if size - start < HEADER_LENGTH:
                if not final:
                    break  # header incomplete: wait for more
                if size - start > 7 and buf[start + 7] == START:
                    out.append(self._bad(buf, start, size, f"truncated header: {size - start} byte(s)"))
                else:
                    self._skip(buf, start, start + 1)
                pos = start + 1
                continue
            if buf[start + 7] != START:
                self._skip(buf, start, start + 1)  # a 68 in noise, not a frame
                pos = start + 1
                continue
            length = buf[start + 9]
            if length > max_length:
                reason = f"length beyond maximum: L = {length}, at most {max_length}"
                out.append(self._bad(buf, start, start + HEADER_LENGTH, reason))
                pos = start + 1
                continue
            end = start + OVERHEAD + length
            if size < end:
                if not final:
                    break  # frame incomplete: wait for more
                reason = f"truncated: L = {length} needs {OVERHEAD + length} bytes, got {size - start}"
                out.append(self._bad(buf, start, size, reason))
                pos = start + 1
                continue
            problem = check_tail(buf, start, end)
            if problem is not None:
                out.append(self._bad(buf, start, end, problem))
                pos = start + 1
                continue
            try:
                out.append(parse_at(buf, start, end))
            except FrameError as error:
                # Checksum and end byte hold, so this is a whole frame with a bad address: step over it.
                out.append(self._bad(buf, start, end, str(error)))
            pos = end
        self._buffer = buf[pos:]
        if self._reported_until:
            self._reported_until = max(0, self._reported_until - pos)
        return out

    def _bad(self, buf: bytes, start: int, end: int, reason: str) -> BadFrame:
        self._reported_until = max(self._reported_until, end)
        return BadFrame(buf[start:end], reason)

    def _skip(self, buf: bytes, begin: int, end: int) -> None:
        begin = max(begin, self._reported_until)
        if end > begin:
            self.discarded += end - begin - buf.count(WAKE_UP, begin, end)
