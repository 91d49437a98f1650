"""Tests of the accuracy tables: every row of the project reference, boundaries, formulas and bad input.

Expected values are typed in here from /work/shared/reference/accuracy.md, not read from the YAML, so a
wrong edit of a table fails a test.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rig.procedures import MIN_GATE_S, pulses_for_gate
from testplans.specs import accuracy as acc


@dataclass(frozen=True)
class Meter:
    """A meter type with the attribute names of the rig's config (the default is the twin's meter)."""

    scheme: str = "classic"
    accuracy_class: str = "1"
    connection: str = "direct"
    un_v: float = 220.0
    ib_a: float = 5.0
    imax_a: float = 60.0
    itr_a: float | None = 0.5
    constant_imp_per_kwh: float = 1200.0
    wiring: str = "1P2W"
    frequency_hz: float = 50.0


TWIN = Meter()
# A CT meter: 3 x 57.7 V, 1.5(6) A, In = 20 Itr.
CT = Meter(connection="ct", un_v=57.7, ib_a=1.5, imax_a=6.0, itr_a=0.075, constant_imp_per_kwh=20000.0, wiring="3P4W")


def meter(scheme: str, accuracy_class: str, connection: str) -> Meter:
    """A direct 5(60) A or CT 1.5(6) A meter of the given scheme and class."""
    base = TWIN if connection == "direct" else CT
    return replace(base, scheme=scheme, accuracy_class=accuracy_class)


def imin_expected(m: Meter) -> float:
    """Imin as the reference states it (letter) or the lower end of the classic table at PF 1."""
    if m.scheme == "letter":
        assert m.itr_a is not None
        if m.connection == "ct":
            return 0.2 * m.itr_a
        return (0.5 if m.accuracy_class == "A" else 0.4) * m.itr_a
    if m.connection == "direct":
        return 0.05 * m.ib_a
    return (0.02 if m.accuracy_class in ("2", "1") else 0.01) * m.ib_a


# --------------------------------------------------------------------------------------------------
# Error limits: every row of the two reference tables

# (class, connection, pfs, low x Ib/In, high x Ib/In or None for Imax, limit %)
CLASSIC_ROWS = [
    ("2", "direct", ("1",), 0.05, 0.1, 2.5),
    ("2", "direct", ("1",), 0.1, None, 2.0),
    ("2", "direct", ("0.5L", "0.8C"), 0.1, 0.2, 2.5),
    ("2", "direct", ("0.5L", "0.8C"), 0.2, None, 2.0),
    ("2", "ct", ("1",), 0.02, 0.05, 2.5),
    ("2", "ct", ("1",), 0.05, None, 2.0),
    ("2", "ct", ("0.5L", "0.8C"), 0.05, 0.1, 2.5),
    ("2", "ct", ("0.5L", "0.8C"), 0.1, None, 2.0),
    ("1", "direct", ("1",), 0.05, 0.1, 1.5),
    ("1", "direct", ("1",), 0.1, None, 1.0),
    ("1", "direct", ("0.5L", "0.8C"), 0.1, 0.2, 1.5),
    ("1", "direct", ("0.5L", "0.8C"), 0.2, None, 1.0),
    ("1", "ct", ("1",), 0.02, 0.05, 1.5),
    ("1", "ct", ("1",), 0.05, None, 1.0),
    ("1", "ct", ("0.5L", "0.8C"), 0.05, 0.1, 1.5),
    ("1", "ct", ("0.5L", "0.8C"), 0.1, None, 1.0),
    ("0.5S", "ct", ("1",), 0.01, 0.05, 1.0),
    ("0.5S", "ct", ("1",), 0.05, None, 0.5),
    ("0.5S", "ct", ("0.5L", "0.8C"), 0.02, 0.1, 1.0),
    ("0.5S", "ct", ("0.5L", "0.8C"), 0.1, None, 0.6),
    ("0.2S", "ct", ("1",), 0.01, 0.05, 0.4),
    ("0.2S", "ct", ("1",), 0.05, None, 0.2),
    ("0.2S", "ct", ("0.5L", "0.8C"), 0.02, 0.1, 0.5),
    ("0.2S", "ct", ("0.5L", "0.8C"), 0.1, None, 0.3),
]

CLASSIC_CASES = [
    pytest.param(cls, conn, pf, low, high, limit, id=f"{cls}-{conn}-{pf}-{low}-{high or 'Imax'}")
    for cls, conn, pfs, low, high, limit in CLASSIC_ROWS
    for pf in pfs
]


@pytest.mark.parametrize(("cls", "conn", "pf", "low", "high", "limit"), CLASSIC_CASES)
def test_classic_error_limit_rows(cls: str, conn: str, pf: str, low: float, high: float | None, limit: float) -> None:
    m = meter("classic", cls, conn)
    top = m.imax_a if high is None else high * m.ib_a
    # The lower end belongs to the row (">=" side); so does Imax; an exclusive upper end does not.
    probes = [low * m.ib_a, (low * m.ib_a + top) / 2, top if high is None else top * 0.999]
    for current in probes:
        got = acc.error_limit_pct(m, current, pf)
        assert got.value_pct == limit, f"{current} A"
        assert got.check is False
        assert "IEC 62053" in got.source


LETTER_LIMITS = {  # class: (Imin..Itr PF 1, Itr..Imax PF 1, Imin..Itr 0.5L/0.8C, Itr..Imax 0.5L/0.8C)
    "A": (2.5, 2.0, 2.5, 2.0),
    "B": (1.5, 1.0, 1.5, 1.0),
    "C": (1.0, 0.5, 1.0, 0.6),
    "D": (0.4, 0.2, 0.5, 0.3),
}

LETTER_CASES = [
    pytest.param(cls, conn, pf, id=f"{cls}-{conn}-{pf}")
    for cls in LETTER_LIMITS
    for conn in ("direct", "ct")
    for pf in ("1", "0.5L", "0.8C")
]


@pytest.mark.parametrize(("cls", "conn", "pf"), LETTER_CASES)
def test_letter_error_limit_rows(cls: str, conn: str, pf: str) -> None:
    m = meter("letter", cls, conn)
    low_limit, high_limit = LETTER_LIMITS[cls][0:2] if pf == "1" else LETTER_LIMITS[cls][2:4]
    imin = imin_expected(m)
    assert acc.imin_a(m) == pytest.approx(imin)
    for current in (imin, (imin + m.itr_a) / 2, m.itr_a * 0.999):
        assert acc.error_limit_pct(m, current, pf).value_pct == low_limit, f"{current} A"
    for current in (m.itr_a, m.ib_a, m.imax_a):
        assert acc.error_limit_pct(m, current, pf).value_pct == high_limit, f"{current} A"


def test_class_1_on_request_power_factors_are_reachable_and_marked_check() -> None:
    for pf, limit in (("0.25L", 3.5), ("0.5C", 2.5)):
        for current in (0.2 * TWIN.ib_a, TWIN.ib_a):
            got = acc.error_limit_pct(TWIN, current, pf)
            assert (got.value_pct, got.check, got.note) == (limit, True, acc.CHECK_NOTE)
        with pytest.raises(acc.SpecError, match="outside the specified range"):
            acc.error_limit_pct(TWIN, 1.01 * TWIN.ib_a, pf)


def test_qgdw_profile_gives_class_a_the_class_b_limits_marked_check() -> None:
    m = meter("letter", "A", "direct")
    iec = acc.error_limit_pct(m, m.ib_a, "1")
    qgdw = acc.error_limit_pct(m, m.ib_a, "1", profile="qgdw")
    assert (iec.value_pct, iec.check) == (2.0, False)
    assert (qgdw.value_pct, qgdw.check) == (1.0, True)
    assert "Q/GDW 10364-2020" in qgdw.source
    assert acc.error_limit_pct(m, m.itr_a * 0.6, "0.5L", profile="qgdw").value_pct == 1.5


# --------------------------------------------------------------------------------------------------
# Boundaries and out-of-range input


def test_current_exactly_at_0_1_ib_gets_the_tighter_limit() -> None:
    assert acc.error_limit_pct(TWIN, 0.1 * TWIN.ib_a, "1").value_pct == 1.0
    assert acc.error_limit_pct(TWIN, 0.0999 * TWIN.ib_a, "1").value_pct == 1.5
    assert acc.error_limit_pct(TWIN, 0.2 * TWIN.ib_a, "0.5L").value_pct == 1.0
    assert acc.error_limit_pct(TWIN, 0.05 * TWIN.ib_a, "1").value_pct == 1.5
    assert acc.error_limit_pct(TWIN, TWIN.imax_a, "0.8C").value_pct == 1.0


def test_a_boundary_current_with_float_noise_counts_as_on_the_boundary() -> None:
    assert acc.error_limit_pct(TWIN, 0.1 * TWIN.ib_a * (1 - 1e-12), "1").value_pct == 1.0
    assert acc.error_limit_pct(TWIN, TWIN.imax_a * (1 + 1e-12), "1").value_pct == 1.0


@pytest.mark.parametrize(
    ("m", "current", "pf", "words"),
    [
        (TWIN, 0.049 * 5.0, "1", "outside the specified range"),  # below 0.05 Ib at PF 1
        (TWIN, 0.099 * 5.0, "0.5L", "outside the specified range"),  # below 0.1 Ib at 0.5L
        (TWIN, 61.0, "1", "outside the specified range"),  # above Imax
        (meter("letter", "B", "direct"), 0.19, "1", "outside the specified range"),  # below Imin
        (replace(TWIN, accuracy_class="2"), 5.0, "0.25L", "PF 0.25L is not specified"),
        (replace(TWIN, accuracy_class="1"), 5.0, "0.7L", "PF 0.7L is not specified"),
        (meter("classic", "0.5S", "direct"), 5.0, "1", "has no error limit"),  # 0.5S is CT only
        (TWIN, 0.0, "1", "positive"),
        (TWIN, math.nan, "1", "positive"),
    ],
)
def test_out_of_range_requests_raise_spec_error(m: Meter, current: float, pf: str, words: str) -> None:
    with pytest.raises(acc.SpecError, match=words) as caught:
        acc.error_limit_pct(m, current, pf)
    assert isinstance(caught.value, ValueError)


def test_out_of_range_message_names_the_class_and_the_ranges() -> None:
    with pytest.raises(acc.SpecError) as caught:
        acc.error_limit_pct(TWIN, 0.2, "1")
    message = str(caught.value)
    assert "class 1 (classic scheme, direct connection)" in message
    assert "0.05 Ib (0.25 A) <= I < 0.1 Ib (0.5 A)" in message


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"scheme": "modern"}, "scheme 'modern'"),
        ({"accuracy_class": "0.5S", "scheme": "letter"}, "class '0.5S' is not a class of the letter scheme"),
        ({"connection": "clamp"}, "connection 'clamp'"),
        ({"wiring": "2P3W"}, "wiring '2P3W'"),
        ({"un_v": -220.0}, "un_v"),
        ({"imax_a": 4.0}, "imax_a = 4.0 A is below ib_a"),
        ({"itr_a": 6.0}, "itr_a = 6.0 A is above ib_a"),
    ],
)
def test_bad_meter_types_are_refused_with_the_attribute_named(changes: dict[str, object], words: str) -> None:
    with pytest.raises(acc.SpecError, match=words):
        acc.error_limit_pct(replace(TWIN, **changes), 5.0, "1")


@pytest.mark.parametrize(("scheme", "cls"), [("classic", "1"), ("letter", "B")])
@pytest.mark.parametrize(("conn", "itr"), [("direct", 0.5), ("ct", 0.075)])
def test_itr_not_given_is_derived_as_0_1_ib_or_0_05_in(scheme: str, cls: str, conn: str, itr: float) -> None:
    given = meter(scheme, cls, conn)
    derived = replace(given, itr_a=None)
    assert acc.itr_a(derived) == pytest.approx(itr)
    assert acc.itr_a(replace(given, itr_a=0.3 * given.ib_a)) == pytest.approx(0.3 * given.ib_a)
    derived_points, given_points = acc.load_points(derived), acc.load_points(given)
    assert [(p.label, p.pf, p.limit) for p in derived_points] == [(p.label, p.pf, p.limit) for p in given_points]
    assert [p.current_a for p in derived_points] == pytest.approx([p.current_a for p in given_points])
    assert acc.repeatability_limit_pct(derived, itr, "1") == acc.repeatability_limit_pct(given, itr, "1")


def test_a_profile_the_scheme_does_not_define_is_refused() -> None:
    with pytest.raises(acc.SpecError, match="profile 'qgdw' is not defined for the classic scheme"):
        acc.starting_current_a(TWIN, profile="qgdw")


# --------------------------------------------------------------------------------------------------
# Power factors


@pytest.mark.parametrize(
    ("label", "normal", "cos_phi", "angle"),
    [
        ("1", "1", 1.0, 0.0),
        ("1.0", "1", 1.0, 0.0),
        ("0.5L", "0.5L", 0.5, 60.0),
        ("0.50l", "0.5L", 0.5, 60.0),
        ("0.8C", "0.8C", 0.8, -36.8699),
        ("0.25L", "0.25L", 0.25, 75.5225),
        ("0.5C", "0.5C", 0.5, -60.0),
    ],
)
def test_power_factor_labels_parse_with_lagging_positive(label: str, normal: str, cos_phi: float, angle: float) -> None:
    pf = acc.power_factor(label)
    assert pf.label == normal
    assert pf.cos_phi == cos_phi
    assert pf.angle_deg == pytest.approx(angle, abs=1e-4)
    assert pf.is_unity == (cos_phi == 1.0)


@pytest.mark.parametrize(
    ("label", "words"),
    [
        ("", "not a power-factor label"),
        ("abc", "not a power-factor label"),
        ("0.5X", "not a power-factor label"),
        ("-0.5L", "not a power-factor label"),
        ("0.5", "needs L .* or C"),
        ("1L", "unity is written '1'"),
        ("1.5L", "at most 1"),
        ("0L", "above 0"),
    ],
)
def test_bad_power_factor_labels_raise_value_error(label: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        acc.power_factor(label)
    with pytest.raises(ValueError, match=words):
        acc.error_limit_pct(TWIN, 5.0, label)


# --------------------------------------------------------------------------------------------------
# Load points


ALL_CLASS_CONNECTIONS = [
    ("classic", "2", "direct"),
    ("classic", "1", "direct"),
    ("classic", "2", "ct"),
    ("classic", "1", "ct"),
    ("classic", "0.5S", "ct"),
    ("classic", "0.2S", "ct"),
    *[("letter", c, conn) for c in "ABCD" for conn in ("direct", "ct")],
]
IMAX_VARIANTS = {"direct": (10.0, 60.0, 100.0), "ct": (1.8, 6.0, 12.0)}  # Imax from 1.2 Ib to 20 Ib


LOAD_POINT_CASES = [
    pytest.param(scheme, cls, conn, profile, id=f"{cls}-{conn}-{profile}")
    for scheme, cls, conn in ALL_CLASS_CONNECTIONS
    for profile in (("iec",) if scheme == "classic" else ("iec", "qgdw"))
]


@pytest.mark.parametrize(("scheme", "cls", "conn", "profile"), LOAD_POINT_CASES)
def test_every_load_point_lies_inside_the_limit_table(scheme: str, cls: str, conn: str, profile: str) -> None:
    for imax in IMAX_VARIANTS[conn]:
        m = replace(meter(scheme, cls, conn), imax_a=imax)
        points = acc.load_points(m, profile=profile)
        assert {p.pf.label for p in points} == {"1", "0.5L", "0.8C"}
        seen = set()
        for p in points:
            assert imin_expected(m) * (1 - 1e-9) <= p.current_a <= m.imax_a * (1 + 1e-9), p
            assert acc.error_limit_pct(m, p.current_a, p.pf, profile=profile) == p.limit
            assert p.check is True  # the choice of points is itself still to be confirmed
            assert (p.pf.label, p.label) not in seen, "duplicate point"
            seen.add((p.pf.label, p.label))
        lowest_pf1 = min(p.current_a for p in points if p.pf.is_unity)
        assert lowest_pf1 == pytest.approx(imin_expected(m)), "PF 1 starts at the lowest specified current"


def test_twin_load_points_match_the_classic_direct_plan() -> None:
    points = acc.load_points(TWIN)
    by_pf = {pf: [(p.label, p.optional) for p in points if p.pf.label == pf] for pf in ("1", "0.5L", "0.8C")}
    assert by_pf["1"] == [
        ("0.05Ib", False),
        ("0.1Ib", False),
        ("0.2Ib", True),
        ("0.5Ib", False),
        ("Ib", False),
        ("0.5Imax", True),
        ("Imax", False),
    ]
    assert [label for label, _ in by_pf["0.5L"]] == ["0.1Ib", "0.2Ib", "0.5Ib", "Ib", "Imax"]
    assert by_pf["0.8C"] == by_pf["0.5L"]
    first = points[0]
    assert (first.current_a, first.limit.value_pct) == (0.25, 1.5)
    required = acc.load_points(TWIN, include_optional=False)
    assert [p.label for p in required if p.pf.is_unity] == ["0.05Ib", "0.1Ib", "0.5Ib", "Ib", "Imax"]


def test_ct_load_points_start_at_0_01_in_for_class_0_5s() -> None:
    points = acc.load_points(meter("classic", "0.5S", "ct"), include_optional=False)
    assert [p.label for p in points if p.pf.is_unity] == ["0.01In", "0.05In", "0.1In", "0.5In", "In", "Imax"]
    assert [p.limit.value_pct for p in points if p.pf.is_unity] == [1.0, 0.5, 0.5, 0.5, 0.5, 0.5]
    assert [p.label for p in points if p.pf.label == "0.5L"] == ["0.02In", "0.1In", "0.5In", "In", "Imax"]


def test_letter_load_points_are_imin_itr_10itr_half_imax_imax() -> None:
    points = acc.load_points(meter("letter", "B", "direct"))
    assert [p.label for p in points if p.pf.is_unity] == ["Imin", "Itr", "10Itr", "0.5Imax", "Imax"]
    assert [p.current_a for p in points if p.pf.is_unity] == pytest.approx([0.2, 0.5, 5.0, 30.0, 60.0])
    ct_points = acc.load_points(meter("letter", "D", "ct"))
    assert [p.label for p in ct_points if p.pf.is_unity] == ["Imin", "Itr", "20Itr", "0.5Imax", "Imax"]
    assert next(p.label for p in ct_points if p.pf.label == "0.8C") == "Itr"


def test_coinciding_points_are_not_tested_twice() -> None:
    m = replace(CT, accuracy_class="1", imax_a=3.0)  # 0.5 Imax == In
    labels = [p.label for p in acc.load_points(m) if p.pf.is_unity]
    assert labels.count("In") == 1
    assert "0.5Imax" not in labels


# --------------------------------------------------------------------------------------------------
# Starting and creep


def test_starting_current_and_time_of_the_twin_meter() -> None:
    assert acc.starting_current_a(TWIN) == pytest.approx(0.02)
    expected_s = 1.2 * 3.6e6 / (1200 * 1 * 220 * 0.02)
    assert acc.starting_time_s(TWIN) == pytest.approx(expected_s)
    assert acc.starting_time(TWIN).unit == "s"
    assert acc.starting_time(TWIN).check is False


STARTING_CASES = [  # (scheme, class, connection, profile, fraction, of)
    ("classic", "0.5S", "direct", "iec", 0.001, "Ib"),
    ("classic", "0.5S", "ct", "iec", 0.001, "Ib"),
    ("classic", "0.2S", "direct", "iec", 0.001, "Ib"),
    ("classic", "0.2S", "ct", "iec", 0.001, "Ib"),
    ("classic", "1", "direct", "iec", 0.004, "Ib"),
    ("classic", "1", "ct", "iec", 0.002, "Ib"),
    ("classic", "2", "direct", "iec", 0.005, "Ib"),
    ("classic", "2", "ct", "iec", 0.003, "Ib"),
    ("letter", "A", "direct", "iec", 0.05, "Itr"),
    ("letter", "A", "ct", "iec", 0.05, "Itr"),
    ("letter", "A", "direct", "qgdw", 0.04, "Itr"),
    ("letter", "A", "ct", "qgdw", 0.04, "Itr"),
    ("letter", "B", "direct", "iec", 0.04, "Itr"),
    ("letter", "B", "ct", "qgdw", 0.04, "Itr"),
    ("letter", "C", "direct", "iec", 0.04, "Itr"),
    ("letter", "C", "ct", "iec", 0.02, "Itr"),
    ("letter", "D", "direct", "qgdw", 0.04, "Itr"),
    ("letter", "D", "ct", "iec", 0.02, "Itr"),
]


@pytest.mark.parametrize(("scheme", "cls", "conn", "profile", "fraction", "of"), STARTING_CASES)
def test_starting_current_rows(scheme: str, cls: str, conn: str, profile: str, fraction: float, of: str) -> None:
    m = meter(scheme, cls, conn)
    ist = fraction * (m.ib_a if of == "Ib" else m.itr_a)
    assert acc.starting_current_a(m, profile=profile) == pytest.approx(ist)
    periods = 1.2 if scheme == "classic" else 1.0
    t = periods * 3.6e6 / (m.constant_imp_per_kwh * acc.phase_factor(m) * m.un_v * ist)
    assert acc.starting_time_s(m, profile=profile) == pytest.approx(t)
    assert acc.starting_time(m, profile=profile).check is (scheme == "letter")
    assert acc.starting_current(m, profile=profile).check is (cls == "A")


def test_creep_duration_worked_example_is_about_30_minutes() -> None:
    m = replace(TWIN, accuracy_class="2")  # C = 1200, Un = 220 V, Imax = 60 A, single phase
    minutes = acc.creep_duration_s(m) / 60
    assert minutes == pytest.approx(480e6 / (1200 * 1 * 220 * 60))
    assert 29.5 < minutes < 31.0


@pytest.mark.parametrize(("cls", "k"), [("2", 480), ("1", 600), ("0.5S", 600), ("0.2S", 900)])
def test_classic_creep_constant_by_class(cls: str, k: float) -> None:
    m = meter("classic", cls, "ct")
    minutes = k * 1e6 / (m.constant_imp_per_kwh * 3 * m.un_v * m.imax_a)
    assert acc.creep_duration_s(m) == pytest.approx(minutes * 60)
    assert acc.creep_duration(m).check is False


@pytest.mark.parametrize(("cls", "e"), [("A", 1.5), ("B", 1.5), ("C", 1.0), ("D", 0.4)])
@pytest.mark.parametrize("conn", ["direct", "ct"])
def test_letter_creep_duration_by_class(cls: str, e: float, conn: str) -> None:
    m = meter("letter", cls, conn)
    minutes = 1e5 / (1.1 * e * m.constant_imp_per_kwh * acc.phase_factor(m) * m.un_v * imin_expected(m)) * 60
    assert acc.creep_duration_s(m) == pytest.approx(minutes * 60)
    assert acc.creep_duration(m).check is True
    assert acc.creep_duration(m).note == acc.CHECK_NOTE


def test_creep_voltage_and_pulses() -> None:
    assert acc.creep_voltage_v(TWIN) == pytest.approx(1.15 * 220)
    assert acc.creep_voltage_v(meter("letter", "C", "direct")) == pytest.approx(1.10 * 220)
    assert acc.creep_voltage(meter("letter", "C", "direct")).check is False
    assert acc.creep_max_pulses(TWIN) == 1
    assert acc.creep_max_pulses(meter("letter", "D", "ct")) == 1


@pytest.mark.parametrize(("wiring", "m"), [("1P2W", 1.0), ("3P4W", 3.0), ("3P3W", math.sqrt(3))])
def test_phase_factor(wiring: str, m: float) -> None:
    assert acc.phase_factor(replace(TWIN, wiring=wiring)) == pytest.approx(m)


# --------------------------------------------------------------------------------------------------
# Repeatability

REPEATABILITY = {  # class group: (I >= Itr PF 1, Imin <= I < Itr PF 1, PF != 1)
    ("A", "B", "1", "2"): (0.10, 0.15, 0.10),
    ("C", "0.5S"): (0.05, 0.10, 0.06),
    ("D", "0.2S"): (0.02, 0.04, 0.03),
}
REPEATABILITY_CASES = [
    pytest.param(scheme, cls, conn, values, id=f"{cls}-{conn}")
    for group, values in REPEATABILITY.items()
    for cls in group
    for scheme in ("letter" if cls in "ABCD" else "classic",)
    for conn in (("ct",) if cls in ("0.5S", "0.2S") else ("direct", "ct"))
]


@pytest.mark.parametrize(("scheme", "cls", "conn", "values"), REPEATABILITY_CASES)
def test_repeatability_rows(scheme: str, cls: str, conn: str, values: tuple[float, float, float]) -> None:
    m = meter(scheme, cls, conn)
    at_itr, below_itr, not_unity = values
    assert acc.repeatability_limit_pct(m, m.itr_a, "1").value_pct == at_itr
    assert acc.repeatability_limit_pct(m, m.imax_a, "1").value_pct == at_itr
    assert acc.repeatability_limit_pct(m, imin_expected(m), "1").value_pct == below_itr
    assert acc.repeatability_limit_pct(m, m.itr_a * 0.999, "1").value_pct == below_itr
    for pf in ("0.5L", "0.8C"):
        assert acc.repeatability_limit_pct(m, m.ib_a, pf).value_pct == not_unity
    assert acc.REPEATABILITY_MIN_READINGS == 5


def test_repeatability_outside_the_table_raises() -> None:
    with pytest.raises(acc.SpecError, match="outside the specified range of the repeatability limit"):
        acc.repeatability_limit_pct(TWIN, 0.01, "1")
    with pytest.raises(acc.SpecError, match=r"PF 0\.25L is not specified"):
        acc.repeatability_limit_pct(TWIN, 5.0, "0.25L")


# --------------------------------------------------------------------------------------------------
# Influence quantities

INFLUENCE = [  # (influence, pf, {class: limit}) from the reference table
    ("voltage", "1", {"1": 0.7, "0.5S": 0.2, "0.2S": 0.1}),
    ("voltage", "0.5L", {"1": 1.0, "0.5S": 0.4, "0.2S": 0.2}),
    ("frequency", "1", {"1": 0.5, "0.5S": 0.2, "0.2S": 0.1}),
    ("harmonics", "1", {"1": 0.8, "0.5S": 0.5, "0.2S": 0.4}),
]
LETTER_OF = {"1": "B", "0.5S": "C", "0.2S": "D"}
INFLUENCE_CASES = [
    pytest.param(infl, pf, cls, limit, id=f"{infl}-{pf}-{cls}")
    for infl, pf, limits in INFLUENCE
    for cls, limit in limits.items()
]


@pytest.mark.parametrize(("influence", "pf", "cls", "limit"), INFLUENCE_CASES)
def test_influence_rows_for_classic_and_their_letter_counterparts(
    influence: str, pf: str, cls: str, limit: float
) -> None:
    classic = acc.influence_limit_pct(meter("classic", cls, "ct"), influence, pf)
    letter = acc.influence_limit_pct(meter("letter", LETTER_OF[cls], "ct"), influence, pf)
    assert classic.value_pct == letter.value_pct == limit
    assert classic.check is False


@pytest.mark.parametrize(
    ("influence", "pf", "limit"),
    [("voltage", "1", 1.0), ("voltage", "0.5L", 1.5), ("frequency", "1", 0.8), ("frequency", "0.5L", 1.0)],
)
def test_class_2_and_a_influence_values_are_marked_check(influence: str, pf: str, limit: float) -> None:
    for m in (replace(TWIN, accuracy_class="2"), meter("letter", "A", "direct")):
        got = acc.influence_limit_pct(m, influence, pf)
        assert (got.value_pct, got.check) == (limit, True)


def test_influence_test_conditions() -> None:
    voltage = acc.influence_test(TWIN, "voltage")
    assert voltage.settings == pytest.approx((198.0, 242.0))
    assert voltage.unit == "V"
    assert (voltage.current_a, voltage.current_label) == (5.0, "Ib")
    assert [pf.label for pf in voltage.pfs] == ["1", "0.5L"]
    frequency = acc.influence_test(CT, "frequency")
    assert frequency.settings == pytest.approx((49.0, 51.0))
    assert (frequency.current_a, frequency.current_label) == (1.5, "In")
    assert [pf.label for pf in frequency.pfs] == ["1", "0.5L"]
    harmonics = acc.influence_test(TWIN, "harmonics")
    assert (harmonics.current_a, harmonics.settings, harmonics.check) == (30.0, (), True)


def test_influence_requests_outside_the_table_raise() -> None:
    with pytest.raises(acc.SpecError, match="influence 'temperature' is not one of voltage, frequency, harmonics"):
        acc.influence_limit_pct(TWIN, "temperature", "1")
    with pytest.raises(acc.SpecError, match=r"no harmonics test at PF 0\.5L"):
        acc.influence_limit_pct(TWIN, "harmonics", "0.5L")


# --------------------------------------------------------------------------------------------------
# Rounding, gate, uncertainty


@pytest.mark.parametrize(
    ("cls", "scheme", "interval"),
    [
        ("2", "classic", 0.2),
        ("1", "classic", 0.1),
        ("0.5S", "classic", 0.05),
        ("0.2S", "classic", 0.02),
        ("A", "letter", 0.2),
        ("B", "letter", 0.1),
        ("C", "letter", 0.05),
        ("D", "letter", 0.02),
    ],
)
def test_rounding_interval_by_class_is_marked_check(cls: str, scheme: str, interval: float) -> None:
    m = meter(scheme, cls, "ct")
    assert acc.rounding_interval_pct(m) == interval
    assert acc.rounding_interval(m).check is True
    assert acc.rounding_interval_pct(m, quantity="std_dev") == pytest.approx(interval / 5)


@pytest.mark.parametrize(
    ("value", "interval", "expected"),
    [
        (0.25, 0.1, 0.2),  # tie: to the even multiple
        (0.35, 0.1, 0.4),  # tie: to the even multiple, whatever the binary value of 0.35
        (0.15, 0.1, 0.2),
        (-0.25, 0.1, -0.2),
        (0.26, 0.1, 0.3),
        (0.1, 0.2, 0.0),  # half of 0.2 goes to 0 (even)
        (0.3, 0.2, 0.4),  # 1.5 intervals goes to 2
        (0.075, 0.05, 0.1),
        (0.025, 0.05, 0.0),
        (-0.01, 0.1, 0.0),
        (1.234, 0.02, 1.24),
    ],
)
def test_round_error_half_to_even_in_interval_units(value: float, interval: float, expected: float) -> None:
    assert acc.round_error(value, interval) == expected


def test_round_error_rule_can_be_half_up() -> None:
    assert acc.round_error(0.25, 0.1, rule="half_up") == 0.3
    assert acc.round_error(-0.25, 0.1, rule="half_up") == -0.3
    with pytest.raises(ValueError, match="interval"):
        acc.round_error(0.25, 0.0)


@given(
    value=st.floats(min_value=-20, max_value=20, allow_nan=False),
    interval=st.sampled_from([0.2, 0.1, 0.05, 0.02]),
)
def test_rounded_error_is_a_nearby_multiple_of_the_interval(value: float, interval: float) -> None:
    rounded = acc.round_error(value, interval)
    steps = rounded / interval
    assert steps == pytest.approx(round(steps), abs=1e-9)
    assert abs(rounded - value) <= interval / 2 + 1e-9


@pytest.mark.parametrize(
    ("power_w", "constant", "pulses"),
    [
        (1100.0, 1200.0, 2),  # T_pulse = 2.73 s
        (13200.0, 1200.0, 22),  # T_pulse = 0.227 s: exactly 22 periods in 5 s, not 23
        (3000.0, 1200.0, 5),  # T_pulse = 1 s exactly: 5, not 6
        (400.0 * 77.4, 1000.0, 43),  # exactly 43 periods; the float ratio is 43.00000000000001
        (1.0, 1200.0, 1),  # one pulse takes 50 min: still at least one
    ],
)
def test_pulses_for_gate(power_w: float, constant: float, pulses: int) -> None:
    assert pulses_for_gate(power_w, constant) == pulses
    assert pulses_for_gate(-power_w, constant) == pulses  # exported energy gates the same way
    t_pulse = 3.6e6 / (power_w * constant)
    assert pulses * t_pulse >= min(MIN_GATE_S, t_pulse) - 1e-9


def test_pulses_for_gate_refuses_bad_input() -> None:
    for args in ((0.0, 1200.0), (1100.0, -1.0), (math.inf, 1200.0)):
        with pytest.raises(ValueError, match="positive"):
            pulses_for_gate(*args)
    assert MIN_GATE_S == 5.0
    assert acc.MIN_READINGS_PER_POINT >= 2


def test_bench_uncertainty_and_tur() -> None:
    assert acc.test_uncertainty_pct("1") == 0.08
    assert acc.test_uncertainty_pct("0.5L") == 0.13
    assert acc.test_uncertainty_pct(acc.power_factor("0.8C")) == 0.13
    assert "k = 2" in acc.test_uncertainty("1").clause
    with pytest.raises(acc.SpecError, match=r"no bench uncertainty is given for PF 0\.25L"):
        acc.test_uncertainty_pct("0.25L")
    assert acc.tur(1.0, 0.08) == pytest.approx(12.5)
    assert acc.tur(-0.2, 0.08) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="uncertainty_pct"):
        acc.tur(1.0, 0.0)


# --------------------------------------------------------------------------------------------------
# The YAML files: a lab edits them; a bad edit names the file and the key

SPEC_FOLDER = acc.SPEC_FOLDER


def copy_specs(tmp_path: Path) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    for path in SPEC_FOLDER.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) >= 1, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_every_table_carries_a_source() -> None:
    specs = acc.load_specs()
    for scheme in specs.schemes.values():
        for table in (
            scheme.minimum_current,
            scheme.error_limits,
            scheme.load_points,
            scheme.starting_current,
            scheme.starting_time,
            scheme.creep,
            scheme.creep.duration,
        ):
            assert table.source.strip()
    common = specs.common
    for table in (common.repeatability, common.influence, common.rounding, common.test_uncertainty):
        assert table.source.strip()


def test_a_lab_correction_in_yaml_reaches_the_api(tmp_path: Path) -> None:
    folder = copy_specs(tmp_path)
    edit(
        folder / "classic_2003.yaml",
        '{classes: ["1"], connections: [direct], pfs: ["1"], from: 0.1 Ib, to: Imax, limit_pct: 1.0}',
        '{classes: ["1"], connections: [direct], pfs: ["1"], from: 0.1 Ib, to: Imax, limit_pct: 1.1, check: true}',
    )
    specs = acc.load_specs(folder)
    got = acc.error_limit_pct(TWIN, 5.0, "1", specs=specs)
    assert (got.value_pct, got.check) == (1.1, True)
    assert acc.error_limit_pct(TWIN, 5.0, "1").value_pct == 1.0  # the shipped tables are untouched


@pytest.mark.parametrize(
    ("file", "old", "new", "words"),
    [
        (
            "classic_2003.yaml",
            "to: 0.1 Ib, limit_pct: 1.5}",
            "to: 0.1 Ib, limit_pct: abc}",
            r"error_limits\.rows\[8\]\.limit_pct: Input should be a valid number.*'abc'",
        ),
        (
            "classic_2003.yaml",
            "to: 0.1 Ib, limit_pct: 1.5}",
            "to: 0.1 Ib, limt_pct: 1.5}",
            r"error_limits\.rows\[8\]\.limt_pct: Extra inputs are not permitted",
        ),
        (
            "classic_2003.yaml",
            'pfs: ["1"], from: 0.05 Ib',
            'pfs: ["1X"], from: 0.05 Ib',
            r"error_limits\.rows\[0\]\.pfs\[0\]: '1X' is not a power-factor label",
        ),
        (
            "classic_2003.yaml",
            "from: 0.05 Ib, to: 0.1 Ib",
            "from: 0.05 Ix, to: 0.1 Ib",
            r"error_limits\.rows\[0\]\.from: '0.05 Ix' is not a current",
        ),
        (
            "classic_2003.yaml",
            'classes: ["2"], connections: [direct], pfs: ["1"]',
            'classes: ["1S"], connections: [direct], pfs: ["1"]',
            r"error_limits\.rows\[0\]\.classes: unknown class '1S'",
        ),
        (
            "classic_2003.yaml",
            "connections: [direct], current: 0.004 Ib",
            "connections: [ct], current: 0.004 Ib",
            r"starting_current\.rows\[2\]\.current: '0.004 Ib': Ib belongs to rows for direct connection only",
        ),
        (
            "classic_2003.yaml",
            'k_by_class: {"2": 480,',
            "k_by_class: {",
            r"creep\.duration\.k_by_class: no value for class '2'",
        ),
        (
            "letter_2020.yaml",
            "voltage_pct_un: 110",
            "voltage_pct_un: -110",
            r"creep\.voltage_pct_un: Input should be greater than 0",
        ),
        (
            "letter_2020.yaml",
            "classes: [A], profiles: [qgdw], current",
            "classes: [A], profiles: [sgcc], current",
            r"starting_current\.rows\[1\]\.profiles: unknown profile 'sgcc'",
        ),
        (
            "common.yaml",
            "rule: half_even",
            "rule: bankers",
            r"rounding\.rule: Input should be 'half_even' or 'half_up'",
        ),
        (
            "common.yaml",
            '{influence: harmonics, pf: "1"',
            '{influence: harmonic, pf: "1"',
            r"influence\.rows\[4\]\.influence: 'harmonic' is not under influence\.tests",
        ),
        ("common.yaml", "test_uncertainty:", "test_uncertainties:", r"test_uncertainty: Field required"),
    ],
)
def test_a_bad_edit_names_the_file_and_the_key(tmp_path: Path, file: str, old: str, new: str, words: str) -> None:
    folder = copy_specs(tmp_path)
    edit(folder / file, old, new)
    with pytest.raises(acc.SpecFileError, match=words) as caught:
        acc.load_spec_file(folder / file)
    assert str(folder / file) in str(caught.value)
    with pytest.raises(acc.SpecFileError, match=words):
        acc.load_specs(folder)


def test_a_class_unknown_to_the_schemes_is_caught_across_files(tmp_path: Path) -> None:
    folder = copy_specs(tmp_path)
    edit(
        folder / "common.yaml",
        'classes: [C, "0.5S"], pfs: ["1"], from: Itr',
        'classes: [C, "0.5"], pfs: ["1"], from: Itr',
    )
    acc.load_spec_file(folder / "common.yaml")  # alone, the file cannot know the schemes' classes
    with pytest.raises(
        acc.SpecFileError, match=r"common\.yaml: repeatability\.rows\[2\]\.classes: unknown class '0.5'"
    ):
        acc.load_specs(folder)


def test_yaml_syntax_errors_name_the_file_and_the_line(tmp_path: Path) -> None:
    folder = copy_specs(tmp_path)
    edit(folder / "letter_2020.yaml", "classes: [A, B, C, D]", "classes: [A, B, C, D")
    with pytest.raises(acc.SpecFileError, match=r"letter_2020\.yaml: line \d+, column \d+: not valid YAML"):
        acc.load_spec_file(folder / "letter_2020.yaml")


def test_missing_or_misfiled_spec_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(acc.SpecFileError, match="cannot read"):
        acc.load_spec_file(tmp_path / "absent.yaml")
    with pytest.raises(acc.SpecFileError, match=r"no \*\.yaml spec files"):
        acc.load_specs(tmp_path)
    folder = copy_specs(tmp_path)
    (folder / "common.yaml").unlink()
    with pytest.raises(acc.SpecFileError, match="exactly one file of kind common"):
        acc.load_specs(folder)
    shutil.copy(SPEC_FOLDER / "classic_2003.yaml", folder / "classic_copy.yaml")
    with pytest.raises(acc.SpecFileError, match="scheme: 'classic' is also defined by"):
        acc.load_specs(folder)


def test_an_overlap_written_into_a_table_is_reported_at_lookup(tmp_path: Path) -> None:
    folder = copy_specs(tmp_path)
    edit(
        folder / "classic_2003.yaml",
        "from: 0.05 Ib, to: 0.1 Ib, limit_pct: 1.5",
        "from: 0.05 Ib, to: 0.2 Ib, limit_pct: 1.5",
    )
    specs = acc.load_specs(folder)
    with pytest.raises(acc.SpecError, match=r"error_limits\.rows\[8\] and rows\[9\] both cover"):
        acc.error_limit_pct(TWIN, 0.6, "1", specs=specs)


# --------------------------------------------------------------------------------------------------
# check flags


def test_check_flags_are_exposed_where_the_reference_marks_check() -> None:
    letter_b = meter("letter", "B", "direct")
    assert acc.error_limit_pct(TWIN, 5.0, "1").check is False
    assert acc.error_limit_pct(TWIN, 5.0, "0.25L").check is True
    assert acc.starting_time(TWIN).check is False
    assert acc.starting_time(letter_b).check is True
    assert acc.creep_duration(TWIN).check is False
    assert acc.creep_duration(letter_b).check is True
    assert acc.rounding_interval(TWIN).check is True
    assert all(p.check for p in acc.load_points(TWIN))
    flagged = acc.starting_time(letter_b)
    assert flagged.note == "value not yet confirmed against the standard"
    assert acc.starting_time(TWIN).note == ""
