"""Helpers of the DL/T 698.45 plans: the position's 698 link over a transport, and reading values in
engineering units or the DAR a meter refused them with."""

from __future__ import annotations

from drivers.dlt698 import DarRefused, Data, Dlt698Link, layout, oad, scaled
from rig.bench import Position
from testplans.transports import UART


def link698_of(position: Position, transport: str) -> Dlt698Link | None:
    """The position's DL/T 698.45 link over `transport` (None: the bench file gives none)."""
    return position.link698 if transport == UART else position.ble698


def read_scaled(link: Dlt698Link, oi: int, wiring: str = "1P2W") -> float:
    """The first value of attribute 2 of `oi` in the standard's unit (the total of an energy or power array),
    its array shape checked against the meter's wiring."""
    return scaled(oad(oi), link.get(oad(oi)), layout(three_phase=wiring != "1P2W")).value


def read_or_refusal(link: Dlt698Link, oi: int, attribute: int = 2) -> Data | int:
    """The attribute's value, or the DAR the meter refused it with; RigError for anything else."""
    try:
        return link.get(oad(oi, attribute))
    except DarRefused as refused:
        return refused.dar
