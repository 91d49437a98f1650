"""The register plans' defect catalogue (`twin.meter.registers.*`): for every knob, the value that must fail
(outside) and the one that must pass (inside), and the plan tests that catch it. Registered in pyproject.toml
under the `meter_hil_rig.mutations` entry points; tests/registers prove it."""

from __future__ import annotations

from collections.abc import Callable

from testplans.mutations import Mutation, flag
from testplans.registers import spec as registers_spec
from testplans.specs import accuracy as spec

REGISTERS = "twin.meter.registers"
IDENTITY = "testplans/registers/test_identity.py"
REVERSE = "testplans/registers/test_reverse.py"
EVENT_LOG = "testplans/registers/test_event_log.py"
TARIFFS = "testplans/registers/test_tariffs.py"
DISPLAY = "testplans/registers/test_display.py"
RELAY = "testplans/security/test_relay.py"  # the relay's reported state against the current that still flows


def _tariff_late_limit_min(meter: spec.MeterTypeLike) -> float:
    # A late switch books P·d of each period's start to the tariff before it, at Imax around the switch: the plan
    # allows TARIFF_LATE_STEPS register steps' time there, one register step (the readings' truncation) and the
    # placing of the switch (the clock's whole second), so the limit is reached this late. Minutes. It was one
    # register step at Ib and the placing, which truncation could not tell from 0.8 of it.
    step_s = registers_spec.step_at_imax_s(meter)
    return ((registers_spec.TARIFF_LATE_STEPS + 1) * step_s + registers_spec.CLOCK_READ_S) / 60.0


def _late(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    # Outside, 1.5 times the limit (the load is still at Imax most of that time); inside, 0.3 of it. Minutes.
    return lambda meter: _tariff_late_limit_min(meter) * (1.5 if violating else 0.3)


def _stale(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    # The display is read DISPLAY_SETTLE_S after the load stops, with 3/4 of a register step dosed at Imax past a
    # step seen: outside, the settle time and two steps' time at Imax; inside, half the settle time. Seconds.
    def value(meter: spec.MeterTypeLike) -> float:
        settle = registers_spec.DISPLAY_SETTLE_S
        return settle + 2.0 * registers_spec.step_at_imax_s(meter) if violating else 0.5 * settle

    return value


MUTATIONS: tuple[Mutation, ...] = (
    Mutation(f"{REGISTERS}.software_version_wrong", (f"{IDENTITY}::test_software_is_the_declared_software",),
             flag(True), flag(False), "the meter reports a software version other than the declared one"),
    Mutation(f"{REGISTERS}.software_checksum_wrong", (f"{IDENTITY}::test_software_is_the_declared_software",),
             flag(True), flag(False), "the meter runs a build whose checksum is not the declared one"),
    Mutation(f"{REGISTERS}.reverse_counted_forward", (f"{REVERSE}::test_reverse_energy_registered",),
             flag(True), flag(False), "energy flowing back is added to the forward register"),
    Mutation(f"{REGISTERS}.direction_bit_stuck", (f"{REVERSE}::test_direction_status_bit",),
             flag(True), flag(False), "status word 1 never shows reverse power"),
    Mutation(f"{REGISTERS}.event_log_stops_when_full", (f"{EVENT_LOG}::test_clock_setting_log_rolls_over",),
             flag(True), flag(False), "the clock-setting log stops recording when its records are used"),
    Mutation(f"{REGISTERS}.event_log_overwrites_newest", (f"{EVENT_LOG}::test_clock_setting_log_rolls_over",),
             flag(True), flag(False), "a full clock-setting log overwrites its newest record"),
    Mutation(f"{REGISTERS}.tariff_switch_late_min", (f"{TARIFFS}::test_tariff_registers_follow_the_schedule",),
             _late(True), _late(False), "the meter switches tariff late",
             # On the twin (class 1, 60 A): 0.72 min passes, 0.76 min fails; the boundary 0.74 min.
             boundary=_tariff_late_limit_min),
    Mutation(f"{REGISTERS}.tariff_wrong", (f"{TARIFFS}::test_tariff_registers_follow_the_schedule",),
             flag(True), flag(False), "valley periods booked to the peak register"),
    Mutation(f"{REGISTERS}.display_stale_s", (f"{DISPLAY}::test_display_shows_the_register",),
             _stale(True), _stale(False), "the display lags the register",
             # What the plan sees: the display read DISPLAY_SETTLE_S after the load stops, with DISPLAY_FRACTION of a
             # step dosed at Imax past a step it saw (polled every DISPLAY_POLL_S), shows one step less once it lags
             # more than the settle time, that fraction's dosing time and the poll (on the twin, class 1, 60 A:
             # 7.45 s passes, 7.6 s fails; the boundary 7.15 s). It was dosed at Ib, where the step's 33 s made the
             # lag resolve no finer than the poll and load switching. Seconds.
             boundary=lambda meter: registers_spec.DISPLAY_SETTLE_S + registers_spec.DISPLAY_FRACTION
             * registers_spec.step_at_imax_s(meter) + registers_spec.DISPLAY_POLL_S),
    Mutation(f"{REGISTERS}.display_rounds", (f"{DISPLAY}::test_display_shows_the_register",),
             flag(True), flag(False), "the display rounds the last digit the register truncates"),
    Mutation(f"{REGISTERS}.relay_welded", (f"{RELAY}::test_relay_follows_valid_commands",),
             flag(True), flag(False), "welded contacts: the meter reports open while current flows"),
)
