"""An asyncio event loop in a daemon thread of its own (drivers layer): bleak and bumble are asyncio libraries,
the rig's links and the twin's air are called from plain threads. Imports nothing above the drivers layer."""

from __future__ import annotations

import asyncio
import threading

START_WAIT_S = 5.0  # wall time a new loop has to start running


def start_loop_thread(name: str) -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    """A new event loop running forever in a daemon thread called `name`; returns once it runs."""
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        loop.run_forever()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    started.wait(START_WAIT_S)
    return loop, thread


def stop_loop_thread(loop: asyncio.AbstractEventLoop, thread: threading.Thread | None, join_s: float = 5.0) -> None:
    """Stop a loop started by `start_loop_thread`, wait for its thread, and close it once it has stopped."""
    loop.call_soon_threadsafe(loop.stop)
    if thread is not None:
        thread.join(join_s)
    if not loop.is_running():
        loop.close()
