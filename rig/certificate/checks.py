"""What a meter's certificate verdict rests on, as a table (CHECKS): one row per claim, with the verdict the
meter gets when the claim does not hold. The verdict is the worst of them (fail, then incomplete, else pass).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rig.certificate.lines import TestLine
from rig.results import BENCH_FAULT, FAIL, PASS, ItemOutcome

INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class Scope:
    """What the checks of one meter (or of the bench-wide records) look at."""

    lines: Sequence[TestLine]
    items: Sequence[ItemOutcome]
    incomplete: Sequence[str]  # tests that took records but did not complete
    bench: str = PASS  # the verdict of the bench-wide checks (PASS when judging the bench itself)
    stopped: str | None = None  # why the last session did not run every selected item, when it did not


@dataclass(frozen=True)
class Check:
    """One claim of a certificate and the verdict its meter gets when the claim does not hold."""

    claim: str
    otherwise: str
    holds: Callable[[Scope], bool]


CHECKS: tuple[Check, ...] = (
    Check("every recorded value is within its limits", FAIL,
          lambda s: not any(line.verdict == FAIL for line in s.lines)),
    Check("no test item failed or ended in an error", FAIL,
          lambda s: not any(i.outcome in ("failed", "error") for i in s.items)),
    Check("the bench-wide checks (source, reference) passed: they hold for every meter of the run", FAIL,
          lambda s: s.bench != FAIL),
    Check("every test item that took records completed", INCOMPLETE, lambda s: not s.incomplete),
    Check("the bench measured every point (no bench fault)", INCOMPLETE,
          lambda s: not any(i.outcome == BENCH_FAULT for i in s.items)),
    Check("the bench-wide checks completed", INCOMPLETE, lambda s: s.bench != INCOMPLETE),
    Check("the last session ran every selected test item (nothing it did not run can be certified)", INCOMPLETE,
          lambda s: s.stopped is None),
)

_SEVERITY = (FAIL, INCOMPLETE)


def verdict(scope: Scope) -> str:
    """fail or incomplete when a check of CHECKS does not hold (the worst of them), else pass."""
    failing = {check.otherwise for check in CHECKS if not check.holds(scope)}
    return next((v for v in _SEVERITY if v in failing), PASS)
