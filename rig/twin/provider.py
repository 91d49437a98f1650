"""The twin as a bench provider (composition layer): it hands the bench builder resolved resources, a
clock and the hands at the bench (an operator answering from ground truth), like any other provider.

This is the only place that knows a bench file asks for the twin: the embedded twin (resources, ports or
clock saying `twin`, paced to the wall clock with `clock: wall`) or a served one (`clock: twin+tcp://...`).
Fixtures and plans see a `Bench` and its provider's capabilities, never the twin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from drivers.clock import Clock, WallClock
from drivers.errors import RigError
from rig.config import TWIN_RESOURCE, BenchConfig, PositionConfig
from rig.operator import Answer, Operator, OperatorError, Question
from rig.twin.control import RemoteTwinControl
from rig.twin.runtime import Twin
from rig.twin.serial_port import TWIN_SERIALS

if TYPE_CHECKING:
    from rig.bench import Bench

# The twin lets bench time pass at this rate when the bench runs on the wall clock (`clock: wall`).
WALL_SPEED = 1.0


# ------------------------------------------------------------------------------------------ the twin's hands


class GroundTruth(Protocol):
    """What the twin's control channel offers (TwinControl in process, RemoteTwinControl when served)."""

    def state(self) -> dict[str, Any]:
        """The source's real output and every meter's registers."""
        ...


def _meter(state: Mapping[str, Any], question: Question) -> Mapping[str, Any]:
    for meter in state.get("meters", []):
        if meter.get("address") == question.address:
            return dict(meter)
    raise OperatorError(f"the twin has no meter {question.address!r} to answer {question.text!r}")


def _display_kwh(meter: Mapping[str, Any]) -> float:
    """The forward energy the meter's display shows (its register to 0.01 kWh when it has no display model)."""
    display = meter.get("display")
    return float(display["forward_kwh"]) if display else round(float(meter["forward_kwh"]), 2)


# What the twin answers, by topic. A display shows energy to 0.01 kWh; the twin's lab sits at the
# reference conditions of IEC 62052-11 (23 °C, 45 % RH: within 23 ± 2 °C and 40-60 % RH).
TWIN_ANSWERS: dict[str, Callable[[Mapping[str, Any], Question], bool | float | str]] = {
    "meter.connected": lambda state, q: any(m.get("address") == q.address for m in state.get("meters", [])),
    "meter.display.energy_kwh": lambda state, q: _display_kwh(_meter(state, q)),
    "ambient.temperature_c": lambda state, q: 23.0,
    "ambient.humidity_pct": lambda state, q: 45.0,
}


# ---- the power plans' steps: a battery changed, a test cell fitted, a µA meter read, the display read

def _power(state: Mapping[str, Any], question: Question) -> Mapping[str, Any]:
    power = _meter(state, question).get("power")
    if not power:
        raise OperatorError(f"the twin's meter {question.address!r} has no power side to answer {question.text!r}")
    return dict(power)


BATTERY_CELLS = ("low", "between", "recovery")  # the twin lab's test cells (rig.twin.power.TEST_CELLS_V)
TWIN_ANSWERS.update({
    "meter.battery.replace": lambda state, q: True,
    **{f"meter.battery.fit_cell.{cell}": (lambda state, q: round(float(_power(state, q)["battery_v"]), 3))
       for cell in BATTERY_CELLS},
    "meter.battery.current_ua": lambda state, q: round(float(_power(state, q)["battery_current_ua"]), 1),
    "meter.display.battery_low": lambda state, q: bool(_power(state, q)["battery_low_shown"]),
})


def _fit_battery(cell: str) -> Callable[[Any, Question], object]:
    """The twin's hands changing a meter's clock battery (TwinControl / RemoteTwinControl.replace_battery)."""
    return lambda truth, question: truth.replace_battery(question.address, cell)


# What the twin's hands do at the bench before it answers, by topic: a twin-only control operation below
# the transports, like the control channel.
TWIN_ACTIONS: dict[str, Callable[[Any, Question], object]] = {
    "meter.battery.replace": _fit_battery("new"),
    **{f"meter.battery.fit_cell.{cell}": _fit_battery(cell) for cell in BATTERY_CELLS},
}


class TwinOperator:
    """The twin answering for the operator, from its ground truth (no person, no waiting)."""

    def __init__(self, truth: GroundTruth, answers: Mapping[str, Callable[..., bool | float | str]] = TWIN_ANSWERS
                 ) -> None:
        self.truth = truth
        self.answers = dict(answers)

    def ask(self, question: Question) -> Answer:
        """The twin's answer to `question`; OperatorError when it has none for the topic."""
        answer = self.answers.get(question.topic)
        if answer is None:
            known = ", ".join(sorted(self.answers))
            raise OperatorError(f"the twin cannot answer {question.text!r} (topic {question.topic!r}); "
                                f"topics it answers: {known}")
        action = TWIN_ACTIONS.get(question.topic)
        if action is not None:
            action(self.truth, question)  # the step needs hands: the twin does it first
        value = answer(self.truth.state(), question)
        if question.kind == "confirm":
            text = "yes" if value else "no"
        else:
            text = f"{value:g}" if isinstance(value, float) else str(value)
        return Answer(question, value, text, "twin", 0.0)


