"""The report renderer's worker process starts with Ctrl-C and hang-ups ignored.

A Ctrl-C goes to the whole process group. A worker that is still starting up when it arrives must not die from
it: the pool would start another worker, and closing the pool at the end of the run could hang (seen on a loaded
machine in the endings matrix). The worker is started with the signals ignored, and ignored signals stay ignored
across exec, so it is immune from its first instruction."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

from rig.plots import BackgroundRenderer


def _ignored(pid: int) -> set[int]:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("SigIgn"))
    mask = int(line.split()[1], 16)
    return {n for n in range(1, 64) if mask & (1 << (n - 1))}


def test_the_worker_ignores_ctrl_c_and_hangups_from_its_start_and_the_run_keeps_its_own_handlers() -> None:
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGHUP))
    renderer = BackgroundRenderer()
    renderer.warm_up()
    try:
        workers = multiprocessing.active_children()
        assert workers, "the renderer started no worker"
        pids = {worker.pid for worker in workers}
        for pid in pids:
            assert {signal.SIGINT, signal.SIGHUP} <= _ignored(pid or 0)
            os.kill(pid or 0, signal.SIGINT)  # while it is still starting: what a Ctrl-C to the group does
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGHUP)) == before
        renderer.result(("warm-up",))  # the worker lived through it and did its work
        assert {worker.pid for worker in multiprocessing.active_children()} == pids, "a worker died and was replaced"
    finally:
        renderer.close()
    assert not multiprocessing.active_children()
