"""Benchmark: DL/T 645 encode + stream-decode rate of our codec against the PyPI `dlt645` frame layer.

Run `python benchmarks/dlt645_codec.py`; exit code 0 when ours is at least TARGET_RATIO times faster.
Both sides build the same wire bytes from the same frames and parse them back through their stream
parser (ours: `encode` then `FrameReader.feed`; theirs: `build_frame` then `deserialize_with_remaining`).
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a plain script run from anywhere

from dlt645.protocol.protocol import DLT645Protocol

from drivers.dlt645 import (
    BROADCAST_ADDRESS,
    WILDCARD_ADDRESS,
    Dlt645Frame,
    FrameReader,
    Function,
    address_to_wire,
    encode,
    encode_di,
)

TARGET_RATIO = 3.0
FRAMES = 2000
ROUNDS = 7  # best of, interleaved, so a noisy neighbour hits both sides alike
SEED = 645


def sample_frames(count: int, seed: int, meters: int = 8) -> list[Dlt645Frame]:
    """A repeatable mix of what a rig sees: reads and replies to a few meters, some long and special frames."""
    rng = random.Random(seed)
    addresses = [f"{rng.randrange(10**12):012d}" for _ in range(meters)]
    dis = [0x00000000, 0x00010000, 0x02010100, 0x02020100, 0x02030000, 0x04000101, 0x03110001]
    frames: list[Dlt645Frame] = []
    for index in range(count):
        meter = addresses[index % meters]
        di = encode_di(rng.choice(dis))
        kind = rng.random()
        if kind < 0.4:
            frames.append(Dlt645Frame.request(meter, Function.READ, di))
        elif kind < 0.8:
            value = rng.randbytes(rng.choice((2, 3, 4, 12)))
            frames.append(Dlt645Frame.reply(meter, Function.READ, di + value))
        elif kind < 0.9:
            # identity authentication: DI + operator code + ciphertext1 + random1 + dispersion factor
            auth = encode_di(0x070000FF) + rng.randbytes(28)
            frames.append(Dlt645Frame.request(meter, Function.SECURITY, auth))
        elif kind < 0.95:
            frames.append(Dlt645Frame.request(WILDCARD_ADDRESS, Function.READ_ADDRESS))
        else:
            frames.append(Dlt645Frame.request(BROADCAST_ADDRESS, Function.BROADCAST_TIME, rng.randbytes(6)))
    return frames


def run_ours(frames: list[Dlt645Frame]) -> int:
    """Encode every frame and feed it to one stream reader; the number of frames that came out."""
    reader = FrameReader()
    got = 0
    for frame in frames:
        got += len(reader.feed(encode(frame)))
    return got


def run_theirs(frames: list[tuple[bytes, int, bytes]]) -> int:
    """The same with the PyPI `dlt645` frame layer."""
    got = 0
    for address, control, data in frames:
        raw = DLT645Protocol.build_frame(address, control, data)
        _, parsed = DLT645Protocol.deserialize_with_remaining(raw)
        got += parsed is not None
    return got


def round_rate(work: Callable[[], int], count: int) -> float:
    """Frames per second of one round of `work`, which must return `count`."""
    begin = time.perf_counter()
    done = work()
    elapsed = time.perf_counter() - begin
    if done != count:
        raise SystemExit(f"benchmark broken: {done} of {count} frames came back")
    return count / elapsed


def compare(frames: list[Dlt645Frame]) -> tuple[float, float]:
    """Best rates (frames/s) of ours and theirs over the same frames, rounds interleaved."""
    # Theirs takes the address bytes in wire order; give it those so both sides send identical bytes.
    theirs = [(address_to_wire(f.address), f.control, f.data) for f in frames]
    for frame, (address, control, data) in zip(frames, theirs):
        if bytes(DLT645Protocol.build_frame(address, control, data)) != encode(frame):
            raise SystemExit(f"the two codecs disagree on {frame}")
    ours_rates, theirs_rates = [], []
    for _ in range(ROUNDS):
        ours_rates.append(round_rate(lambda: run_ours(frames), len(frames)))
        theirs_rates.append(round_rate(lambda: run_theirs(theirs), len(frames)))
    return max(ours_rates), max(theirs_rates)


def main() -> int:
    """Run both codecs, print the rates and the ratio; 0 when the target holds."""
    ours_rate, theirs_rate = compare(sample_frames(FRAMES, SEED))
    ratio = ours_rate / theirs_rate
    print(f"{FRAMES} frames to 8 meters (reads, replies, security, wildcard, broadcast), best of {ROUNDS} rounds")
    print(f"  ours (encode + FrameReader.feed):                      {ours_rate:9,.0f} frames/s")
    print(f"  PyPI dlt645 (build_frame + deserialize_with_remaining): {theirs_rate:8,.0f} frames/s")
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(f"  ratio: {ratio:.2f} (target >= {TARGET_RATIO:.1f}) {verdict}")
    # For information: our address caches miss on every frame when each goes to a different meter.
    cold_ours, cold_theirs = compare(sample_frames(FRAMES, SEED, meters=FRAMES))
    print(f"every frame to a different meter (address caches cold), for information: "
          f"ours {cold_ours:,.0f}, theirs {cold_theirs:,.0f} frames/s, ratio {cold_ours / cold_theirs:.2f}")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
