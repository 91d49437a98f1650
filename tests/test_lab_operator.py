"""Operator prompts: one interface; a terminal with a timeout on the bench clock, the twin answering for
itself, and every answer recorded (the smoke plan's 'meter mounted and wired' step uses it)."""

from __future__ import annotations

import io
import json
import os
import re
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixtures.gate import MOUNTED_QUANTITY, MOUNTED_TOPIC
from fixtures.operator_fixture import RecordingOperator
from rig.operator import (
    TOPICS,
    Answer,
    OperatorError,
    OperatorTimeout,
    Question,
    TerminalOperator,
    parse_answer,
)
from rig.results import Record, judge
from rig.twin.provider import TwinOperator
from testplans.power import spec as power_spec

HERE = Path(__file__).resolve().parent
RIG = [sys.executable, "-m", "rig.cli"]


def test_terminal_operator_asks_and_reasks_until_the_answer_fits(pipe: tuple[Any, Any], manual_clock: Any) -> None:
    reader, writer = pipe
    writer.write("maybe\nyes\n")
    writer.flush()
    shown = io.StringIO()
    operator = TerminalOperator(manual_clock(), stdin=reader, stdout=shown, who="alice")
    answer = operator.ask(Question("Is meter 000000000001 mounted?", "confirm", "meter.connected", position="P1"))
    assert answer.value is True and answer.text == "yes" and answer.by == "operator alice"
    assert " operator: P1 " in shown.getvalue() and "Is meter 000000000001 mounted?\n" in shown.getvalue()
    assert "[operator] answer y (yes) or n (no) within 300 s: " in shown.getvalue()
    assert "[operator] answer y (yes) or n (no): " in shown.getvalue(), "a malformed answer is asked again"


def test_terminal_operator_times_out_on_the_bench_clock(pipe: tuple[Any, Any], manual_clock: Any) -> None:
    reader, _writer = pipe
    clock = manual_clock()
    operator = TerminalOperator(clock, stdin=reader, stdout=io.StringIO())
    with pytest.raises(OperatorTimeout, match="no answer to 'Ambient temperature\\?' within 120 s"):
        operator.ask(Question("Ambient temperature?", "number", "ambient.temperature_c", unit="°C", timeout_s=120))
    assert 120 <= clock.now() < 121


def test_terminal_operator_says_when_the_terminal_closes(pipe: tuple[Any, Any], manual_clock: Any) -> None:
    reader, writer = pipe
    writer.close()
    with pytest.raises(OperatorError, match="terminal closed"):
        TerminalOperator(manual_clock(), stdin=reader, stdout=io.StringIO()).ask(
            Question("Replace the battery of P1, then answer y", "confirm", "meter.battery_replaced"))


def test_answers_are_parsed_by_kind() -> None:
    number = Question("Display reading?", "number", "meter.display.energy_kwh", unit="kWh")
    assert parse_answer(number, " 12,34 kWh ") == pytest.approx(12.34)
    assert parse_answer(Question("ok?", "confirm", "x"), "N") is False
    with pytest.raises(ValueError, match="number in kWh"):
        parse_answer(number, "twelve")


class Truth:
    def __init__(self) -> None:
        self.meters = [{"address": "000000000001", "forward_kwh": 12.3456, "pulses": 10}]

    def state(self) -> dict[str, Any]:
        return {"meters": self.meters}


def test_twin_answers_from_its_ground_truth() -> None:
    twin = TwinOperator(Truth())
    connected = twin.ask(Question("mounted?", "confirm", "meter.connected", address="000000000001"))
    assert (connected.value, connected.text, connected.by) == (True, "yes", "twin")
    assert twin.ask(Question("mounted?", "confirm", "meter.connected", address="000000000009")).value is False
    display = twin.ask(Question("display?", "number", "meter.display.energy_kwh", address="000000000001"))
    assert display.value == 12.35
    with pytest.raises(OperatorError, match=r"topics it answers: ambient\.humidity_pct"):
        twin.ask(Question("Seal intact?", "confirm", "meter.seal"))


