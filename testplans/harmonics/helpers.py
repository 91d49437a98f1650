"""Helpers of the harmonic plans: what the bench's instruments must be able to do for a test (a bench without
it skips the test, naming the instrument it needs)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from drivers.source import Harmonic
from rig.bench import Bench


def require_generator(bench: Bench, content: Sequence[Harmonic]) -> None:
    """Skip unless the bench's source generates `content` (harmonics; sub-harmonics where asked)."""
    dialect = bench.source.dialect
    generator = dialect.harmonics
    if generator is None:
        pytest.skip(f"the bench's source ({dialect.name}) has no harmonic generator: this test needs a "
                    "meter-test source that programs harmonic content")
    if any(h.order != int(h.order) for h in content) and not generator.fractional:
        pytest.skip(f"the bench's source ({dialect.name}) generates whole harmonic orders only: this test needs "
                    "a source that generates sub-harmonics (interharmonics)")


def require_analyser(bench: Bench) -> None:
    """Skip unless the bench's reference measures fundamental power and harmonic content."""
    dialect = bench.reference.dialect
    if dialect.harmonics is None:
        pytest.skip(f"the bench's reference ({dialect.name}) has no harmonic analyser: this test needs a reference "
                    "that measures fundamental power and harmonic content")
