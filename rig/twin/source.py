"""The twin's phantom-load power source: the SCPI command set of the `scpi-phantom` dialect, or the
personality of a Fluke 6100B power standard when the bench file names that driver, acting on the World's
set-points. Range violations go to the error queue as -222, as on a real source.

Its LIST subsystem runs a waveform program (dips, interruptions) on the virtual clock: `INIT:TRAN` turns
the lists into segments of bench time that the World steps through edge by edge.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.source import Harmonic
from rig.config import SourceTwin
from rig.twin.scpi import ScpiDevice
from rig.twin.scpi_syntax import (
    DATA_OUT_OF_RANGE,
    MISSING_PARAMETER,
    PARAMETER_NOT_ALLOWED,
    SETTINGS_CONFLICT,
    Request,
    ScpiFault,
    parse_number,
)
from rig.twin.world import Segment, Terminals, TransientRun, World

MAX_LIST_POINTS = 100
MAX_LIST_COUNT = 1000
# A start phase reached within this fraction of a cycle counts as reached (float rounding of the edges).
PHASE_TOLERANCE_CYCLES = 1e-9
FLUKE_PHASE = 1  # the phase the twin's Fluke 6100B has fitted (a master unit without auxiliaries)
HARDWARE_MISSING = (-241, "Hardware missing")
# The harmonic generator: the highest order each personality takes, and the most content per order (% of the
# fundamental).
MAX_HARMONIC_ORDER = {"phantom": 50, "fluke": 100}
MAX_HARMONIC_PCT = 100.0
_HARMONIC_SUFFIX = re.compile(r"HARM(?:ONICS?)?(\d+)$", re.IGNORECASE)


@dataclass
class SourceLists:
    """The LIST subsystem's settings: what `INIT:TRAN` runs."""

    voltages_v: list[float] = field(default_factory=list)
    frequencies_hz: list[float] = field(default_factory=list)
    dwells: list[float] = field(default_factory=list)
    base_cycles: bool = False  # dwell in cycles of the point's frequency, else seconds
    start_phase_deg: float | None = None  # None: start wherever the waveform is
    count: int = 1


