"""The `rig` console script treats a stop signal in its first instant (still importing, nothing opened) as
an interruption: exit 130, like any later one, never "Aborted!" (1) or death by the signal (143, 129)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _wait_for_handlers(pid: int) -> None:
    """Until the process catches the stop signals (the kernel's SigCgt mask): before that, the interpreter is
    still starting and no Python code can act on a signal, so a signal then proves nothing about rig."""
    wanted = sum(1 << (s - 1) for s in STOP_SIGNALS)
    for _ in range(3000):
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
        if caught & wanted == wanted:
            return
        threading.Event().wait(0.002)
    raise AssertionError("rig never installed its stop-signal handlers")


@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=lambda s: s.name)
def test_a_stop_signal_while_rig_starts_exits_130(signum: signal.Signals, tmp_path: Path) -> None:
    rig = Path(sys.executable).with_name("rig")
    assert rig.is_file(), "the console script is installed with the package"
    run = subprocess.Popen([str(rig), "run", "testplans/smoke", "--reports", str(tmp_path)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    _wait_for_handlers(run.pid)  # Python itself is up; rig.cli is still importing (a few tenths of a second)
    run.send_signal(signum)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, (run.returncode, err[-2000:])
    assert "Aborted!" not in err
