"""Parametrisation of the accuracy plans from the bench's meter type and the standards' tables
(fixtures and pytest hooks only; the plans' helpers are in testplans.accuracy.helpers)."""

from __future__ import annotations

import pytest

from fixtures.stash import bench_config_of
from testplans.accuracy.helpers import load_point_id, ordered_load_points
from testplans.specs import accuracy as spec

# The influence quantities this plan varies; the specs' harmonics row (5th harmonic in U and I) runs in
# testplans/harmonics/test_influence.py::test_fifth_harmonic, which programs the source's harmonic generator.
INFLUENCES = ("voltage", "frequency")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    meter = bench_config_of(metafunc.config).meter
    if "load_point" in metafunc.fixturenames:
        points = ordered_load_points(meter)
        metafunc.parametrize("load_point", points, ids=[load_point_id(p) for p in points])
    if "influence" in metafunc.fixturenames:
        tests = [spec.influence_test(meter, name) for name in INFLUENCES]
        cases = [(t, pf) for t in tests for pf in t.pfs]
        metafunc.parametrize("influence", cases, ids=[f"{t.influence}-PF{pf.label}" for t, pf in cases])
