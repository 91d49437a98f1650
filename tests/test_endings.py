"""Every ending of `rig run` leaves the source off, never records an unfinished session as a pass, exits
130 when a stop signal was caught, and leaves no process behind (README "Endings: what is guaranteed").

Real `rig run` processes, each in its own session (process group, as a terminal job is), on the served
twin (`rig twin serve`, source read back over plain pyvisa `OUTP?`) and on the embedded twin (the twin
dies with the run: the traffic log's last output command says what the run did). The `signal_at` plugin
(tests/data) makes the run signal itself at a named moment of tests/data/endings_plan.py.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pyvisa
import yaml

from rig.certificate import certificate_data
from rig.results import INTERRUPTED, PASS, Journal

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RIG = [sys.executable, "-m", "rig.cli"]
PLAN = str(DATA / "endings_plan.py")
ITEMS = 3  # in the plan
LANES = 2  # runs at the same time (one served twin each)
MOMENTS = ("early", "mid", "after-last")
KILL_OFF_WITHIN_S = 2.0


@dataclass(frozen=True)
class Case:
    signals: tuple[str, ...]
    moment: str
    served: bool = True
    gap_s: float = 0.0
    fault: str | None = None  # no signal: a finalizer or a pytest hook raises (see tests/data/signal_at.py)

    @property
    def label(self) -> str:
        if self.fault:
            return f"{self.fault} error"
        if len(self.signals) == 1:
            return self.signals[0]
        return f"{self.signals[0]} x{len(self.signals)} {self.gap_s:g} s apart"

    @property
    def killed(self) -> bool:
        return "SIGKILL" in self.signals[:1]

    @property
    def caught(self) -> bool:
        return bool(self.signals) and not self.killed


# Every kind of ending at every moment; the gaps between two Ctrl-C vary across the moments (a compact
# matrix: about 25 runs, two at a time).
CASES = (
    [Case((name,), moment) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGKILL") for moment in MOMENTS]
    + [Case(("SIGINT", "SIGINT"), moment, gap_s=gap) for moment, gap in zip(MOMENTS, (0.05, 0.3, 1.0))]
    + [Case(("SIGTERM", "SIGTERM"), "mid", gap_s=0.05)]
    + [Case(signals, "teardown", gap_s=gap) for signals, gap in [
        (("SIGINT",), 0.0), (("SIGTERM", "SIGTERM"), 0.05), (("SIGHUP",), 0.0), (("SIGINT", "SIGINT"), 0.05),
        (("SIGINT", "SIGINT"), 0.3), (("SIGKILL",), 0.0)]]
    + [Case(("SIGINT",), "mid", served=False), Case(("SIGTERM",), "after-last", served=False),
       Case(("SIGHUP",), "teardown", served=False), Case(("SIGINT", "SIGINT"), "early", served=False, gap_s=0.3)]
    + [Case((), "after-last", fault="internal"), Case((), "teardown", fault="finalizer")]
)


@dataclass
class Outcome:
    case: Case
    exit_code: int
    source_off: bool
    off_after_s: float | None  # SIGKILL: wall time from the run's death until OUTP? read 0
    energised: bool  # the run had switched the output on before the signal
    signals_noted: list[str]  # what the session's metadata says it received
    switch_acted: bool  # the dead-man's switch had to drive the source safe (the run could not)
    session_verdict: str | None
    results_verdict: str | None
    junit_interrupted: bool
    certificate: str
    completed: int
    orphans: list[str]
    stderr: str

    def row(self) -> str:
        where = "served" if self.case.served else "embedded"
        off = "off" if self.source_off else "ON!"
        if self.off_after_s is not None:
            off += f" {self.off_after_s:.2f}s"
        return (f"{self.case.label:<24} {self.case.moment:<10} {where:<8} {off:<9} "
                f"{self.session_verdict or 'killed':<11} {self.certificate:<10} {self.exit_code:<5} "
                f"{self.completed}/{ITEMS}  {len(self.orphans)}")


def _served_twin(out: Path) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen([*RIG, "twin", "serve", "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert "twin serving" in proc.stdout.readline()
    return proc, out


@pytest.fixture(scope="module")
def served_twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    base = tmp_path_factory.mktemp("served")
    twins = [_served_twin(base / f"lane{k}.yaml") for k in range(LANES)]
    try:
        yield [path for _, path in twins]
    finally:
        for proc, _ in twins:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def _source(bench_file: Path) -> object:
    bench = yaml.safe_load(bench_file.read_text())
    resource = next(i["resource"] for i in bench["instruments"] if i["role"] == "source")
    return pyvisa.ResourceManager("@py").open_resource(resource, read_termination="\n", write_termination="\n",
                                                       timeout=2000)


def _outp(bench_file: Path) -> str:
    inst = _source(bench_file)
    try:
        return str(inst.query("OUTP?")).strip()  # type: ignore[attr-defined]
    finally:
        inst.close()  # type: ignore[attr-defined]


def _processes_marked(marker: str) -> list[str]:
    """Live processes whose environment carries this case's marker (the run and everything it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                status = (entry / "status").read_text()
                if "\nState:\tZ" not in status:
                    found.append(f"{entry.name} {(entry / 'cmdline').read_bytes()[:80]!r}")
        except OSError:
            continue
    return found


