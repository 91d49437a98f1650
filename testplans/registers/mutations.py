"""The register plans' defect catalogue (`twin.meter.registers.*`): for every knob, the value that must fail
(outside) and the one that must pass (inside), and the plan tests that catch it. Registered in pyproject.toml
under the `meter_hil_rig.mutations` entry points; tests/registers prove it."""

from __future__ import annotations

from collections.abc import Callable

from testplans.mutations import Mutation
from testplans.specs import accuracy as spec

REGISTERS = "twin.meter.registers"
IDENTITY = "testplans/registers/test_identity.py"
REVERSE = "testplans/registers/test_reverse.py"
EVENT_LOG = "testplans/registers/test_event_log.py"
RELAY = "testplans/security/test_relay.py"  # the relay's reported state against the current that still flows


def _flag(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    # A firmware defect is there or not: on outside, off (the healthy meter) inside.
    return lambda meter: 1.0 if violating else 0.0


MUTATIONS: tuple[Mutation, ...] = (
    Mutation(f"{REGISTERS}.software_version_wrong", (f"{IDENTITY}::test_software_is_the_declared_software",),
             _flag(True), _flag(False), "the meter reports a software version other than the declared one"),
    Mutation(f"{REGISTERS}.software_checksum_wrong", (f"{IDENTITY}::test_software_is_the_declared_software",),
             _flag(True), _flag(False), "the meter runs a build whose checksum is not the declared one"),
    Mutation(f"{REGISTERS}.reverse_counted_forward", (f"{REVERSE}::test_reverse_energy_registered",),
             _flag(True), _flag(False), "energy flowing back is added to the forward register"),
    Mutation(f"{REGISTERS}.direction_bit_stuck", (f"{REVERSE}::test_direction_status_bit",),
             _flag(True), _flag(False), "status word 1 never shows reverse power"),
    Mutation(f"{REGISTERS}.event_log_stops_when_full", (f"{EVENT_LOG}::test_clock_setting_log_rolls_over",),
             _flag(True), _flag(False), "the clock-setting log stops recording when its records are used"),
    Mutation(f"{REGISTERS}.event_log_overwrites_newest", (f"{EVENT_LOG}::test_clock_setting_log_rolls_over",),
             _flag(True), _flag(False), "a full clock-setting log overwrites its newest record"),
    Mutation(f"{REGISTERS}.relay_welded", (f"{RELAY}::test_relay_follows_valid_commands",),
             _flag(True), _flag(False), "welded contacts: the meter reports open while current flows"),
)
