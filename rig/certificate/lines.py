"""A certificate's lines and error curves, from the journal's records: each value with its clause, limits,
uncertainty, verdict and the link it went over (UART, BLE); the curves from the basic-error records' structured
detail (load point, current, PF), each point with its uncertainty and verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rig.results import FAIL, INFO, StoredRecord

# Test parameters that name the link a line went over, as the certificate shows them.
LINKS = {"uart": "UART", "ble": "BLE"}


@dataclass(frozen=True)
class TestLine:
    """One recorded value as the certificate lists it."""

    test: str  # function name with its parameters, e.g. test_basic_error[PF1-Ib-P1]
    description: str
    quantity: str
    value: float | None
    unit: str
    low: float | None
    high: float | None
    verdict: str
    clause: str
    clause_check: bool
    uncertainty_pct: float | None
    tur: float | None
    session: int

    @property
    def link(self) -> str:
        """The link the value went over (UART, BLE) when the test is parametrised by it, else ''."""
        params = self.test.partition("[")[2].rstrip("]").split("-")
        return next((LINKS[p] for p in params if p in LINKS), "")


@dataclass(frozen=True)
class ErrorPoint:
    """One point of an error curve: the error (None: no reading) against its limit, with its uncertainty."""

    current_a: float
    error_pct: float | None
    limit_pct: float
    label: str
    uncertainty_pct: float | None = None
    failed: bool = False


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def test_line(stored: StoredRecord, docs: dict[str, str]) -> TestLine:
    """The line of one record; `docs` gives each test item's description."""
    r = stored.record
    detail = r.detail or {}
    clause = str(detail.get("limit_source") or detail.get("source") or "")
    check = bool(detail.get("limit_check") or detail.get("check"))
    if not clause:
        clause = "limits of the rig's plan" if r.verdict != INFO else "recorded for information"
    return TestLine(
        test=r.test.rpartition("::")[2], description=docs.get(r.test, ""), quantity=r.quantity, value=r.value,
        unit=r.unit, low=r.low, high=r.high, verdict=r.verdict, clause=clause, clause_check=check,
        uncertainty_pct=_number(detail.get("uncertainty_pct")), tur=_number(detail.get("tur")),
        session=stored.session,
    )


def error_curves(records: Sequence[StoredRecord]) -> dict[str, list[ErrorPoint]]:
    """Error curves by PF from basic-error records (detail current_a and pf, unit %, a symmetric limit).

    A point is labelled by the record's `load_point` (e.g. `Ib`, `0.05Ib`), else by its current.
    """
    curves: dict[str, list[ErrorPoint]] = {}
    for stored in records:
        r = stored.record
        detail = r.detail or {}
        if r.unit != "%" or "current_a" not in detail or "pf" not in detail or r.high is None:
            continue
        label = str(detail.get("load_point") or f"{detail['current_a']:g} A")
        curves.setdefault(str(detail["pf"]), []).append(
            ErrorPoint(current_a=float(detail["current_a"]), error_pct=r.value, limit_pct=float(r.high), label=label,
                       uncertainty_pct=_number(detail.get("uncertainty_pct")), failed=r.verdict == FAIL))
    return curves