class Scripted:
    def __init__(self, answer: Answer | Exception) -> None:
        self.answer = answer

    def ask(self, question: Question) -> Answer:
        if isinstance(self.answer, Exception):
            raise self.answer
        return Answer(question, self.answer.value, self.answer.text, self.answer.by, 3.0)


def _recorder() -> tuple[list[Record], Callable[..., Record]]:
    taken: list[Record] = []

    def record(quantity: str, value: float | None, unit: str, *, low: float | None = None,
               high: float | None = None, position: Any = None, **detail: Any) -> Record:
        rec = Record("t", None, quantity, value, unit, low, high, judge(value, low, high), 0.0, detail)
        taken.append(rec)
        return rec

    return taken, record


def test_every_answer_becomes_a_record_with_its_verdict() -> None:
    question = Question("q", "confirm", "meter.connected")
    taken, record = _recorder()
    no = RecordingOperator(Scripted(Answer(question, False, "n", "operator bob", 0.0)), record)
    assert no.confirm("Is the meter wired?", topic="meter.connected", quantity="wired") is False
    (rec,) = taken
    assert (rec.quantity, rec.value, rec.verdict) == ("wired", 0.0, "fail"), "a 'no' fails the step"
    assert rec.detail is not None and rec.detail["answered_by"] == "operator bob" and rec.detail["answer"] == "n"
    taken, record = _recorder()
    stops: list[str] = []
    silent = RecordingOperator(Scripted(OperatorTimeout("no answer to 'x' within 300 s")), record, stops.append)
    with pytest.raises(OperatorTimeout):
        silent.number("Display reading?", "kWh", topic="meter.display.energy_kwh", low=0.0)
    (rec,) = taken
    assert rec.value is None and rec.verdict == "info", "nobody answering is not a meter failure"
    assert rec.detail is not None and "within 300 s" in rec.detail["problem"]
    assert stops and "'Display reading?' was not answered" in stops[0], "the run is stopped instead"


@pytest.mark.parametrize(("topic", "text", "value"), [
    ("ambient.humidity_pct", "45", 45.0), ("ambient.humidity_pct", "150", None), ("ambient.humidity_pct", "-1", None),
    ("ambient.temperature_c", "23,1 °C", 23.1), ("ambient.temperature_c", "230", None),
])
def test_ambient_answers_outside_their_range_are_refused(topic: str, text: str, value: float | None) -> None:
    question = Question("?", "number", topic, unit=TOPICS[topic].unit)
    if value is not None:
        assert parse_answer(question, text) == pytest.approx(value)
        return
    with pytest.raises(ValueError, match=r"is not plausible: answer a number from -?\d+ to \d+"):
        parse_answer(question, text)


def test_every_topic_a_plan_asks_is_known() -> None:
    """An answers file is checked against TOPICS: a topic a plan asks but TOPICS lacks would be refused."""
    asked = set()
    for path in (HERE.parent / "testplans").rglob("*.py"):
        asked |= set(re.findall(r'topic="([a-z_.]+)"', path.read_text()))
    asked |= {f"meter.battery.fit_cell.{cell}" for cell in power_spec.TEST_CELLS}
    asked |= {"ambient.temperature_c", "ambient.humidity_pct", MOUNTED_TOPIC}
    assert len(asked) > 5 and asked <= set(TOPICS), sorted(asked - set(TOPICS))


# ---------------------------------------------------------------- rig run on a wall-clock bench, end to end


