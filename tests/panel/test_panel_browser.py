"""The live operator panel in a real browser (Debian's chromium driven by selenium through chromium-driver):
`rig run --panel` on a bench whose meters are "real" (so a person is asked: the twin's instruments, meters on
loopback serial ports), one position with a gain error that fails its pulse count. The terminal answers the
first question, the browser's button the second; the failing position's lamp turns red on the page.

Under CI=true a missing chromium or chromium-driver is a failure (.ci/run installs both), elsewhere a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rig.config import BENCHES_DIR

ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = ROOT / "reports" / "test-artefacts" / "panel"
RIG = [sys.executable, "-m", "rig.cli"]
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--window-size=1280,1000",
                  "--disable-dev-shm-usage")  # a container's /dev/shm is small
GAIN_KNOB = "twin.positions.1.metering.gain_error_pct=30"  # P2 counts 13 pulses where 9..11 pass


def _system_browser() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    missing = "chromium" if not chromium else "chromium-driver"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{missing} is not installed: .ci/run installs Debian's chromium and chromium-driver")
    pytest.skip(f"{missing} is not installed (apt-get install chromium chromium-driver)")


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless chromium (the system's own build) under selenium."""
    chromium, driver_path = _system_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def person_bench(path: Path) -> Path:
    """Two positions of the twin rack with the twin's instruments, their meters on loopback serial ports (so
    the rig asks a person, as on a real bench), on the wall clock; a high meter constant keeps the pulse
    count a second long."""
    bench = yaml.safe_load((BENCHES_DIR / "twin-rack.yaml").read_text())
    bench.update(name="panel-bench", clock="wall")
    bench["meter"]["constant_imp_per_kwh"] = 36000
    bench["positions"] = [{"address": p["address"], "pulse_channel": p["pulse_channel"], "serial": "loop://"}
                          for p in bench["positions"][:2]]
    path.write_text(yaml.safe_dump(bench))
    return path


class RigRun:
    """`rig run --panel` in a subprocess whose standard input is a pipe: the operator's terminal."""

    def __init__(self, args: list[str], out: Path) -> None:
        read_fd, self._typing = os.pipe()
        self._out = out.open("w")
        self.proc = subprocess.Popen([*RIG, *args], stdin=read_fd, stdout=self._out, stderr=subprocess.PIPE,
                                     text=True)
        os.close(read_fd)
        self.stderr: list[str] = []
        self._url_seen = threading.Event()
        self.url = ""
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            found = re.search(r"^panel: (http://127\.0\.0\.1:\d+/)", line)
            if found:
                self.url = found.group(1)
                self._url_seen.set()
        self._url_seen.set()

    def panel_url(self) -> str:
        assert self._url_seen.wait(60), "rig run printed no panel address"
        assert self.url, "".join(self.stderr)
        return self.url

    def type(self, line: str) -> None:
        os.write(self._typing, line.encode() + b"\n")

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=120)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            os.close(self._typing)
            self._out.close()


def _wait(browser: Any, timeout_s: float, what: str, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout_s, poll_frequency=0.1).until(condition, message=what)


def _shown(css: str) -> Any:
    def find(driver: Any) -> Any:
        from selenium.webdriver.common.by import By

        found = driver.find_elements(By.CSS_SELECTOR, css)
        return found[0] if found and found[0].is_displayed() else False

    return find


@pytest.mark.slow
def test_operator_answers_on_the_panel_and_sees_a_failing_position_turn_red(browser: Any, tmp_path: Path) -> None:
    """`rig run --panel`: the terminal answers P1's question, the browser's button P2's; P2's gain error turns
    its lamp red. `rig panel RUN`, started while the run waits for its first answer, follows the run's journal
    to the same end."""
    from selenium.webdriver.common.by import By

    reports = tmp_path / "reports"
    run = RigRun(["run", "testplans/smoke", "--bench", str(person_bench(tmp_path / "bench.yaml")), "--reports",
                  str(reports), "--ambient", "23,45", "--panel", "--set", GAIN_KNOB, "--", "-k",
                  "connected or pulses"], tmp_path / "terminal.txt")
    follower: RigRun | None = None
    try:
        browser.get(run.panel_url())
        assert browser.title == "Meter HIL rig: operator panel"
        # Nothing measured yet: P1's first step asks whether it is mounted and wired; P2 waits.
        first = _wait(browser, 60, "the question for P1 on the panel", _shown('.prompt[data-position="P1"]'))
        assert "mounted at P1" in first.text and "meter 000000000001" in first.text
        lamps = {e.get_attribute("data-position"): e.find_element(By.CSS_SELECTOR, ".lamp").get_attribute("data-lamp")
                 for e in browser.find_elements(By.CSS_SELECTOR, ".position")}
        assert lamps == {"P1": "running", "P2": "idle"}
        (run_dir,) = [p for p in reports.iterdir() if p.is_dir() and not p.is_symlink()]
        follower = _follower_of_a_run_in_progress(run_dir, run.panel_url(), tmp_path)

        run.type("y")  # the terminal answers first: the panel withdraws the question
        second = _wait(browser, 30, "the question for P2 on the panel", _shown('.prompt[data-position="P2"]'))
        assert not browser.find_elements(By.CSS_SELECTOR, '.prompt[data-position="P1"]')
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        (ARTEFACTS / "panel-prompt.png").write_bytes(browser.get_screenshot_as_png())
        second.find_element(By.CSS_SELECTOR, "button.yes").click()

        _wait(browser, 60, "P2's lamp red", _shown('.position[data-position="P2"] .lamp[data-lamp="fail"]'))
        assert browser.find_element(By.CSS_SELECTOR, '.position[data-position="P1"] .lamp').get_attribute(
            "data-lamp") == "pass"
        failing = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "#records tr.verdict-fail")]
        assert any(row.startswith("P2 ") and "pulses in ten nominal periods" in row and "13" in row
                   for row in failing), failing
        png = browser.get_screenshot_as_png()
        (run_dir / "panel.png").write_bytes(png)
        (ARTEFACTS / "panel.png").write_bytes(png)

        verdict = _wait(browser, 60, "the run's verdict on the panel", _shown("#verdict"))
        assert verdict.text == "run ended: fail"
    except BaseException:
        run.proc.terminate()  # a stop signal: the run drives the source safe and ends
        if follower is not None:
            follower.proc.kill()
            follower.close()
        raise
    finally:
        code = run.close()
    shown = (tmp_path / "terminal.txt").read_text()
    assert code == 1, "".join(run.stderr)
    assert "[operator] answered by operator " in shown and "(panel): yes" in shown, shown
    results = json.loads((run_dir / "results.json").read_text())
    by = {r["position"]: r["detail"]["answered_by"] for r in results["records"] if r["quantity"].startswith(
        "meter mounted")}
    assert by["P1"].endswith("(terminal)") and by["P2"].endswith("(panel)"), by
    assert not (run_dir / "panel.json").exists(), "the panel's address is withdrawn when the run ends"
    _follow_in_browser(browser, follower, run_dir)


