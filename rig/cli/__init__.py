"""The `rig` command line: run (and resume) plans, serve the twin, list knobs, check a bench, and the lab
commands on finished runs: report (certificate), verify (tamper evidence), keys (pinned bench keys), history.

Commands by group: run_command (`rig run`), lab (report, verify, keys, history), tools (mutate, twin,
bench); common holds what they share. The run's lifecycle itself is rig.run.

Exit codes: 0 all passed, 1 a test failed (verify: something altered or not covered; 3 consistent but a
signer not pinned), 2 bad usage, bench file, database or run id, 3 (run) nothing failed but the bench could
not measure some points, 4 (run) stopped by the operator step (a position not confirmed mounted and wired, or
a question nobody answered: nothing failed, the run is incomplete), 130 interrupted.
"""

from __future__ import annotations

from rig.cli import lab, panel_command, run_command, tools  # each registers its commands on `main`
from rig.cli.common import main
from rig.cli.tools import iter_knobs

__all__ = ["iter_knobs", "lab", "main", "panel_command", "run_command", "tools"]