@pytest.fixture
def wall_bench(tmp_path: Path) -> Iterator[Path]:
    """A bench with a wall clock (no twin in the process: the terminal is asked, as on a real bench): the
    twin's instruments and meter served by `rig twin serve` in another process."""
    served = tmp_path / "served.yaml"
    proc = subprocess.Popen([*RIG, "twin", "serve", "--out", str(served)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and "twin serving" in proc.stdout.readline()
        bench = yaml.safe_load(served.read_text())
        bench["clock"] = "wall"
        bench["positions"] = [{k: v for k, v in p.items() if k in ("address", "serial", "line", "pulse_channel")}
                              for p in bench["positions"]]
        path = tmp_path / "wall.yaml"
        path.write_text(yaml.safe_dump(bench))
        yield path
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _converse(args: list[str], answers: list[str], timeout_s: float = 120.0) -> tuple[int, str]:
    """Run `rig` on a pseudo-terminal (stdin, stdout and stderr, as in a shell) and type one answer after
    each prompt; the exit code and everything the terminal showed."""
    master, slave = os.openpty()
    proc = subprocess.Popen([*RIG, *args], stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    shown = b""
    pending = list(answers)
    try:
        for _ in range(int(timeout_s / 0.05)):
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed its end
                    break
                shown += chunk
                if pending and shown.rstrip().endswith(b":") and b"[operator]" in shown.rsplit(b"\n", 1)[-1]:
                    os.write(master, pending.pop(0).encode() + b"\n")
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=30), shown.decode(errors="replace").replace("\r\n", "\n")  # the tty adds CR
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def _results(reports: Path) -> dict[str, Any]:
    return dict(json.loads((reports / "latest" / "results.json").read_text()))


def test_prompts_work_on_a_terminal_without_s(wall_bench: Path, tmp_path: Path) -> None:
    """pytest captures output and input; the prompt lifts both, as pytest's debugger does, and an answer
    outside its range is asked again."""
    reports = tmp_path / "reports"
    code, shown = _converse(["run", "testplans/smoke", "--bench", str(wall_bench), "--reports", str(reports),
                             "--", "-k", "connected"], ["23.5", "150", "45", "y"])
    assert "reading from stdin while output is captured" not in shown
    assert code == 0, shown
    assert "Relative humidity at the bench?\n[operator] answer a number in % (0 to 100) within 120 s: " in shown
    assert "150 is not plausible: answer a number from 0 to 100 %" in shown
    assert " operator: P1 (meter 000000000001) " in shown
    results = _results(reports)
    assert [t["test"].rsplit("::", 1)[1] for t in results["tests"]] == ["test_meter_connected[P1]"], \
        "the pytest arguments after -- select the smoke plan's first step"
    (mounted,) = [r for r in results["records"] if r["quantity"] == MOUNTED_QUANTITY]
    assert mounted["verdict"] == "pass" and mounted["detail"]["answered_by"].startswith("operator ")


def _no_source_energised(reports: Path) -> None:
    traffic = (reports / "latest" / "traffic.log").read_text()
    assert "OUTP OFF" in traffic, "the source was driven safe"
    energising = re.findall(r"> (?:OUTP ON|OUTP 1|SOUR:(?:VOLT|CURR) 0*[1-9][\d.]*)", traffic)
    assert not energising, energising


@pytest.mark.parametrize("how", ["answers file says no", "nobody at the terminal"])
def test_an_unconfirmed_position_stops_the_run_before_energising(wall_bench: Path, tmp_path: Path, how: str) -> None:
    reports = tmp_path / "reports"
    args = ["run", "testplans/smoke", "--bench", str(wall_bench), "--reports", str(reports), "--ambient", "23,45"]
    if how == "answers file says no":
        answers = tmp_path / "answers.yaml"
        answers.write_text("meter.connected: no\n")
        args += ["--operator-answers", str(answers)]
    proc = subprocess.run([*RIG, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 4, proc.stderr
    assert "stopped: the operator step: P1" in proc.stderr and "nothing was energised" in proc.stderr
    results = _results(reports)
    assert results["verdict"] == "interrupted" and results["stopped_by"] == "operator"
    assert not [r for r in results["records"] if r["verdict"] == "fail"], "not a meter failure"
    assert all(t["outcome"] == "interrupted" for t in results["tests"])
    _no_source_energised(reports)


@pytest.mark.parametrize(("text", "named"), [
    ("meter.conected: yes\n", "unknown topic 'meter.conected'; the topics the rig asks: ambient.humidity_pct"),
    ("ambient.humidity_pct: 150\n", "topic 'ambient.humidity_pct': 150 is not plausible"),
])
def test_an_answers_file_that_does_not_fit_is_refused_at_start(tmp_path: Path, text: str, named: str) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text(text)
    proc = subprocess.run([*RIG, "run", "testplans/smoke", "--reports", str(tmp_path / "r"), "--operator-answers",
                           str(answers)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert named in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r" / "latest" / "traffic.log").exists(), "nothing was opened"
