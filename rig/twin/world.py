"""The twin's World: the source's terminal quantities, the virtual clock, seeded noise, and stepping.

Every model integrates over the same piecewise-constant steps; noise is redrawn once per second of
bench time, so a healthy twin is realistic (not ideal) and reproducible from its seed.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from drivers.clock import Deadline
from drivers.source import Harmonic, distorted_power_w, rms_factor


@dataclass
class Terminals:
    """What the source delivers at the meter terminals right now (zero when the output is off)."""

    voltage_v: float = 0.0
    current_a: float = 0.0
    phase_deg: float = 0.0  # current behind voltage; positive = lagging (inductive)
    frequency_hz: float = 50.0
    # Content added to the fundamental (voltage_v and current_a are the fundamental's RMS values).
    harmonics: tuple[Harmonic, ...] = ()

    @property
    def active_power_w(self) -> float:
        """True active power, W: the fundamental's and every harmonic's."""
        return distorted_power_w(self.voltage_v, self.current_a, self.phase_deg, self.harmonics)

    @property
    def fundamental_power_w(self) -> float:
        """Active power of the fundamental alone, W."""
        return self.voltage_v * self.current_a * math.cos(math.radians(self.phase_deg))

    @property
    def voltage_rms_v(self) -> float:
        """RMS of the whole voltage waveform, V."""
        return self.voltage_v * rms_factor([h.voltage_pct for h in self.harmonics])

    @property
    def current_rms_a(self) -> float:
        """RMS of the whole current waveform, A."""
        return self.current_a * rms_factor([h.current_pct for h in self.harmonics])

    @property
    def power_factor(self) -> float:
        """cos(phi), signed like the active power."""
        return math.cos(math.radians(self.phase_deg))


class Stepped(Protocol):
    """A model that integrates over a step of bench time."""

    def step(self, t0: float, dt: float, terminals: Terminals) -> None:
        """Integrate over [t0, t0 + dt] with the terminals constant."""
        ...


@dataclass(frozen=True)
class Segment:
    """A piece of a running waveform program: the output voltage and frequency over [start_s, end_s)."""

    start_s: float
    end_s: float
    voltage_v: float
    frequency_hz: float


class TransientRun:
    """A waveform program the source executes on the virtual clock: back-to-back segments (bench time)."""

    def __init__(self, segments: list[Segment]) -> None:
        self.segments = segments
        self._starts = [s.start_s for s in segments]
        self.edges = sorted({s.start_s for s in segments} | {s.end_s for s in segments})
        self.end_s = segments[-1].end_s if segments else 0.0

    def segment_at(self, t: float) -> Segment | None:
        """The segment in force at bench time `t` (None: before the start or after the end)."""
        i = bisect.bisect_right(self._starts, t) - 1
        if i < 0 or t >= self.segments[i].end_s:
            return None
        return self.segments[i]

    def next_edge(self, t: float) -> float | None:
        """The first program edge after `t` (None: no more)."""
        i = bisect.bisect_right(self.edges, t)
        return self.edges[i] if i < len(self.edges) else None


# Noise and the source's ripple are redrawn at this period; steps never straddle a boundary while
# something is energised, so a 5 s gate sees about five independent draws.
NOISE_PERIOD_S = 1.0

# Causality (wall time): before bench time passes, the clock waits until no server of the twin has work in
# hand (bytes a host sent and the twin has not yet answered). A server that never settles is passed after
# SETTLE_LIMIT_WALL_S, so a stuck port cannot hang a run.
SETTLE_LIMIT_WALL_S: Final = 10.0
SETTLE_POLL_WALL_S: Final = 0.005
# Pacing (`VirtualClock.pace`): how often the pacer lets wall time become bench time.
PACE_TICK_WALL_S: Final = 0.01

# Something of the twin that may have work in hand: True while it does (e.g. a port with unread input).
Pending = Callable[[], bool]


class World:
    """Bench time, the terminal quantities, and the models stepped over them."""

    def __init__(self, seed: int, epoch: dt.datetime = dt.datetime(2026, 1, 1, 8, 0, 0)) -> None:
        self.lock = threading.RLock()
        self.epoch = epoch  # calendar time at bench time 0
        self.time_s = 0.0
        self.rng = random.Random(seed)
        self.output_on = False
        self.set_point = Terminals()
        self.source_noise_pct = 0.0
        self._ripple = 0.0
        self._next_draw = 0.0
        self.transient: TransientRun | None = None  # a waveform program the source runs (steps split at its edges)
        self.ambient_c = 23.0  # air temperature at the meters, °C (the lab's; a climate chamber sets it)
        self.models: list[Stepped] = []
        self.on_second: list[Callable[[float], None]] = []  # called at each noise boundary
        # Open contacts in the series current loop (a meter's tripped relay): no load current flows.
        self.loop_breakers: list[Callable[[], bool]] = []
        self._pending: list[Pending] = []
        self._settled = threading.Condition()
        self._server_threads: set[int] = set()
        self.pace_speed: float | None = None  # bench s per wall s while the clock is paced (VirtualClock.pace)
        self._time_passed = threading.Condition()

    # ---- causality: servers tell the clock what they have in hand

    def add_pending(self, pending: Pending, *, server_thread: int | None = None) -> None:
        """Register a server's `pending()` (True while it has work in hand, e.g. a request it has not yet
        answered): bench time does not pass through the clock until it is False. `server_thread`: the
        thread serving it, which must never wait for itself."""
        with self._settled:
            self._pending.append(pending)
            if server_thread is not None:
                self._server_threads.add(server_thread)

    def remove_pending(self, pending: Pending, *, server_thread: int | None = None) -> None:
        """Unregister what `add_pending` registered."""
        with self._settled:
            if pending in self._pending:
                self._pending.remove(pending)
            self._server_threads.discard(server_thread or -1)

    def work_done(self) -> None:
        """A server finished something (answered a request): wake the clock if it waits."""
        with self._settled:
            self._settled.notify_all()

    def _busy(self) -> bool:
        for pending in list(self._pending):
            try:
                if pending():
                    return True
            except Exception:  # noqa: BLE001 - a server going away mid-question has nothing in hand
                continue
        return False

    def settle(self, limit_wall_s: float = SETTLE_LIMIT_WALL_S) -> bool:
        """Wait (wall time) until no server of the twin has work in hand; False when `limit_wall_s` passed
        first. A server's own thread, or one holding the World's lock, does not wait (it would wait for itself)."""
        if threading.get_ident() in self._server_threads or _owns(self.lock):
            return not self._busy()
        end = time.monotonic() + limit_wall_s
        with self._settled:
            while self._busy():
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                self._settled.wait(min(remaining, SETTLE_POLL_WALL_S))
        return True

    def pass_time(self, duration_s: float) -> None:
        """Let `duration_s` of bench time pass for a server of the twin (a reply delay, the wire time of bytes):
        at once, unless the clock is paced, when the server waits (wall time) until the pacer has moved bench
        time that far, so a client on the wall clock sees the delay. Call it without holding the lock."""
        if duration_s <= 0:
            return
        speed = self.pace_speed
        if speed is None or _owns(self.lock):
            self.advance(duration_s)
            return
        target = self.time_s + duration_s
        give_up = time.monotonic() + duration_s / speed + SETTLE_LIMIT_WALL_S
        with self._time_passed:
            while self.time_s < target and self.pace_speed is not None and time.monotonic() < give_up:
                self._time_passed.wait(PACE_TICK_WALL_S)
        if self.time_s < target:  # pacing stopped meanwhile
            self.advance(target - self.time_s)

    def time_passed(self) -> None:
        """The pacer moved bench time: wake the servers waiting in `pass_time`."""
        with self._time_passed:
            self._time_passed.notify_all()

    def terminals(self) -> Terminals:
        """The terminal quantities now, including the source's amplitude ripple."""
        if not self.output_on:
            return Terminals(frequency_hz=self.set_point.frequency_hz)
        scale = 1.0 + self._ripple / 100.0
        voltage, frequency = self.set_point.voltage_v, self.set_point.frequency_hz
        segment = self.transient.segment_at(self.time_s) if self.transient is not None else None
        if segment is not None:  # a waveform program sets the voltage and frequency while it runs
            voltage, frequency = segment.voltage_v, segment.frequency_hz
        return Terminals(
            voltage_v=voltage * scale,
            current_a=0.0 if any(is_open() for is_open in self.loop_breakers) else self.set_point.current_a * scale,
            phase_deg=self.set_point.phase_deg,
            frequency_hz=frequency,
            harmonics=self.set_point.harmonics,
        )

    def _energised(self) -> bool:
        """Something flows: the output is on, and not in a zero-volt, zero-current part of a program."""
        if not self.output_on:
            return False
        segment = self.transient.segment_at(self.time_s) if self.transient is not None else None
        return segment is None or segment.voltage_v > 0 or self.set_point.current_a > 0

    def advance(self, duration_s: float) -> None:
        """Let `duration_s` of bench time pass, integrating every model."""
        if duration_s < 0 or not math.isfinite(duration_s):
            raise ValueError(f"cannot advance the twin clock by {duration_s!r} s")
        with self.lock:
            end = self.time_s + duration_s
            while self.time_s < end:
                if self.time_s >= self._next_draw:
                    self._redraw()
                energised = self._energised()
                step_end = min(end, self._next_draw) if energised else end
                if self.transient is not None:
                    # A step never straddles a program edge: the models see each level for exactly its time.
                    edge = self.transient.next_edge(self.time_s)
                    step_end = min(step_end, edge) if edge is not None else step_end
                dt = step_end - self.time_s
                terminals = self.terminals()
                for model in self.models:
                    model.step(self.time_s, dt, terminals)
                self.time_s = step_end
                if self.transient is not None and self.time_s >= self.transient.end_s:
                    self.transient = None
                if not energised and self.time_s >= self._next_draw:
                    # Idle: jump the draw schedule forward instead of stepping every second.
                    self._next_draw = math.floor(self.time_s / NOISE_PERIOD_S) * NOISE_PERIOD_S

    def _redraw(self) -> None:
        self._ripple = self.rng.gauss(0.0, self.source_noise_pct)
        for hook in self.on_second:
            hook(self.time_s)
        self._next_draw = (math.floor(self.time_s / NOISE_PERIOD_S) + 1) * NOISE_PERIOD_S


