"""The `rig` console script: stop signals mean "interrupted" (exit 130) from the first instant.

Importing the command line takes a few tenths of a second. A SIGTERM or SIGHUP in that window would end
the process by the signal (exit 143 or 129) and a Ctrl-C would end as click's "Aborted!" (exit 1); here
each is an interruption like any later one. Nothing is open yet, so there is nothing to drive safe. Once a
run starts, rig.endings takes the signals over (and hands them back to these handlers when it ends).
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

EXIT_INTERRUPTED = 130
_received: list[int] = []


def _early(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    """Install the early stop handlers, then run the command line."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # a background job's ignored Ctrl-C stays ignored
            signal.signal(signum, _early)
    try:
        from rig.cli import main as command_line

        command_line()
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit as exc:
        if _received and exc.code not in (0, EXIT_INTERRUPTED):
            sys.exit(EXIT_INTERRUPTED)  # click's "Aborted!" (1) after a stop signal
        raise


if __name__ == "__main__":
    main()