def _wait(predicate: object, timeout_s: float, poll_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():  # type: ignore[operator]
            return True
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(poll_s)


def run_case(case: Case, bench_file: Path | None, base: Path) -> Outcome:
    case_id = uuid.uuid4().hex
    marker = f"RIG_ENDINGS_CASE={case_id}"  # inherited by every process the run starts
    reports = base / f"{case.moment}-{'-'.join(case.signals)}-{case.gap_s:g}-{case_id[:4]}"
    env = {**os.environ, "PYTHONPATH": str(DATA), "RIG_SIGNAL_AT": case.moment, "RIG_SIGNALS": ",".join(case.signals),
           "RIG_SIGNAL_GAP_S": str(case.gap_s), "RIG_FAULT": case.fault or "", "RIG_ENDINGS_CASE": case_id}
    args = [*RIG, "run", PLAN, "--reports", str(reports)]
    if bench_file is not None:
        args += ["--bench", str(bench_file)]
        assert _outp(bench_file) == "0", "precondition: the served source is off"
    args += ["--", "-psignal_at"]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180, start_new_session=True)
    died = time.monotonic()
    off_after_s = None
    if bench_file is not None:
        source_off = _wait(lambda: _outp(bench_file) == "0", KILL_OFF_WITHIN_S)
        if case.killed:
            off_after_s = time.monotonic() - died
    orphans: list[str] = []
    if not _wait(lambda: not _processes_marked(marker), 5.0, 0.1):
        orphans = _processes_marked(marker)
    run_dir = next(p for p in reports.iterdir() if p.is_dir() and not p.is_symlink())
    if case.killed and bench_file is not None:
        # The switch notes what it did once its own `OUTP?` has read off, which this test may see first.
        _wait(lambda: "dead-man's switch # " in (run_dir / "traffic.log").read_text(), 5.0)
    traffic = (run_dir / "traffic.log").read_text()
    sent = [line.split(" > ", 1)[1] for line in traffic.splitlines() if " > " in line]
    output_commands = [c.split(";")[0] for c in sent if c.startswith(("OUTP ON", "OUTP OFF"))]
    energised = "OUTP ON" in output_commands
    switch_acted = "dead-man's switch # " in traffic
    if bench_file is None:
        source_off = bool(output_commands) and output_commands[-1] == "OUTP OFF"
    journal = Journal.in_folder(run_dir, create=False)
    run_id = json.loads((run_dir / "run.json").read_text())["run_id"]
    session = journal.sessions(run_id)[-1]
    completed = sum(1 for i in journal.items(run_id) if i.session == session.session)
    signals_noted = (session.meta.get("ending") or {}).get("signals", [])
    results = run_dir / "results.json"
    results_verdict = json.loads(results.read_text())["verdict"] if results.is_file() else None
    junit = run_dir / "junit.xml"
    junit_interrupted = junit.is_file() and 'message="interrupted"' in junit.read_text()
    certificate = certificate_data(journal, run_id, run_dir).overall_verdict
    journal.engine.dispose()
    return Outcome(case, proc.returncode, source_off, off_after_s, energised, signals_noted, switch_acted,
                   session.verdict,
                   results_verdict,
                   junit_interrupted, certificate, completed, orphans, proc.stderr[-3000:])


