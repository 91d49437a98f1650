"""The suite's one test harness: the manual clock (drivers.clock.ManualClock), a bench-file builder, `rig run`
as a subprocess, and the knob runs that prove the defect catalogue (`rig.plans.mutation_catalogue`, the catalogue
`rig mutate` uses).

Nothing imports this module (pytest hands its fixtures to the tests). The knob families below are data: for
each family of `twin.meter.<family>.*` knobs, how the plans are run to show every knob caught.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from drivers.clock import ManualClock
from rig.bench import Bench, bench_session
from rig.config import BENCHES_DIR, DEFAULT_BENCH, BenchConfig, MeterKnobs, load_bench, validate_bench
from rig.mutate import position_outcomes
from rig.plans import Mutation, mutation_catalogue

ROOT = Path(__file__).resolve().parents[1]
RACK = BENCHES_DIR / "twin-rack.yaml"
HEALTHY = "healthy"


# ------------------------------------------------------------------------------------------------ clock


@pytest.fixture
def manual_clock() -> type[ManualClock]:
    """The manual clock class: `manual_clock()` starts at 0 s, `manual_clock(100.0)` at 100 s."""
    return ManualClock


@pytest.fixture
def pipe() -> Iterator[tuple[Any, Any]]:
    """A real file descriptor pair (a terminal nobody or the test types into), so the terminal operator's
    readiness check (select) is exercised."""
    read_fd, write_fd = os.pipe()
    reader, writer = os.fdopen(read_fd, "r"), os.fdopen(write_fd, "w")
    try:
        yield reader, writer
    finally:
        reader.close()
        if not writer.closed:
            writer.close()


# ------------------------------------------------------------------------------------------ bench files


def write_bench(path: Path, positions: list[dict[str, Any]], *, base: Path = RACK, name: str | None = None,
                twin: Mapping[str, Any] | None = None) -> Path:
    """A bench file at `path`: `base` with these positions (address and pulse channel numbered when absent)
    and a twin of one reference channel per position, merged with `twin`."""
    data = yaml.safe_load(base.read_text())
    data["name"] = name or path.stem
    data["positions"] = [{"address": f"{i + 1:012d}", "serial": "twin", "pulse_channel": i + 1, **position}
                         for i, position in enumerate(positions)]
    data["twin"] = {"seed": 1, "reference": {"channels": len(positions)}, **(twin or {})}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def bench_file() -> Callable[..., Path]:
    """`write_bench` (see there)."""
    return write_bench


@pytest.fixture
def spi_only_config() -> BenchConfig:
    """The default twin bench with only the SPI link on its position (no serial ports to open)."""
    data = yaml.safe_load(DEFAULT_BENCH.read_text())
    data["positions"] = [{k: p[k] for k in ("address", "pulse_channel", "spi")} for p in data["positions"]]
    return validate_bench(data)


@pytest.fixture
def spi_bench(spi_only_config: BenchConfig) -> Iterator[Bench]:
    """`spi_only_config` opened (named apart from the plans' `bench`, which the mounting gate guards)."""
    with bench_session(spi_only_config) as opened:
        yield opened


class ServedTwin:
    """`rig twin serve --out <folder>/served.yaml` in its own process, ready (it printed "twin serving")."""

    def __init__(self, folder: Path) -> None:
        self.out = folder / "served.yaml"
        self.proc = subprocess.Popen([sys.executable, "-m", "rig.cli", "twin", "serve", "--out", str(self.out)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        first = self.proc.stdout.readline() if self.proc.stdout else ""
        if "twin serving" not in first:
            self.stop()
            error = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"rig twin serve did not start: {first} {error}")

    @property
    def bench(self) -> dict[str, Any]:
        """The served bench file, as data."""
        data: dict[str, Any] = yaml.safe_load(self.out.read_text())
        return data

    def stop(self) -> int:
        """SIGTERM, as Ctrl-C in another terminal would; its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def served_twin(tmp_path: Path) -> Iterator[ServedTwin]:
    """A twin served by `rig twin serve` in its own process (stopped after the test)."""
    twin = ServedTwin(tmp_path)
    try:
        yield twin
    finally:
        twin.stop()


# -------------------------------------------------------------------------------------------- rig run


@dataclass
class RigRun:
    """One finished `rig run`: its exit code, run folder, results.json and console output."""

    exit_code: int
    folder: Path
    results: dict[str, Any]
    output: str

    @property
    def tests(self) -> list[dict[str, Any]]:
        """The results' test records."""
        return list(self.results["tests"])

    def outcomes(self, position: str, **exclude: Any) -> dict[str, str]:
        """Outcome per test item of one position (see `rig.mutate.position_outcomes`)."""
        return position_outcomes(self.results, position, **exclude)

    def by_function(self) -> dict[str, str]:
        """Outcome per test function: failed when any of its items failed."""
        outcome: dict[str, str] = {}
        for test in self.tests:
            function = str(test["test"]).split("[", 1)[0]
            if outcome.get(function) != "failed":
                outcome[function] = str(test["outcome"])
        return outcome


def rig_run(*args: str, reports: Path, timeout_s: float = 900) -> RigRun:
    """`rig run <args> --reports <reports>` in its own process; fails the test unless it ran the plans (exit 0/1).

    The timeout only catches a run that hangs: a knob rack of some twenty positions running a whole plan takes a
    few minutes on a loaded two-core machine."""
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", *_before_dashes(args, "--reports", str(reports))],
                          capture_output=True, text=True, timeout=timeout_s, cwd=ROOT)
    output = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1), output[-3000:]
    folder = (reports / "latest").resolve()
    assert (folder / "results.json").is_file(), f"exit {proc.returncode} without results.json: {output[-3000:]}"
    return RigRun(proc.returncode, folder, json.loads((folder / "results.json").read_text()), output)


