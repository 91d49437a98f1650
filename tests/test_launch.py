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


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_while_rig_starts_exits_130(signum: signal.Signals, tmp_path: Path) -> None:
    rig = Path(sys.executable).with_name("rig")
    assert rig.is_file(), "the console script is installed with the package"
    run = subprocess.Popen([str(rig), "run", "testplans/smoke", "--reports", str(tmp_path)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    threading.Event().wait(0.05)  # well inside the imports
    run.send_signal(signum)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, (run.returncode, err[-2000:])
    assert "Aborted!" not in err