@pytest.mark.slow
def test_every_ending_leaves_the_source_off_and_never_passes_unfinished(
        served_twins: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lanes = [threading.Lock() for _ in range(LANES)]

    def on_a_lane(case: Case) -> Outcome:
        for k, lane in enumerate(lanes):
            if lane.acquire(blocking=False):
                try:
                    return run_case(case, served_twins[k] if case.served else None, tmp_path)
                finally:
                    lane.release()
        raise AssertionError("more cases at once than lanes")

    with concurrent.futures.ThreadPoolExecutor(max_workers=LANES) as pool:
        outcomes = list(pool.map(on_a_lane, CASES))
    table = "\n".join(["signal                   moment     twin     source    session     certificate exit  "
                       "items orphans", *(o.row() for o in outcomes)])
    with capsys.disabled():  # the table is the point of this test: shown whether it passes or not
        print("\n" + table)
    problems = []
    for o in outcomes:
        case, what = o.case, f"{o.case.label} at {o.case.moment} ({'served' if o.case.served else 'embedded'})"
        if not o.source_off:
            problems.append(f"{what}: source left ON")
        if not o.energised:
            problems.append(f"{what}: the run never energised the source (nothing was tested)")
        if o.switch_acted != (case.killed and o.completed < ITEMS):
            problems.append(f"{what}: the dead-man's switch {'had to act' if o.switch_acted else 'did not act'}")
        if case.killed:
            if o.off_after_s is None or o.off_after_s > KILL_OFF_WITHIN_S:
                problems.append(f"{what}: source not off within {KILL_OFF_WITHIN_S} s of the kill")
            if o.exit_code != -signal.SIGKILL:
                problems.append(f"{what}: exit {o.exit_code}, expected death by SIGKILL")
        elif case.caught and o.exit_code != 130:
            problems.append(f"{what}: exit {o.exit_code}, expected 130\n{o.stderr}")
        if case.fault and (o.exit_code in (0, 130) or o.session_verdict == PASS or o.certificate == PASS):
            problems.append(f"{what}: exit {o.exit_code}, session {o.session_verdict}, certificate {o.certificate}")
        if o.completed < ITEMS:
            if o.session_verdict == PASS or o.results_verdict == PASS or o.certificate == PASS:
                problems.append(f"{what}: {o.completed}/{ITEMS} items completed but recorded as pass")
            if not case.killed and (o.session_verdict != INTERRUPTED or o.results_verdict != INTERRUPTED
                                    or not o.junit_interrupted or o.certificate != "incomplete"):
                problems.append(f"{what}: unfinished but session {o.session_verdict}, results.json "
                                f"{o.results_verdict}, junit interrupted {o.junit_interrupted}, certificate "
                                f"{o.certificate}")
        elif case.caught and (o.session_verdict != PASS or o.certificate != PASS or not o.signals_noted):
            problems.append(f"{what}: every item completed (the signal came during teardown): expected pass with "
                            f"the signal noted, got {o.session_verdict}, certificate {o.certificate}, "
                            f"noted {o.signals_noted}")
        if o.orphans:
            problems.append(f"{what}: processes left behind: {o.orphans}")
    assert not problems, table + "\n" + "\n".join(problems)
    assert {o.case.moment for o in outcomes if o.completed < ITEMS} >= {"early", "mid", "after-last"}


# ------------------------------------------------------------------ the dead-man's switch on its own


class WatchdogSource:
    """A message transport answering like an AC6800 with its I/O watchdog (what the twin does not model)."""

    resource = "TCPIP::127.0.0.1::5025::SOCKET"

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.output = True
        self.is_open = False

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    def write(self, message: str) -> None:
        assert self.is_open, "written while closed"
        self.sent.append(message)
        if message == "OUTP OFF":
            self.output = False

    def query(self, message: str) -> str:
        self.write(message.removesuffix(";:SYST:ERR?"))
        if message.endswith(";:SYST:ERR?"):
            return '0,"No error"'
        return {"OUTP?": "1" if self.output else "0", "*OPC?": "1"}[message]


def _supervise(tell: bytes | None, hold_s: float) -> tuple[int, WatchdogSource, str]:
    """Run the supervisor in a thread on a pipe; after `hold_s` write `tell` (if any) and close the pipe."""
    import io

    from rig.supervisor import Watch, build_source, supervise

    fake = WatchdogSource()
    watch = Watch(resource=fake.resource, driver="keysight-ac6800", watchdog_s=30, feed_s=0.1)
    source = build_source(watch)
    source.transport = fake
    read_fd, write_fd = os.pipe()
    out = io.StringIO()
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(supervise(watch, read_fd, out, source)))
    worker.start()
    threading.Event().wait(hold_s)
    if tell:
        os.write(write_fd, tell)
    os.close(write_fd)
    worker.join(10)
    os.close(read_fd)
    return result[0], fake, out.getvalue()