def _before_dashes(args: tuple[str, ...], *extra: str) -> list[str]:
    """`args` with `extra` before a `--` (what follows it goes to pytest)."""
    if "--" in args:
        cut = args.index("--")
        return [*args[:cut], *extra, *args[cut:]]
    return [*args, *extra]


@pytest.fixture(name="rig_run", scope="session")
def rig_run_fixture() -> Callable[..., RigRun]:
    """`rig_run(*args, reports=folder)` (see there)."""
    return rig_run


# ------------------------------------------------------------------------------- knob families (data)


@dataclass(frozen=True)
class Extra:
    """A companion run of a knob family: plan arguments, or a bench built for it and a -k selection."""

    args: tuple[str, ...]
    bench: Callable[[Path], Path] | None = None
    selection: Callable[[], str] | None = None


@dataclass(frozen=True)
class RackFamily:
    """Knobs proven on one rack: a position per knob outside (and per inside value that is not the default),
    plus the healthy meter; each knob position runs only its catching tests, the others the whole plan."""

    plan: str
    position: Callable[[int, str], dict[str, Any]]  # bench entry fields of position (i, name) beyond name, address
    seed: int = 1
    extra_positions: tuple[tuple[str, str], ...] = ()  # (name, -k term) of more healthy positions
    exclude: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # for position_outcomes
    may_skip: bool = False  # the healthy position skips items that do not apply to it (over BLE: the UART's own)
    min_tests: int = 1  # items a passing position runs at least
    extras: Mapping[str, Extra] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseFamily:
    """Knobs proven one `rig run` each: only the catching tests, the knob set outside or inside, per bench; or,
    with `rack`, one run per bench of every catching test on a rack with a position per knob outside and inside
    (the positions' meters are independent, and a plan that measures the rack at once costs one run)."""

    benches: Mapping[str, Path]
    healthy: Extra | None = None  # a healthy run of the whole plan
    rack: bool = False