class SourceModel(ScpiDevice):
    """Voltage and current outputs with a phase angle between them, output relay, measurements, lists."""

    def __init__(self, world: World, config: SourceTwin, personality: str = "scpi-phantom-source") -> None:
        super().__init__(world, _identity(config.idn, personality), config.latency_s)
        self.config = config
        world.source_noise_pct = config.amplitude_noise_pct
        self.lists = SourceLists()
        self.speak(PERSONALITIES, personality, "source")
        self.command("OUTPut[:STATe]", self._output)
        world.set_point.frequency_hz = 50.0

    def _phantom_commands(self) -> None:
        """The twin's own phantom-load dialect (drivers.source.PHANTOM), with its LIST subsystem."""
        config = self.config
        self._setting("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", "voltage_v", 0.0, config.max_voltage_v, "V")
        self._setting("[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]", "current_a", 0.0, config.max_current_a, "A")
        self._setting("[SOURce:]PHASe[:ANGLe]", "phase_deg", -180.0, 180.0, "DEG")
        self._setting("[SOURce:]FREQuency[:CW]", "frequency_hz", 45.0, 65.0, "HZ")
        self.command("MEASure[:SCALar]:VOLTage[:AC]", lambda r: f"{self.world.terminals().voltage_rms_v:.4f}")
        self.command("MEASure[:SCALar]:CURRent[:AC]", lambda r: f"{self.world.terminals().current_rms_a:.5f}")
        self.command("MEASure[:SCALar]:POWer[:AC][:REAL]", lambda r: f"{self.world.terminals().active_power_w:.4f}")
        self.command("MEASure[:SCALar]:PFACtor", lambda r: f"{self.world.terminals().power_factor:.5f}")
        self.command("MEASure[:SCALar]:FREQuency", lambda r: f"{self.world.terminals().frequency_hz:.4f}")
        self.command("[SOURce:]HARMonic:VOLTage", lambda r: self._phantom_harmonic(r, "voltage"))
        self.command("[SOURce:]HARMonic:CURRent", lambda r: self._phantom_harmonic(r, "current"))
        self.command("[SOURce:]HARMonic:CLEar", lambda r: self._clear_harmonics())
        self._list("[SOURce:]LIST:VOLTage[:LEVel]", "voltages_v", 0.0, config.max_voltage_v, "V")
        self._list("[SOURce:]LIST:FREQuency[:LEVel]", "frequencies_hz", 45.0, 65.0, "HZ")
        self._list("[SOURce:]LIST:DWELl", "dwells", 1e-6, 1e6, None)  # seconds or cycles: no one unit
        self.command("[SOURce:]LIST:BASE", self._base)
        self.command("[SOURce:]LIST:PHASe:STATe", self._phase_state)
        self.command("[SOURce:]LIST:PHASe", self._phase)
        self.command("[SOURce:]LIST:COUNt", self._count)
        self.command("[SOURce:]LIST:RUNNing", self._running)
        self.command("INITiate:TRANsient", self._initiate)
        self.command("ABORt[:TRANsient]", self._abort)

    def _fluke_commands(self) -> None:
        """A Fluke 6100B/6105A power standard with one phase fitted, written from its users manual
        (chapter 5, long forms; replies in its scientific format, 14.4 A as 1.44E1)."""
        config = self.config
        self._fluke_setting("SOURce:PHASe#:VOLTage:MHARmonics:AMPLitude", "voltage_v", 0.0, config.max_voltage_v, "V")
        self._fluke_setting("SOURce:PHASe#:CURRent:MHARmonics:AMPLitude", "current_a", 0.0, config.max_current_a, "A")
        self._fluke_setting("SOURce:PHASe#:CURRent:MHARmonics:HARMonic#:PANGle", "phase_deg", -180.0, 180.0, "DEG")
        self._fluke_reading("SOURce:PHASe#:CURRent:AMPLitude", lambda t: t.current_a)
        self._fluke_reading("SOURce:PHASe#:POWer:WATT", lambda t: t.active_power_w)
        self._fluke_reading("SOURce:PHASe#:POWer:PFACtor", lambda t: t.power_factor)
        self.command("SOURce:PHASe#:VOLTage:MHARmonics:HARMonic#", lambda r: self._fluke_harmonic(r, "voltage"))
        self.command("SOURce:PHASe#:CURRent:MHARmonics:HARMonic#", lambda r: self._fluke_harmonic(r, "current"))
        self.command("SOURce:PHASe#:VOLTage:MHARmonics:CLEar", lambda r: self._fluke_clear(r, "voltage"))
        self.command("SOURce:PHASe#:CURRent:MHARmonics:CLEar", lambda r: self._fluke_clear(r, "current"))
        self.command("SOURce:PHASe#:VOLTage:MHARmonics:STATe", self._fluke_harmonic_state)
        self.command("SOURce:PHASe#:CURRent:MHARmonics:STATe", self._fluke_harmonic_state)
        self.command("SOURce:PHASe#:FITTed", self._fitted)
        self.command("SOURce:PHASe#:MODel", self._model)
        self.command("SOURce:FREQuency", self._fluke_frequency)

    # ---- the harmonic generator: content per order on top of the fundamental (the World's set-point)

    def _set_component(self, order: float, channel: str, pct: float, phase_deg: float) -> None:
        components = {h.order: h for h in self.world.set_point.harmonics}
        old = components.get(order, Harmonic(order))
        if channel == "voltage":
            new = Harmonic(order, pct, phase_deg, old.current_pct, old.current_phase_deg)
        else:
            new = Harmonic(order, old.voltage_pct, old.voltage_phase_deg, pct, phase_deg)
        components[order] = new
        self.world.set_point.harmonics = tuple(sorted(
            (h for h in components.values() if h.voltage_pct or h.current_pct), key=lambda h: h.order))

    def _clear_harmonics(self, channel: str | None = None) -> None:
        if channel is None:
            self.world.set_point.harmonics = ()
            return
        for h in self.world.set_point.harmonics:
            self._set_component(h.order, channel, 0.0, 0.0)

    def _phantom_harmonic(self, request: Request, channel: str) -> str | None:
        """`SOUR:HARM:VOLT <order>,<% of the fundamental>,<phase deg>`; the query lists order,%,deg per component."""
        if request.query:
            request.no_args()
            return ",".join(f"{h.order:g},{pct:.4f},{phase:.3f}" for h in self.world.set_point.harmonics
                            for pct, phase in [_channel(h, channel)] if pct)
        if len(request.args) != 3:
            raise ScpiFault(*(MISSING_PARAMETER if len(request.args) < 3 else PARAMETER_NOT_ALLOWED))
        order, pct, phase = (parse_number(arg, None) for arg in request.args)
        self._check_component(order, pct, phase, MAX_HARMONIC_ORDER["phantom"], fractional=True)
        self._set_component(order, channel, pct, phase)
        return None

    def _fluke_harmonic(self, request: Request, channel: str) -> str | None:
        """`SOUR:PHAS1:VOLT:MHAR:HARM<y> <amplitude V or A>,<phase deg>` (users manual 5-36, 5-45); HARM1 sets
        the fundamental itself."""
        if request.suffix != FLUKE_PHASE:
            raise ScpiFault(*HARDWARE_MISSING)
        match = _HARMONIC_SUFFIX.search(request.header.rstrip("?"))
        order = int(match.group(1)) if match else 1
        sp = self.world.set_point
        fundamental = sp.voltage_v if channel == "voltage" else sp.current_a
        if request.query:
            request.no_args()
            pct, phase = _channel(next((h for h in sp.harmonics if h.order == order), Harmonic(order)), channel)
            if order == 1:
                return f"{scientific(fundamental)},{scientific(sp.phase_deg if channel == 'current' else 0.0)}"
            return f"{scientific(fundamental * pct / 100.0)},{scientific(phase)}"
        if len(request.args) != 2:
            raise ScpiFault(*(MISSING_PARAMETER if len(request.args) < 2 else PARAMETER_NOT_ALLOWED))
        amplitude, phase = (parse_number(arg, None) for arg in request.args)
        high = self.config.max_voltage_v if channel == "voltage" else self.config.max_current_a
        if not 0 <= amplitude <= high or not -360 <= phase <= 360:
            raise ScpiFault(*DATA_OUT_OF_RANGE)
        if order == 1:
            if channel == "voltage":
                sp.voltage_v = amplitude
            else:
                sp.current_a, sp.phase_deg = amplitude, phase
            return None
        if fundamental <= 0:
            raise ScpiFault(*SETTINGS_CONFLICT)  # no fundamental to add harmonics to
        pct = amplitude / fundamental * 100.0
        self._check_component(order, pct, phase, MAX_HARMONIC_ORDER["fluke"], fractional=False)
        self._set_component(order, channel, pct, phase)
        return None

    def _fluke_clear(self, request: Request, channel: str) -> None:
        if request.suffix != FLUKE_PHASE:
            raise ScpiFault(*HARDWARE_MISSING)
        request.no_args()
        self._clear_harmonics(channel)

    def _fluke_harmonic_state(self, request: Request) -> str | None:
        if request.suffix != FLUKE_PHASE:
            raise ScpiFault(*HARDWARE_MISSING)
        if request.query:
            return "1" if self.world.set_point.harmonics else "0"
        request.boolean()  # the twin applies content as it is programmed
        return None

    @staticmethod
    def _check_component(order: float, pct: float, phase: float, max_order: int, *, fractional: bool) -> None:
        if (not 0 <= order <= max_order or order == 1 or (order != int(order) and not fractional)
                or not 0 <= pct <= MAX_HARMONIC_PCT or not -360 <= phase <= 360 or (order == 0 and phase != 0)):
            raise ScpiFault(*DATA_OUT_OF_RANGE)

    def _model(self, request: Request) -> str:
        if request.suffix != FLUKE_PHASE:
            raise ScpiFault(*HARDWARE_MISSING)  # no auxiliary units
        self._query_only(request)
        return '"6105A"'

    def _fitted(self, request: Request) -> str:
        request.no_args()
        if request.suffix is None or not 1 <= request.suffix <= 3:
            raise ScpiFault(-114, "Header suffix out of range")
        return "1" if request.suffix == FLUKE_PHASE else "0"

    def _fluke_setting(self, pattern: str, attribute: str, low: float, high: float, unit: str) -> None:
        def handler(request: Request) -> str | None:
            if request.suffix != FLUKE_PHASE:
                raise ScpiFault(*HARDWARE_MISSING)
            if request.query:
                request.no_args()
                return scientific(getattr(self.world.set_point, attribute))
            setattr(self.world.set_point, attribute, request.number(low, high, unit))
            return None

        self.command(pattern, handler)

    def _fluke_reading(self, pattern: str, quantity: Callable[[Terminals], float]) -> None:
        def handler(request: Request) -> str:
            if request.suffix != FLUKE_PHASE:
                raise ScpiFault(*HARDWARE_MISSING)
            self._query_only(request)
            return scientific(quantity(self.world.terminals()))

        self.command(pattern, handler)

    def _fluke_frequency(self, request: Request) -> str | None:
        if request.query:
            request.no_args()
            return scientific(self.world.set_point.frequency_hz)
        self.world.set_point.frequency_hz = request.number(16.0, 850.0, "HZ")
        return None

    def _setting(self, pattern: str, attribute: str, low: float, high: float, unit: str) -> None:
        def handler(request: Request) -> str | None:
            if request.query:
                request.no_args()
                return f"{getattr(self.world.set_point, attribute):.5f}"
            setattr(self.world.set_point, attribute, request.number(low, high, unit))
            return None

        self.command(pattern, handler)

    def _output(self, request: Request) -> str | None:
        if request.query:
            return "1" if self.world.output_on else "0"
        self.world.output_on = request.boolean()
        if not self.world.output_on:
            self.world.transient = None  # the output relay opened: the program is over
        return None

    def reset(self) -> None:
        """Power-on state: output off, zero amplitude, 50 Hz, no lists."""
        self.world.output_on = False
        self.world.transient = None
        self.lists = SourceLists()
        sp = self.world.set_point
        sp.voltage_v = sp.current_a = sp.phase_deg = 0.0
        sp.frequency_hz = 50.0
        sp.harmonics = ()

    # ---- the LIST subsystem

    def _list(self, pattern: str, attribute: str, low: float, high: float, unit: str | None) -> None:
        def handler(request: Request) -> str | None:
            if request.query:
                request.no_args()
                return ",".join(f"{v:.6f}" for v in getattr(self.lists, attribute))
            if not request.args:
                raise ScpiFault(*MISSING_PARAMETER)
            if len(request.args) > MAX_LIST_POINTS:
                raise ScpiFault(-223, "Too much data")
            values = []
            for arg in request.args:
                value = parse_number(arg, unit)
                if not math.isfinite(value) or not low <= value <= high:
                    raise ScpiFault(*DATA_OUT_OF_RANGE)
                values.append(value)
            setattr(self.lists, attribute, values)
            return None

        self.command(pattern, handler)

    def _base(self, request: Request) -> str | None:
        if request.query:
            return "CYCL" if self.lists.base_cycles else "TIME"
        word = request.args[0].upper() if len(request.args) == 1 else ""
        if word not in ("TIME", "CYCL", "CYCLE"):
            raise ScpiFault(-224, "Illegal parameter value")
        self.lists.base_cycles = word != "TIME"
        return None

    def _phase(self, request: Request) -> str | None:
        if request.query:
            phase = self.lists.start_phase_deg
            return "OFF" if phase is None else f"{phase:.1f}"
        value = request.number(0.0, 360.0, "DEG")
        self.lists.start_phase_deg = value % 360.0
        return None

    def _phase_state(self, request: Request) -> str | None:
        if request.query:
            return "1" if self.lists.start_phase_deg is not None else "0"
        if request.boolean():
            self.lists.start_phase_deg = self.lists.start_phase_deg or 0.0
        else:
            self.lists.start_phase_deg = None
        return None

    def _count(self, request: Request) -> str | None:
        if request.query:
            return str(self.lists.count)
        value = request.number(1, MAX_LIST_COUNT)
        if value != int(value):
            raise ScpiFault(*DATA_OUT_OF_RANGE)
        self.lists.count = int(value)
        return None

    def _running(self, request: Request) -> str:
        request.no_args()
        run = self.world.transient
        return "1" if run is not None and self.world.time_s < run.end_s else "0"

    def _abort(self, request: Request) -> None:
        self.world.transient = None

    def _initiate(self, request: Request) -> None:
        """Start the lists now (after the start phase, when one is set)."""
        lists = self.lists
        points = len(lists.voltages_v)
        if not self.world.output_on or points == 0 or len(lists.dwells) not in (1, points) or len(
                lists.frequencies_hz) not in (0, 1, points):
            raise ScpiFault(*SETTINGS_CONFLICT)  # output off, no list, or lists of different lengths
        self.world.transient = TransientRun(self.segments(self.world.time_s))

    def segments(self, now_s: float) -> list[Segment]:
        """The lists as segments of bench time from `now_s` (a single dwell or frequency applies to all)."""
        lists = self.lists
        nominal_hz = self.world.set_point.frequency_hz
        t = now_s
        if lists.start_phase_deg is not None:
            t = next_phase(now_s, nominal_hz, lists.start_phase_deg)
        out: list[Segment] = []
        for _ in range(lists.count):
            for i, voltage in enumerate(lists.voltages_v):
                frequency = _pick(lists.frequencies_hz, i, nominal_hz)
                dwell = _pick(lists.dwells, i, 0.0)
                duration = dwell / frequency if lists.base_cycles else dwell
                out.append(Segment(t, t + duration, voltage, frequency))
                t = t + duration
        return out