def test_switch_arms_and_feeds_the_instruments_watchdog_and_stands_down_on_bye() -> None:
    code, fake, said = _supervise(b"bye\n", hold_s=0.5)
    assert code == 0 and "instrument watchdog armed (30 s)" in said
    assert fake.sent[:2] == ["OUTP:PROT:WDOG:DEL 30", "OUTP:PROT:WDOG ON"]
    assert fake.sent.count("*OPC?") >= 2, "fed while the run lives"
    assert "OUTP OFF" not in fake.sent, "the run said it left the source safe: the switch touches nothing"
    assert fake.sent[-1] == "OUTP:PROT:WDOG OFF" and fake.output


def test_switch_drives_the_source_off_when_the_run_vanishes() -> None:
    code, fake, _ = _supervise(None, hold_s=0.1)
    assert code == 0
    assert not fake.output and "OUTP OFF" in fake.sent and "OUTP?" in fake.sent
    assert fake.sent[-1] == "OUTP:PROT:WDOG OFF"


# ------------------------------------------------------------------ the terminal goes away


@pytest.mark.slow
def test_terminal_hangup_mid_plan_leaves_the_source_off(served_twins: list[Path], tmp_path: Path) -> None:
    """`rig run` on a terminal that hangs up (ssh dropped, window closed) while the plan holds the source
    on: SIGHUP from the kernel, and every later write to the terminal fails; the ending still runs."""
    bench_file = served_twins[0]
    master, slave = os.openpty()
    # setsid -c: a session of its own with the pseudo-terminal as its controlling terminal, as a login has.
    proc = subprocess.Popen(["setsid", "-w", "-c", *RIG, "run", "--bench", str(bench_file),
                             str(DATA / "hold_plan.py"), "--reports", str(tmp_path)],
                            stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    stop = threading.Event()
    seen: list[bytes] = []

    def drain() -> None:  # a terminal that nobody reads would block the run's writes
        import select

        while not stop.is_set():
            if select.select([master], [], [], 0.05)[0]:
                try:
                    seen.append(os.read(master, 4096))
                except OSError:
                    return

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        assert _wait(lambda: _outp(bench_file) == "1", 60), b"".join(seen).decode(errors="replace")
    finally:
        stop.set()
        reader.join()
        os.close(master)  # the hangup
    code = proc.wait(timeout=60)
    assert code == 130, b"".join(seen).decode(errors="replace")
    assert _outp(bench_file) == "0"
    run_dir = next(p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink())
    results = json.loads((run_dir / "results.json").read_text())
    assert results["verdict"] == INTERRUPTED
    assert "dead-man's switch # " not in (run_dir / "traffic.log").read_text(), "the run drove it safe itself"


# ------------------------------------------------------------------ signals from outside


@pytest.mark.slow
@pytest.mark.parametrize("signals", [("SIGINT", "SIGINT"), ("SIGKILL",)], ids=["ctrl-c-twice", "kill-9"])
def test_signals_from_outside_while_the_plan_holds_the_source_on(served_twins: list[Path], tmp_path: Path,
                                                                 signals: tuple[str, ...]) -> None:
    """What an operator does: Ctrl-C twice 50 ms apart at the terminal (the whole process group), or
    kill -9 of the run's process; the plan is holding the source on."""
    bench_file = served_twins[1]
    proc = subprocess.Popen([*RIG, "run", "--bench", str(bench_file), str(DATA / "hold_plan.py"), "--reports",
                             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert _wait(lambda: _outp(bench_file) == "1", 60), "the plan never energised the source"
        for k, name in enumerate(signals):
            if k:
                threading.Event().wait(0.05)
            if name == "SIGKILL":
                proc.kill()
            else:
                os.killpg(proc.pid, signal.Signals[name])
        _, stderr = proc.communicate(timeout=60)
        died = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _wait(lambda: _outp(bench_file) == "0", KILL_OFF_WITHIN_S)
    assert time.monotonic() - died <= KILL_OFF_WITHIN_S + 0.5
    run_dir = next(p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink())
    run_id = json.loads((run_dir / "run.json").read_text())["run_id"]
    journal = Journal.in_folder(run_dir, create=False)
    verdict = journal.sessions(run_id)[-1].verdict
    certificate = certificate_data(journal, run_id, run_dir).overall_verdict
    journal.engine.dispose()
    assert certificate == "incomplete"
    if signals == ("SIGKILL",):
        assert proc.returncode == -signal.SIGKILL and verdict is None
        # The switch notes what it did once its own `OUTP?` has read off, which this test may see first.
        assert _wait(lambda: "dead-man's switch # " in (run_dir / "traffic.log").read_text(), 5.0)
    else:
        assert proc.returncode == 130, stderr
        assert verdict == INTERRUPTED
        assert json.loads((run_dir / "results.json").read_text())["verdict"] == INTERRUPTED