def _ble_position(i: int, name: str) -> dict[str, Any]:
    return {"ble": {"name": f"MTR-{i + 1:012d}", "backend": "twin", "pairing": name == PAIRING}}


def _ble_security_bench(path: Path) -> Path:
    """Two BLE positions for the security plan: a healthy meter and one that does not check MACs."""
    return write_bench(path, [{"name": HEALTHY, **_ble_position(0, HEALTHY)},
                                   {"name": "mac_not_checked", **_ble_position(1, "mac_not_checked")}],
                       twin={"positions": {1: {"security": {"mac_not_checked": True}}}})


def _security_over_ble_selection() -> str:
    catches = " or ".join(_function(c) for c in _catalogue()["twin.meter.security.mac_not_checked"].catches)
    return f"-k({HEALTHY} and ble) or (mac_not_checked and ble and ({catches}))"


SECURITY_SEED = 3
PAIRING = "pairing"
# The knob families the harness proves (the DL/T 698.45 knobs, some given as text, have tests/dlt698/test_knobs.py).
FAMILIES: dict[str, RackFamily | CaseFamily] = {
    "metering": CaseFamily({"class1": BENCHES_DIR / "twin.yaml", "class0.5S": BENCHES_DIR / "twin-ct-0.5S.yaml"},
                           rack=True),
    "spi": CaseFamily({"default": DEFAULT_BENCH}, healthy=Extra(("testplans/spi",)), rack=True),
    "uart": RackFamily("testplans/comms", lambda i, name: {"expansion_tap": {"serial": "twin"}},
                       exclude={"exclude_params": ("ble",), "exclude_tests": ("test_ble.py::",)}, min_tests=20,
                       extras={"six-position rack": Extra(("testplans/comms", "--bench", str(RACK)))}),
    "power": RackFamily("testplans/power", lambda i, name: {}, min_tests=11,
                        extras={"default": Extra(("testplans/power", "--bench", str(DEFAULT_BENCH)))}),
    "security": RackFamily("testplans/security", lambda i, name: {}, seed=SECURITY_SEED,
                           exclude={"exclude_params": ("ble",)}, min_tests=19,
                           extras={"default": Extra(("testplans/security", "--set", f"twin.seed={SECURITY_SEED}"))}),
    "ble": RackFamily("testplans/comms", _ble_position, extra_positions=((PAIRING, f"({PAIRING} and test_ble)"),),
                      may_skip=True, min_tests=40,
                      extras={"no ble": Extra(("testplans/comms/test_ble.py", "--bench",
                                               str(BENCHES_DIR / "twin-ct-0.5S.yaml"))),
                              "security over ble": Extra(("testplans/security",), _ble_security_bench,
                                                           _security_over_ble_selection)}),
}
# Proven by their own tests (tests/dlt698, tests/registers, tests/harmonics, tests/temperature).
UNPROVEN_HERE = {"dlt698", "registers", "harmonics", "climate"}
REALISM: set[str] = set()  # realism knobs left without a catalogue row (none: each has outside and inside values)


def _catalogue() -> dict[str, Mutation]:
    return {m.knob: m for m in mutation_catalogue()}


def family_of(mutation: Mutation) -> str:
    """`twin.meter.<family>.<knob>` -> family."""
    return mutation.knob.split(".")[2]


def knob_name(mutation: Mutation) -> str:
    """The knob's own name (last part)."""
    return mutation.knob.rsplit(".", 1)[-1]


def family_mutations(family: str) -> list[Mutation]:
    """The catalogue's rows of one family, in catalogue order."""
    return [m for m in mutation_catalogue() if family_of(m) == family]


def _function(test_id: str) -> str:
    return test_id.split("::")[-1]


def _default(mutation: Mutation) -> Any:
    return getattr(getattr(MeterKnobs(), family_of(mutation)), knob_name(mutation))


