"""A pytest plugin for the endings tests: the run signals itself at a named moment, as an operator or
the lab's process manager would, but at a reproducible point.

RIG_SIGNAL_AT: early (first item, source just energised), mid (second item, energised, renderer busy),
after-last (the last item's body passed, its teardown not begun), teardown (while the session's fixtures
are torn down: renderer and bench). RIG_SIGNALS: comma-separated names (SIGINT, SIGTERM, SIGHUP,
SIGKILL), the first sent at the moment, each next one RIG_SIGNAL_GAP_S later from a timer thread.

SIGINT and SIGHUP go to the process group (what a terminal does: the renderer worker gets them too);
SIGTERM and SIGKILL to the run's process alone (what `kill PID` or the OOM killer does). Without
RIG_SIGNAL_AT the plugin does nothing.

RIG_FAULT=finalizer makes a session fixture's teardown raise; RIG_FAULT=internal makes a pytest hook
raise after the last item's body (pytest's INTERNAL_ERROR): neither may skip driving the source safe.
"""

import os
import signal
import threading

import pytest

_AT = os.environ.get("RIG_SIGNAL_AT")
_SIGNALS = [s for s in os.environ.get("RIG_SIGNALS", "").split(",") if s]
_GAP_S = float(os.environ.get("RIG_SIGNAL_GAP_S", "0"))
_FAULT = os.environ.get("RIG_FAULT")


def _send(name: str) -> None:
    signum = signal.Signals[name]
    if signum in (signal.SIGINT, signal.SIGHUP):
        os.killpg(os.getpgid(0), signum)
    else:
        os.kill(os.getpid(), signum)


def fire(moment: str) -> None:
    if moment != _AT or not _SIGNALS:
        return
    for k, name in enumerate(_SIGNALS[1:], start=1):
        threading.Timer(_GAP_S * k, _send, args=(name,)).start()
    _send(_SIGNALS[0])


@pytest.fixture
def checkpoint():
    return fire


@pytest.fixture(scope="session")
def teardown_checkpoint(renderer, bench):
    """Torn down first of the session's fixtures (set up last): the signal lands as teardown begins."""
    yield
    fire("teardown")
    if _FAULT == "finalizer":
        raise RuntimeError("a finalizer that fails (endings test)")


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed and report.nodeid.endswith("test_third"):
        fire("after-last")
        if _FAULT == "internal":
            raise RuntimeError("a plugin hook that fails (endings test)")