def test_the_panel_refuses_answers_that_do_not_fit_or_come_late(tmp_path: Path) -> None:
    """The same checks as the terminal: an answer outside the question's range is refused with the terminal's
    hint, the first answer wins, and a page from elsewhere cannot answer for the operator."""
    from rig.operator import Question
    from rig.panel import PanelServer, PanelState

    state = PanelState(title="t", run_id="r", positions=[("P1", "000000000001")], live=True, who="operator ann")
    server = PanelServer(state)
    url = server.start()
    try:
        asked = state.offer(Question("Relative humidity at the bench?", "number", "ambient.humidity_pct", unit="%"))

        def post(text: str, origin: str | None = None) -> tuple[int, dict[str, Any]]:
            headers = {"Content-Type": "application/json"} | ({"Origin": origin} if origin else {})
            request = urllib.request.Request(url + "answer", json.dumps({"prompt": asked, "text": text}).encode(),
                                             headers)
            try:
                with urllib.request.urlopen(request, timeout=10) as reply:
                    return reply.status, json.loads(reply.read())
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read())

        assert post("45", origin="http://evil.example") == (403, {"error": "answers come from the panel's own page"})
        assert post("150") == (400, {"error": "150 is not plausible: answer a number from 0 to 100 %"})
        assert state.taken(asked) is None
        assert post("45 %") == (200, {"ok": True})
        assert state.taken(asked) == ("45 %", "operator ann (panel)")
        status, body = post("46")
        assert status == 409 and "answered already" in body["error"]
        with urllib.request.urlopen(url + "state", timeout=10) as reply:
            assert json.loads(reply.read())["prompts"] == [], "an answered question leaves the page"
    finally:
        server.stop()



def _follower_of_a_run_in_progress(run_dir: Path, own_panel: str, tmp_path: Path) -> RigRun:
    """`rig panel RUN` in another process while the run waits for an answer: nothing measured yet, and the page
    says where the run's questions are answered."""
    follower = RigRun(["panel", str(run_dir), "--port", "0"], tmp_path / "panel.txt")
    try:
        with urllib.request.urlopen(follower.panel_url() + "state", timeout=30) as reply:
            state = json.loads(reply.read())
        assert [(p["name"], p["lamp"]) for p in state["positions"]] == [("P1", "idle"), ("P2", "idle")]
        assert state["notice"].startswith("run in progress on ") and own_panel in state["notice"], state["notice"]
        assert (state["live"], state["prompts"], state["verdict"]) == (False, [], None)
    except BaseException:
        follower.proc.kill()
        follower.close()
        raise
    return follower


def _follow_in_browser(browser: Any, follower: RigRun, run_dir: Path) -> None:
    """The follower shows how the run ended, as the run's journal has it."""
    from selenium.webdriver.common.by import By

    try:
        browser.get(follower.panel_url())
        _wait(browser, 30, "P2's lamp red", _shown('.position[data-position="P2"] .lamp[data-lamp="fail"]'))
        assert browser.find_element(By.CSS_SELECTOR, '.position[data-position="P1"] .lamp').get_attribute(
            "data-lamp") == "pass"
        assert browser.find_element(By.ID, "run").text == f"run {run_dir.name} (following the journal)"
        assert _wait(browser, 30, "the verdict", _shown("#verdict")).text == "run ended: fail"
        rows = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "#records tr.record")]
        assert len(rows) == 4 and rows[0].startswith("P2 ") and rows[0].endswith("fail"), rows
        mounted = sorted(row for row in rows if "meter mounted and wired (operator)" in row)
        assert len(mounted) == 2 and "(terminal)" in mounted[0] and "(panel)" in mounted[1], mounted
    finally:
        follower.proc.send_signal(signal.SIGINT)
        assert follower.close() in (0, 130)