def _value(mutation: Mutation, meter: Any, violating: bool) -> Any:
    """The knob's outside or inside value, typed like its default (flags are booleans)."""
    value = (mutation.outside if violating else mutation.inside)(meter)  # type: ignore[attr-defined]
    return bool(value) if isinstance(_default(mutation), bool) else value


def inside_differs(mutation: Mutation, meter: Any) -> bool:
    """An inside value equal to the healthy default is proven by the healthy run already."""
    return bool(_value(mutation, meter, False) != _default(mutation))


def position_name(mutation: Mutation, violating: bool) -> str:
    """A knob position's name on its family's rack."""
    return f"{knob_name(mutation)}_{'outside' if violating else 'inside'}"


@dataclass(frozen=True)
class RackRow:
    """One position of a knob rack: a knob outside or inside, or a healthy meter (mutation None)."""

    name: str
    mutation: Mutation | None
    violating: bool
    term: str  # its -k term


def rack_rows(family: str) -> list[RackRow]:
    """The positions of one family's knob rack."""
    spec = FAMILIES[family]
    assert isinstance(spec, RackFamily)
    meter = load_bench(RACK).meter
    rows = [RackRow(HEALTHY, None, False, HEALTHY)]
    rows += [RackRow(name, None, False, term) for name, term in spec.extra_positions]
    for mutation in family_mutations(family):
        catches = " or ".join(_function(c) for c in mutation.catches)
        rows.append(RackRow(position_name(mutation, True), mutation, True,
                            f"({position_name(mutation, True)} and ({catches}))"))
    rows += [RackRow(position_name(m, False), m, False, position_name(m, False)) for m in family_mutations(family)
             if inside_differs(m, meter)]
    return rows


def _rack_bench(family: str, path: Path) -> Path:
    spec = FAMILIES[family]
    assert isinstance(spec, RackFamily)
    meter = load_bench(RACK).meter
    rows = rack_rows(family)
    positions = [{"name": row.name, **spec.position(i, row.name)} for i, row in enumerate(rows)]
    overrides = {i: {family: {knob_name(row.mutation): _value(row.mutation, meter, row.violating)}}
                 for i, row in enumerate(rows) if row.mutation is not None}
    return write_bench(path, positions, name=f"twin-{family}-knobs",
                       twin={"seed": spec.seed, "positions": overrides})


def _case_rack(family: str, bench: Path, root: Path) -> tuple[str, ...]:
    """`rig run` arguments of a case family's rack on `bench`: a healthy position and one per knob outside and
    inside, every catching test of the family."""
    meter = load_bench(bench).meter
    rows = [(HEALTHY, None, False)] + [(position_name(m, v), m, v) for m in family_mutations(family)
                                       for v in (True, False)]
    overrides = {i: {family: {knob_name(m): _value(m, meter, v)}} for i, (_, m, v) in enumerate(rows) if m}
    # Each position wired as the bench's first (its ports and SPI link), less what names one meter.
    wiring = {k: v for k, v in yaml.safe_load(bench.read_text())["positions"][0].items()
              if k not in ("name", "address", "pulse_channel", "ble", "dlt698", "protocol")}
    path = write_bench(root / f"{family}-{bench.stem}-rack.yaml", [{**wiring, "name": name} for name, _, _ in rows],
                       base=bench,
                       name=f"{bench.stem}-{family}-knobs", twin={"positions": overrides})
    catches = sorted({test for m in family_mutations(family) for test in m.catches})
    return (*catches, "--bench", str(path))