def _owns(lock: threading.RLock) -> bool:
    """True when the calling thread holds `lock` (an RLock)."""
    owned = getattr(lock, "_is_owned", None)
    return bool(owned()) if owned is not None else False


class VirtualClock:
    """The twin's clock (implements drivers.clock.Clock): bench time passes only through `sleep` and
    `wait_until` (and the pacer, when paced), never by itself, and never past what the twin has in hand:
    before each step it waits, in wall time, until every server has answered what it was sent (`World.settle`).
    A request a host has written is therefore answered at the bench time it was sent, however loaded the
    machine; the server's own delays (wire time, the meter's reply delay) are bench time the twin lets pass.

    Paced (`pace(speed)`), bench time also passes by itself at `speed` bench seconds per wall second, so a
    client that never asks the clock to move (a plain pyvisa or pyserial program) sees a running bench; a
    `sleep` still jumps ahead at once.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.speed: float | None = None  # bench seconds per wall second when paced; None: only when asked
        self._pacer: threading.Thread | None = None
        self._stop_pacing = threading.Event()

    def now(self) -> float:
        """Bench seconds since the twin started."""
        return self.world.time_s

    def sleep(self, duration_s: float) -> None:
        """Let `duration_s` of bench time pass, once the twin has answered what it was sent."""
        if duration_s > 0:
            self.world.settle()
            self.world.advance(duration_s)

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
        """Let bench time pass in `poll_s` steps until `predicate()` or the timeout; the predicate is asked
        after the twin has answered what it was sent, before every step."""
        deadline = Deadline(self, timeout_s)
        while True:
            self.world.settle()
            if predicate():
                return True
            remaining = deadline.remaining_s()
            if remaining <= 0:
                return False
            self.world.advance(min(max(poll_s, 1e-4), remaining))

    # ---- pacing

    def pace(self, speed: float) -> None:
        """Let bench time also pass by itself at `speed` bench seconds per wall second (0: stop pacing)."""
        if speed < 0 or not math.isfinite(speed):
            raise ValueError(f"speed {speed!r} must be a finite number >= 0 (bench seconds per wall second)")
        self.stop_pacing()
        if speed == 0:
            return
        self.speed = self.world.pace_speed = speed
        self._stop_pacing = threading.Event()
        self._pacer = threading.Thread(target=self._run_pacer, args=(speed, self._stop_pacing), name="twin-pacer",
                                       daemon=True)
        self._pacer.start()

    def stop_pacing(self) -> None:
        """Stop the pacer (bench time passes only when asked again)."""
        self._stop_pacing.set()
        if self._pacer is not None:
            self._pacer.join(5.0)
        self._pacer, self.speed, self.world.pace_speed = None, None, None
        self.world.time_passed()

    def _run_pacer(self, speed: float, stop: threading.Event) -> None:
        # No settling here: a paced server lets its own delays pass with the pacer (World.pass_time).
        last = time.monotonic()
        while not stop.wait(PACE_TICK_WALL_S):
            now = time.monotonic()
            self.world.advance((now - last) * speed)
            self.world.time_passed()
            last = now

    def datetime_now(self) -> dt.datetime:
        """The twin's calendar time: its epoch plus bench time (the 'true' time meters are judged by)."""
        return self.world.epoch + dt.timedelta(seconds=self.world.time_s)
