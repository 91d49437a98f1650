"""A pytest plugin for the resume tests: SIGKILL this process at a chosen point of a chosen item.

RIG_KILL_AT names a node id (substring); RIG_KILL_WHEN is `call` (after the item's body ran and its
records were journaled, before its completion is journaled) or `setup` (before the body). Without
RIG_KILL_AT the plugin does nothing, so a resumed run with the same pytest arguments runs normally.
"""

import os
import signal

import pytest

_AT = os.environ.get("RIG_KILL_AT")
_WHEN = os.environ.get("RIG_KILL_WHEN", "call")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item, call):
    if _AT and _AT in item.nodeid and call.when == _WHEN:
        os.kill(os.getpid(), signal.SIGKILL)