# ------------------------------------------------------------------------------------------ providers


def _position_ports(position: PositionConfig) -> list[str | None]:
    """Every port of a position a bench file may point at the twin."""
    ble = position.ble
    spi = position.spi
    return [position.serial, position.expansion_tap.serial if position.expansion_tap else None,
            ble.backend if ble is not None else None,
            getattr(spi, "master", None) if spi is not None else None,
            getattr(spi, "capture", None) if spi is not None else None]


def _twin_port(value: str | None) -> bool:
    return value is not None and (value == TWIN_RESOURCE or value in TWIN_SERIALS)


def needs_embedded_twin(config: BenchConfig) -> bool:
    """True when the bench file asks for the twin to run in this process: an instrument or the clock says
    `twin`, or a meter port does and the file has a `twin:` section (without one, the bench builder names
    the port that has nothing to serve it)."""
    return (config.clock == "twin" or any(i.resource == TWIN_RESOURCE for i in config.instruments)
            or (config.twin is not None
                and any(_twin_port(port) for p in config.positions for port in _position_ports(p))))


def meters_simulated(config: BenchConfig) -> bool:
    """True when the meters are the twin's: no meter port is real and their pulses go to the twin's
    reference (so the twin's hands, not a person's, reach them)."""
    ports = [port for p in config.positions for port in _position_ports(p) if port is not None]
    return config.instrument("reference").resource == TWIN_RESOURCE and all(_twin_port(port) for port in ports)


class EmbeddedTwinProvider:
    """The twin in this process: every `twin` resource and port of the bench file served on loopback, on
    the twin's virtual clock (`clock: twin`) or paced at the wall clock's speed (`clock: wall`)."""

    def __init__(self, config: BenchConfig) -> None:
        instruments_twin = all(i.resource == TWIN_RESOURCE for i in config.instruments)
        self._meters_twin = meters_simulated(config)
        self.kind = "twin" if instruments_twin and self._meters_twin else "hybrid"
        self._source_twin = config.instrument("source").resource == TWIN_RESOURCE
        self.twin: Twin | None = None
        self._paced = False

    @property
    def source_outlives_run(self) -> bool:
        """False when the twin simulates the source: it stops with this process."""
        return not self._source_twin

    def open(self, config: BenchConfig) -> tuple[BenchConfig, Clock]:
        """Start the twin; the bench with its resources resolved, and the bench clock."""
        twin = Twin(config)
        self.twin = twin
        try:
            twin.start()
            resolved = twin.resolve(config)
            if config.clock == "wall":
                twin.clock.pace(WALL_SPEED)  # a real meter or instrument shares the bench: time runs by itself
                self._paced = True
                return resolved, WallClock()
        except BaseException:
            self.close()
            raise
        return resolved, twin.clock

    def operator(self, person: Operator) -> Operator:
        """The twin's hands when the meters are the twin's; else the person at the bench."""
        if self.twin is not None and self._meters_twin:
            return TwinOperator(self.twin.control)
        return person

    def close(self) -> None:
        """Stop pacing and every server of the twin."""
        twin, self.twin = self.twin, None
        if twin is not None:
            if self._paced:
                twin.clock.stop_pacing()
                self._paced = False
            twin.stop()


class ServedTwinProvider:
    """A twin served by another process (`rig twin serve`): its control channel is the bench clock."""

    kind = "served twin"
    source_outlives_run = True  # the serving process keeps the source as it is when this one dies

    def __init__(self, config: BenchConfig) -> None:
        self.url = config.clock.removeprefix("twin+")
        self.control: RemoteTwinControl | None = None

    def open(self, config: BenchConfig) -> tuple[BenchConfig, Clock]:
        """Connect to the served twin's control channel (lazily, at the first use of the clock)."""
        self.control = RemoteTwinControl(self.url)
        return config, self.control

    def operator(self, person: Operator) -> Operator:
        """The served twin's hands."""
        return TwinOperator(self.control) if self.control is not None else person

    def close(self) -> None:
        """Close the control channel."""
        if self.control is not None:
            self.control.close()
            self.control = None


def twin_provider_for(config: BenchConfig) -> EmbeddedTwinProvider | ServedTwinProvider | None:
    """The twin provider a bench file asks for, or None when it asks for no twin."""
    if needs_embedded_twin(config):
        return EmbeddedTwinProvider(config)
    if config.clock.startswith("twin+"):
        return ServedTwinProvider(config)
    return None


def embedded_twin(bench: Bench) -> Twin:
    """The running embedded twin behind `bench` (for the rig's own tests, never for plans)."""
    provider = bench.provider
    if not isinstance(provider, EmbeddedTwinProvider) or provider.twin is None:
        raise RigError(f"bench {bench.config.name} is not served by an embedded twin")
    return provider.twin