class KnobRuns:
    """Every run the knob families need, two twins at a time, started per family on first use and shared by
    every test of the session that asks."""

    def __init__(self, root: Path, pool: concurrent.futures.ThreadPoolExecutor) -> None:
        self._root = root
        self._pool = pool
        self._futures: dict[tuple[str, ...], concurrent.futures.Future[RigRun]] = {}
        self._started: set[str] = set()

    def start(self, family: str) -> None:
        """Submit every run of `family` not yet submitted."""
        if family in self._started:
            return
        self._started.add(family)
        spec = FAMILIES[family]
        if isinstance(spec, RackFamily):
            bench = _rack_bench(family, self._root / f"{family}-knobs.yaml")
            selection = " or ".join(row.term for row in rack_rows(family))
            self._submit((family,), spec.plan, "--bench", str(bench), "--", f"-k{selection}")
        else:
            if spec.healthy is not None:
                self._submit((family, HEALTHY), *spec.healthy.args)
            for bench_name, bench in spec.benches.items():
                meter = load_bench(bench).meter
                if spec.rack:
                    self._submit((family, bench_name, "rack"), *_case_rack(family, bench, self._root))
                    continue
                for mutation in family_mutations(family):
                    for violating in (True, False):
                        if violating or spec.healthy is None or inside_differs(mutation, meter):
                            self._submit((family, bench_name, mutation.knob, str(violating)), *mutation.catches,
                                         "--bench", str(bench), "--set", mutation.override(meter, violating=violating))
        extras = spec.extras if isinstance(spec, RackFamily) else {}
        for name, extra in extras.items():
            args = extra.args
            if extra.bench is not None:
                args += ("--bench", str(extra.bench(self._root / f"{family}-{len(self._futures)}.yaml")))
            if extra.selection is not None:
                args += ("--", extra.selection())
            self._submit((family, name), *args)

    def _submit(self, key: tuple[str, ...], *args: str) -> None:
        reports = self._root / f"run-{len(self._futures):03d}"
        self._futures[key] = self._pool.submit(rig_run, *args, reports=reports)

    def get(self, *key: str) -> RigRun:
        """A finished run: (family,) the rack, (family, extra) a companion, (family, bench, knob, violating) a case."""
        self.start(key[0])
        return self._futures[key].result()

    families = FAMILIES
    unproven_here = UNPROVEN_HERE
    realism = REALISM
    rows = staticmethod(rack_rows)
    mutations = staticmethod(family_mutations)
    family_of = staticmethod(family_of)
    position_name = staticmethod(position_name)
    inside_differs = staticmethod(inside_differs)

    rack_file = RACK

    @staticmethod
    def meter(bench: Path) -> Any:
        """The meter type of a bench file."""
        return load_bench(bench).meter

    def case(self, family: str, bench: str, mutation: Mutation, violating: bool) -> dict[str, str]:
        """Outcome per test function of one knob case (on a case rack: of the knob's position)."""
        spec = FAMILIES[family]
        if isinstance(spec, CaseFamily) and spec.rack:
            outcome: dict[str, str] = {}
            for nodeid, result in self.get(family, bench, "rack").outcomes(position_name(mutation, violating)).items():
                function = nodeid.split("[", 1)[0]
                if outcome.get(function) != "failed":
                    outcome[function] = result
            return outcome
        return self.get(family, bench, mutation.knob, str(violating)).by_function()


@pytest.fixture(scope="session")
def knob_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnobRuns]:
    """The knob families' runs (see KnobRuns)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        runs = KnobRuns(tmp_path_factory.mktemp("knobs"), pool)
        yield runs
        pool.shutdown(cancel_futures=True)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`catalogue_row`: every catalogue row of a family proven here; `knob_family`: every such family that has
    a healthy run."""
    if "catalogue_row" in metafunc.fixturenames:
        mutations = [m for m in mutation_catalogue() if family_of(m) in FAMILIES]
        metafunc.parametrize("catalogue_row", mutations, ids=[f"{family_of(m)}-{knob_name(m)}" for m in mutations])
    if "knob_family" in metafunc.fixturenames:
        # A family with a healthy run of its own (the metering family's is rig mutate's, tests/test_knobs.py).
        healthy = [f for f, spec in FAMILIES.items() if isinstance(spec, RackFamily) or spec.healthy is not None]
        metafunc.parametrize("knob_family", healthy)