# What the twin's source speaks, by the bench file's source driver name (drivers.registry).
PERSONALITIES: dict[str, Callable[[SourceModel], None]] = {
    "scpi-phantom-source": SourceModel._phantom_commands,
    "fluke-6100b": SourceModel._fluke_commands,
}


# The model field of *IDN? for a personality other than the twin's own phantom-load source.
PERSONALITY_MODELS = {"fluke-6100b": "6105A (Fluke 6100B/6105A dialect)"}


def _identity(idn: str, personality: str) -> str:
    """The twin source's *IDN?: the configured one, with the personality's model in the model field."""
    model = PERSONALITY_MODELS.get(personality)
    if model is None:
        return idn
    fields = idn.split(",")
    return ",".join([fields[0], model, *fields[2:]]) if len(fields) == 4 else idn


def scientific(value: float) -> str:
    """A number as the Fluke 6100B replies: mantissa and exponent, no padding (14.4 -> 1.44E1, 0 -> 0.0E0)."""
    mantissa, exponent = f"{value:.6E}".split("E")
    mantissa = mantissa.rstrip("0")
    if mantissa.endswith("."):
        mantissa += "0"
    return f"{mantissa}E{int(exponent)}"


def _channel(h: Harmonic, channel: str) -> tuple[float, float]:
    """A component's amplitude (%) and phase angle in one channel."""
    return (h.voltage_pct, h.voltage_phase_deg) if channel == "voltage" else (h.current_pct, h.current_phase_deg)


def _pick(values: list[float], index: int, default: float) -> float:
    if not values:
        return default
    return values[index] if len(values) > 1 else values[0]


def next_phase(now_s: float, frequency_hz: float, phase_deg: float) -> float:
    """The first bench time at or after `now_s` where the voltage waveform (phase 0 at bench time 0, at
    `frequency_hz`) is at `phase_deg`."""
    cycles = now_s * frequency_hz
    target = math.floor(cycles) + phase_deg / 360.0
    if target < cycles - PHASE_TOLERANCE_CYCLES:
        target += 1.0
    return max(now_s, target / frequency_hz)
