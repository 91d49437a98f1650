"""Benchmark: SM4 on the fast path (cryptography / OpenSSL) against gmssl's pure Python in the same run,
and full identity authentications per second against the twin.

Run `python benchmarks/security_speed.py`; exit code 0 when the fast path is at least TARGET_RATIO times
gmssl for both SM4-CBC throughput and SM4-MAC frames (the MAC of a protected remote-control frame).
Authentications: the master station's session over the meter link and RFC 2217 to the embedded twin's
meter (its ESAM sequence and UART timing run on the virtual clock), and for information the same frames
handed to the meter model directly (no port).
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a plain script run from anywhere

from drivers.crypto import Sm4CbcMac, gmssl_sm4_cbc_encrypt, mac4, pad_iso9797_m2, sm4_cbc_encrypt
from rig.bench import bench_session
from rig.config import load_bench
from rig.procedures import LoadPoint, energise
from rig.security import key_source_for, secure_client
from rig.twin.provider import embedded_twin

TARGET_RATIO = 100.0
ROUNDS = 5  # best of, interleaved
SEED = 7
FAST_BYTES = 1 << 20  # 1 MiB per round on the fast path
SLOW_BYTES = 16 << 10  # 16 KiB per round through gmssl (about 0.1 MB/s)
MAC_FRAMES_FAST = 20_000
MAC_FRAMES_SLOW = 200
AUTHENTICATIONS = 200


def best(work: Callable[[], float], rounds: int = ROUNDS) -> float:
    """The best rate of `rounds` runs of `work`, which returns a rate."""
    return max(work() for _ in range(rounds))


def rate(amount: float, work: Callable[[], object]) -> float:
    """`amount` per second of wall time for one call of `work`."""
    begin = time.perf_counter()
    work()
    return amount / (time.perf_counter() - begin)


def gmssl_mac4(key: bytes, data: bytes) -> bytes:
    """The emulation's MAC with gmssl's SM4 (the last CBC block of the padded data, first 4 bytes)."""
    return gmssl_sm4_cbc_encrypt(key, pad_iso9797_m2(data))[-16:][:4]


def crypto(rng: random.Random) -> tuple[float, float, float, float, float]:
    """SM4-CBC MB/s and SM4-MAC frames/s: fast path and gmssl, and the one-shot `mac4` (rounds interleaved).

    The fast path's MAC is the keyed engine the master station's key source keeps per session."""
    key = rng.randbytes(16)
    fast_data, slow_data = rng.randbytes(FAST_BYTES), rng.randbytes(SLOW_BYTES)
    if sm4_cbc_encrypt(key, slow_data) != gmssl_sm4_cbc_encrypt(key, slow_data):
        raise SystemExit("the two SM4 implementations disagree")
    # What a protected remote-control frame's MAC covers: function, password field, ciphertext, counter.
    frames = [bytes((0x1C, 0x98, 0, 0, 0)) + rng.randbytes(16) + n.to_bytes(4, "big") for n in range(MAC_FRAMES_FAST)]
    engine = Sm4CbcMac(key)
    if not mac4(key, frames[0]) == engine.mac4(frames[0]) == gmssl_mac4(key, frames[0]):
        raise SystemExit("the MACs disagree")
    cbc_fast, cbc_slow, mac_fast, mac_slow, mac_one_shot = [], [], [], [], []
    for _ in range(ROUNDS):
        cbc_fast.append(rate(FAST_BYTES / 1e6, lambda: sm4_cbc_encrypt(key, fast_data)))
        cbc_slow.append(rate(SLOW_BYTES / 1e6, lambda: gmssl_sm4_cbc_encrypt(key, slow_data)))
        mac_fast.append(rate(MAC_FRAMES_FAST, lambda: [engine.mac4(f) for f in frames]))
        mac_one_shot.append(rate(MAC_FRAMES_FAST, lambda: [mac4(key, f) for f in frames]))
        mac_slow.append(rate(MAC_FRAMES_SLOW, lambda: [gmssl_mac4(key, f) for f in frames[:MAC_FRAMES_SLOW]]))
    return max(cbc_fast), max(cbc_slow), max(mac_fast), max(mac_slow), max(mac_one_shot)


def authentications() -> tuple[float, float, float]:
    """Authentications per second of wall time over the link and in process, and bench s per authentication."""
    with bench_session(load_bench(overrides=[f"twin.seed={SEED}"])) as bench:
        meter = bench.meter
        energise(bench, LoadPoint(voltage_v=meter.un_v, current_a=0.0), settle_s=meter.start_up_time_s + 1.0)
        client = secure_client(bench.positions[0], key_source_for(bench.config), bench.clock)
        client.authenticate()
        bench_start = bench.clock.now()
        over_link = rate(AUTHENTICATIONS, lambda: [client.authenticate() for _ in range(AUTHENTICATIONS)])
        bench_each = (bench.clock.now() - bench_start) / AUTHENTICATIONS
        twin = embedded_twin(bench)
        management = twin.meters[0].management
        assert management is not None
        session = client.session

        def direct() -> None:
            for _ in range(AUTHENTICATIONS):
                request = session.authentication_request()
                result = management.respond(request.frame, twin.world.time_s)  # type: ignore[union-attr]
                assert result is not None
                session.handle_reply(request, result[0], bench.clock.now())
                management.reply_delay_s()  # the ESAM time the port would have waited

        in_process = rate(AUTHENTICATIONS, direct)
    return over_link, in_process, bench_each


def main() -> int:
    """Print the rates and ratios; 0 when both crypto targets hold."""
    cbc_fast, cbc_slow, mac_fast, mac_slow, mac_one_shot = crypto(random.Random(SEED))
    cbc_ratio, mac_ratio = cbc_fast / cbc_slow, mac_fast / mac_slow
    ok = cbc_ratio >= TARGET_RATIO and mac_ratio >= TARGET_RATIO
    print(f"SM4 fast path (cryptography/OpenSSL) against gmssl, best of {ROUNDS} rounds")
    print(f"  SM4-CBC:  {cbc_fast:10.1f} MB/s   gmssl {cbc_slow:8.3f} MB/s       ratio {cbc_ratio:8.0f}")
    print(f"  SM4-MAC:  {mac_fast:10,.0f} frames/s gmssl {mac_slow:8,.0f} frames/s ratio {mac_ratio:8.0f}")
    print(f"  target >= {TARGET_RATIO:.0f}x for both: {'PASS' if ok else 'FAIL'}")
    print(f"  for information, one-shot mac4 (a new cipher per frame): {mac_one_shot:,.0f} frames/s, "
          f"ratio {mac_one_shot / mac_slow:.0f}")
    over_link, in_process, bench_each = authentications()
    print(f"full identity authentications against the twin ({AUTHENTICATIONS}):")
    print(f"  over the meter link (RFC 2217): {over_link:8.0f} /s wall; {bench_each * 1000:.0f} ms of bench time each "
          "(UART at 2400 bit/s, the meter's delay and its ESAM's APDUs)")
    print(f"  to the meter model in process:  {in_process:8.0f} /s wall")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
