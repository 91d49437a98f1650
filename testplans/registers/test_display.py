"""Register against display: the forward active energy total is one of the meter's auto-cycle screens (its
screen list read over DL/T 645), and with the register's last digit just stepped and three quarters of the next
step dosed at Imax (so a display that rounds shows one step more, one that lags shows one step less), the value
the operator reads off the display is the register's, digit for digit. Per position."""

from __future__ import annotations

import pytest

from drivers.dlt645.link import MeterLink
from drivers.errors import RigError
from rig.bench import Bench, Position
from rig.procedures import LoadPoint, RackCache
from testplans.comms import spec as comms_spec
from testplans.comms.helpers import power_meters
from testplans.registers import spec

pytestmark = pytest.mark.plan

SCREEN_COUNT = comms_spec.di("auto-cycle screens")
SCREEN_DI_MASK = 0xFFFFFFFF  # a screen item: the shown item's DI in its low 4 bytes


def _screens(link: MeterLink) -> list[int]:
    """The data items of the meter's auto-cycle screens, in order."""
    count = int(link.read_number(SCREEN_COUNT))
    items = []
    for n in range(1, count + 1):
        value = link.read(comms_spec.di(f"auto-cycle screen {n}"))
        if isinstance(value, int):
            items.append(value & SCREEN_DI_MASK)
    return items


def _await_step(bench: Bench, link: MeterLink, timeout_s: float) -> bool:
    """Wait (bench time, polling every DISPLAY_POLL_S) until the forward register shows its next step; False when
    it did not."""
    start = link.read_number(comms_spec.FORWARD_ENERGY)
    return bench.clock.wait_until(lambda: link.read_number(comms_spec.FORWARD_ENERGY) > start, timeout_s=timeout_s,
                                  poll_s=spec.DISPLAY_POLL_S)


def test_display_shows_the_register(bench: Bench, rack: RackCache, link: MeterLink, position: Position, operator,
                                    record) -> None:
    """The forward energy total is on the auto-cycle; the display reads as the register, digit for digit."""
    meter = bench.meter
    try:
        screens = _screens(link)
    except RigError as exc:
        screens = []
        record("display screen list read", 0, "", low=1, high=1, position=position, problem=str(exc))
    record("forward energy total among the auto-cycle screens", int(comms_spec.FORWARD_ENERGY in screens), "",
           low=1, high=1, position=position, screens=[f"{di:08X}" for di in screens], source=spec.DISPLAY.text,
           check=spec.DISPLAY.check)
    # At Imax the register steps every few seconds: the display is read DISPLAY_SETTLE_S after the load stops,
    # with DISPLAY_FRACTION of a step dosed past a step the rig saw happen (polled finely), so a display that
    # lags more than the settle time and that dosing time shows one step less.
    step_s = spec.step_at_imax_s(meter)
    power_meters(bench, rack, LoadPoint(voltage_v=meter.un_v, current_a=meter.imax_a))
    stepped = _await_step(bench, link, 2 * step_s + 10.0)
    record("register stepped at Imax", int(stepped), "", low=1, high=1, position=position,
           source="bench check: the register counts at Imax")
    bench.clock.sleep(spec.DISPLAY_FRACTION * step_s)
    off_at = bench.clock.now()
    power_meters(bench, rack, LoadPoint(voltage_v=meter.un_v, current_a=0.0))
    bench.clock.sleep(max(0.0, off_at + spec.DISPLAY_SETTLE_S - bench.clock.now()))
    register = link.read_number(comms_spec.FORWARD_ENERGY)
    half_digit = spec.REGISTER_RESOLUTION_KWH / 10.0  # the reading is the register's digits or it is not
    operator.number(f"Read the forward active energy total (the screen of item 00 01 00 00) off the display of "
                    f"{position.name}", "kWh", topic="meter.display.energy_kwh", position=position,
                    quantity="display: forward active energy total (register read over DL/T 645 as limits)",
                    low=register - half_digit, high=register + half_digit)
