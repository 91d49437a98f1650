"""Every defect knob of the catalogue `rig mutate` uses (handed over by the plans through an entry point) is
caught: set outside its spec, the plan tests named in its row fail; inside its spec, and on a healthy meter,
the plans pass. Real `rig run` processes (as `rig mutate` makes them), two at a time; how each family of knobs
is run (one rack with a position per knob, or one run per knob and bench) is the FAMILIES table of
tests/conftest.py, which also parametrizes `catalogue_row` and `knob_family` here.
Also the families' companion runs (a six-position rack, the default twin, a bench without BLE) and `rig mutate`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rig.config import MeterKnobs, load_bench
from rig.mutate import HEALTHY, Matrix, Row
from rig.plans import mutation_catalogue

ROOT = Path(__file__).resolve().parents[1]


COMPANIONS = {  # the companion tests below and the family whose runs they read
    "test_six_position_rack_passes_the_comms_plan": "uart",
    "test_default_twin_passes_power_and_its_72h_outage_takes_seconds": "power",
    "test_healthy_ble_position_passes_every_comms_test_over_both_transports": "ble",
    "test_pairing_is_checked_when_the_bench_file_asks_for_it": "ble",
    "test_a_bench_without_ble_skips_the_ble_items_saying_why": "ble",
    "test_the_security_plan_runs_over_ble_and_catches_its_knob_there": "ble",
}


@pytest.fixture(autouse=True, scope="module")
def _selected_families_started(request: pytest.FixtureRequest, knob_runs: Any) -> None:
    """Start the runs of every family a selected item needs at once, so the two workers never wait between
    families (and a selection of a few items starts only theirs)."""
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        if "catalogue_row" in params:
            knob_runs.start(knob_runs.family_of(params["catalogue_row"]))
        elif "knob_family" in params:
            knob_runs.start(params["knob_family"])
        elif getattr(item, "originalname", "") in COMPANIONS:
            knob_runs.start(COMPANIONS[item.originalname])


def _family_fields(family: str) -> set[str]:
    return {f"twin.meter.{family}.{name}" for name in type(getattr(MeterKnobs(), family)).model_fields}


def test_every_knob_has_a_catalogue_row_naming_real_plan_tests(knob_runs: Any) -> None:
    catalogue = mutation_catalogue()
    assert {knob_runs.family_of(m) for m in catalogue} == set(MeterKnobs.model_fields)
    assert set(knob_runs.families) | knob_runs.unproven_here == set(MeterKnobs.model_fields)
    for family in knob_runs.families:
        assert {m.knob for m in knob_runs.mutations(family)} == _family_fields(family) - knob_runs.realism, family
    for mutation in catalogue:
        for test in mutation.catches:
            path, function = test.split("::")
            assert f"def {function}(" in (ROOT / path).read_text(), test


def _items(outcomes: dict[str, str], test: str) -> dict[str, str]:
    return {k: v for k, v in outcomes.items() if k.startswith(test + "[")}


def test_knob_outside_fails_its_catching_tests(knob_runs: Any, catalogue_row: Any) -> None:
    knob = catalogue_row
    family = knob_runs.family_of(knob)
    spec = knob_runs.families[family]
    if hasattr(spec, "benches"):
        for bench in spec.benches:
            result = knob_runs.case(family, bench, knob, True)
            for test in knob.catches:
                assert result.get(test) == "failed", (bench, knob.why, result)
        return
    outcomes = knob_runs.get(family).outcomes(knob_runs.position_name(knob, True), **spec.exclude)
    assert outcomes, "no test ran on the position"
    for test in knob.catches:
        assert "failed" in _items(outcomes, test).values(), (knob.why, test, outcomes)


def test_knob_inside_passes(knob_runs: Any, catalogue_row: Any) -> None:
    """Inside its spec the catching tests pass (on a rack, the whole plan passes on the knob's position); an
    inside value that is the healthy default is the healthy meter: its catching tests pass there."""
    knob = catalogue_row
    family = knob_runs.family_of(knob)
    spec = knob_runs.families[family]
    if hasattr(spec, "benches"):
        for bench, path in spec.benches.items():
            if spec.healthy is None or knob_runs.inside_differs(knob, knob_runs.meter(path)):
                result = knob_runs.case(family, bench, knob, False)
            else:
                result = knob_runs.get(family, "healthy").by_function()
            assert all(result.get(test) == "passed" for test in knob.catches), (bench, knob.why, result)
        return
    rows = [row for row in knob_runs.rows(family) if row.mutation == knob and not row.violating]
    rack = knob_runs.get(family)
    if not rows:  # inside is the default: the healthy position is that meter
        assert not knob_runs.inside_differs(knob, knob_runs.meter(knob_runs.rack_file))
        healthy = rack.outcomes("healthy", **spec.exclude)
        for test in knob.catches:
            assert set(_items(healthy, test).values()) == {"passed"}, (knob.why, test, healthy)
    for row in rows:
        outcomes = rack.outcomes(row.name, **spec.exclude)
        assert len(outcomes) >= spec.min_tests, (row.name, outcomes)
        assert set(outcomes.values()) == {"passed"}, (row.name, {k: v for k, v in outcomes.items() if v != "passed"})


def test_healthy_meter_passes(knob_runs: Any, knob_family: str) -> None:
    spec = knob_runs.families[knob_family]
    if hasattr(spec, "benches"):
        healthy = knob_runs.get(knob_family, "healthy").by_function()
        assert len(healthy) >= 11 and set(healthy.values()) == {"passed"}, healthy
        return
    rack = knob_runs.get(knob_family)
    for row in knob_runs.rows(knob_family):
        if row.mutation is not None:
            continue
        outcomes = rack.outcomes(row.name, **spec.exclude)
        assert outcomes and (row.name != "healthy" or len(outcomes) >= spec.min_tests), (row.name, outcomes)
        allowed = {"passed", "skipped"} if spec.may_skip and row.name == "healthy" else {"passed"}
        assert "passed" in outcomes.values() and set(outcomes.values()) <= allowed, (
            row.name, {k: v for k, v in outcomes.items() if v not in allowed})


# ---------------------------------------------------------------------------------------- companion runs


def test_six_position_rack_passes_the_comms_plan(knob_runs: Any) -> None:
    rack = knob_runs.get("uart", "six-position rack")
    assert rack.exit_code == 0, [t for t in rack.tests if t["outcome"] != "passed"]
    for position in (f"P{i}" for i in range(1, 7)):
        outcomes = rack.outcomes(position, **knob_runs.families["uart"].exclude)
        assert len(outcomes) >= 20 and set(outcomes.values()) == {"passed"}, position


def test_default_twin_passes_power_and_its_72h_outage_takes_seconds(knob_runs: Any) -> None:
    healthy = knob_runs.get("power", "default")
    assert healthy.exit_code == 0, [t for t in healthy.tests if t["outcome"] != "passed"]
    assert len(healthy.tests) >= 11
    assert healthy.results["bench_s"] > 72 * 3600, "the plan's bench time holds the 72 h outage"
    assert healthy.results["wall_s"] < 30.0


def test_healthy_ble_position_passes_every_comms_test_over_both_transports(knob_runs: Any) -> None:
    outcomes = knob_runs.get("ble").outcomes("healthy")
    ble = [k for k, v in outcomes.items() if v == "passed" and ("-ble" in k or "[ble-" in k or "test_ble.py" in k)]
    uart = [k for k, v in outcomes.items() if v == "passed" and "uart-" in k]
    assert len(ble) >= 20 and len(uart) >= 20, (len(ble), len(uart))


def test_pairing_is_checked_when_the_bench_file_asks_for_it(knob_runs: Any) -> None:
    rack = knob_runs.get("ble")
    pairing = [v for k, v in rack.outcomes("pairing").items() if "test_pairing_required" in k]
    assert pairing == ["passed"]
    assert [v for k, v in rack.outcomes("healthy").items() if "test_pairing_required" in k] == ["skipped"]


def test_a_bench_without_ble_skips_the_ble_items_saying_why(knob_runs: Any) -> None:
    no_ble = knob_runs.get("ble", "no ble")
    assert no_ble.exit_code == 0
    assert no_ble.tests and {t["outcome"] for t in no_ble.tests} == {"skipped"}
    assert "the bench file gives no ble entry (Bluetooth LE) for this position" in no_ble.output


def test_the_security_plan_runs_over_ble_and_catches_its_knob_there(knob_runs: Any) -> None:
    security = knob_runs.get("ble", "security over ble")
    healthy = security.outcomes("healthy")
    assert len(healthy) >= 15, healthy
    assert set(healthy.values()) == {"passed"}, {k: v for k, v in healthy.items() if v != "passed"}
    assert all("[ble-" in test for test in healthy), "only the BLE items were selected"
    defective = security.outcomes("mac_not_checked")
    knob = next(m for m in mutation_catalogue() if m.knob == "twin.meter.security.mac_not_checked")
    for test in knob.catches:
        items = {k: v for k, v in defective.items() if k.startswith(test + "[ble-")}
        assert items and "failed" in items.values(), (test, defective)


# ------------------------------------------------------------------------------------------- rig mutate


def test_rig_mutate_runs_outside_and_inside_values_and_prints_both_columns(tmp_path: Path) -> None:
    """`rig mutate` on a selection of the accuracy plan: each knob whose catching tests are selected runs outside
    (caught) and at its inside value (clean: no false alarm), and matrix.txt has both columns. (Every knob being
    caught by its plans is proven by the knob families; this is rig mutate's own behaviour, on few short runs.)"""
    selection = [f"testplans/accuracy/test_accuracy.py::{t}" for t in ("test_meter_constant", "test_repeatability")]
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "mutate", *selection, "--reports", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    folder = next(tmp_path.glob("mutate-*"))
    matrix = json.loads((folder / "matrix.json").read_text())
    outside = {row["knob"]: row["verdict"] for row in matrix["rows"] if not row["inside"]}
    inside = {row["knob"]: row["verdict"] for row in matrix["rows"] if row["inside"]}
    assert outside.pop("healthy twin") == "clean"
    expected = {m.knob for m in mutation_catalogue() if any(t.split("::")[-1] in ("test_meter_constant",
                                                                                  "test_repeatability")
                                                            and t.startswith("testplans/accuracy/") for t in m.catches)}
    assert set(outside) == expected and set(outside.values()) == {"caught"}, outside
    assert set(inside) == expected and set(inside.values()) == {"clean"}, inside
    assert matrix["caught"] == {"count": len(expected), "tried": len(expected)}
    assert matrix["false_alarms_inside"] == {"count": 0, "tried": len(expected)}
    text = (folder / "matrix.txt").read_text()
    assert "outside" in text.splitlines()[0] and "inside" in text.splitlines()[0]
    assert f"caught {len(expected)}/{len(expected)} outside; false alarms 0/{len(expected)} inside" in text
    for knob in expected:
        assert next(line for line in text.splitlines() if line.startswith(knob + " ")).split()[-2:] == [
            "caught", "clean"], knob


def test_an_inside_false_alarm_is_counted_and_fails_the_matrix() -> None:
    """The matrix's own arithmetic: a test failing on a knob's inside value is a false alarm in the inside column,
    and the matrix is not ok."""
    test = "testplans/accuracy/test_accuracy.py::test_basic_error"
    knob = "twin.meter.metering.gain_error_pct"
    rows = [Row(HEALTHY, None, ()), Row(knob, f"{knob}=1.2", (test,), failed_tests={test}),
            Row(knob, f"{knob}=0.8", (), failed_tests={test}, inside=True),
            Row("twin.meter.metering.creep_w", "x=1", ("t::creep",), failed_tests={"t::creep"})]
    matrix = Matrix(tests=[test, "t::creep"], rows=rows)
    assert not matrix.ok
    assert matrix.tally(outside=True) == {"count": 2, "tried": 2}
    assert matrix.tally(outside=False) == {"count": 1, "tried": 1}
    lines = matrix.text().splitlines()
    assert next(line for line in lines if line.startswith(knob)).endswith("caught       false alarm (1)")
    assert next(line for line in lines if line.startswith("twin.meter.metering.creep_w")).endswith("= healthy")
    assert "caught 2/2 outside; false alarms 1/1 inside" in lines


def test_rig_mutate_exits_1_on_a_false_alarm(tmp_path: Path) -> None:
    """A twin that is unhealthy to begin with (every meter 30 % fast in its pulses) makes the healthy run fail:
    exit 1."""
    plan = "testplans/accuracy/test_accuracy.py::test_starting_current"
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "mutate", plan, "testplans/smoke", "--reports",
                           str(tmp_path), "--set", "twin.meter.metering.constant_error_pct=30"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    matrix = json.loads(next(tmp_path.glob("mutate-*/matrix.json")).read_text())
    knob = "twin.meter.metering.start_current_a"
    assert [(row["knob"], row["inside"]) for row in matrix["rows"]] == [
        ("healthy twin", False), (knob, False), (knob, True)]
    assert matrix["rows"][0]["verdict"] == "false alarm"
    assert proc.returncode == 1


# ------------------------------------------------------------------------------------------- the catalogue


def test_every_knob_rig_twin_knobs_lists_has_a_catalogue_row() -> None:
    """Each knob `rig twin knobs` lists (every family, whoever added it) has a row in the catalogue `rig mutate`
    reads, and every row names a listed knob. A knob given as text (a choice of words such as 'ok' / 'missing')
    may instead be proven by its family's own tests with its words; a row for it gives text values."""
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "twin", "knobs"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    listed: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("twin.meter.") and " = " in line:
            key, default = line.split(" = ", 1)
            listed[key] = default
    assert len(listed) >= 70, "rig twin knobs lists the meter's knobs"
    catalogue = {m.knob: m for m in mutation_catalogue()}
    text_knobs = {k for k, default in listed.items() if default.startswith(("'", '"'))}
    missing = sorted(set(listed) - set(catalogue) - text_knobs)
    assert not missing, f"knobs without a catalogue row (add outside and inside values): {missing}"
    assert not set(catalogue) - set(listed), "catalogue rows naming no knob"
    meter = load_bench().meter
    for knob, mutation in catalogue.items():
        for violating in (True, False):
            override = mutation.override(meter, violating=violating)
            assert override.startswith(f"{knob}=") and len(override) > len(knob) + 1, override
