"""The twin meter's register functions over DL/T 645, from the meter's side: its identity (manufacturer,
model, meter number, asset code, software version and checksum), the active power direction bit, and the
attachment of its tariff registers (rig.twin.tariffs), display (rig.twin.display) and clock-setting log
(rig.twin.event_log) to the management module's served items.

Twin layer: it reads its own knobs and the meter's firmware banks, never the rig's limits or declared values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from drivers.dlt645 import Value
from drivers.dlt645.identifiers import STATUS1_ACTIVE_REVERSE
from rig.config.registers import RegisterKnobs
from rig.twin.display import Display
from rig.twin.event_log import ClockSetLog
from rig.twin.relay import Relay
from rig.twin.tariffs import TariffRegisters
from rig.twin.world import Terminals

if TYPE_CHECKING:
    from rig.twin.management import ManagementModule

# ---------------------------------------------------------------- the meter's factory data

MANUFACTURER: Final = "Meter HIL Twin"
MODEL: Final = "DDZY-TW1"  # the meter model item holds 10 ASCII characters
HARDWARE_VERSION: Final = "HW-1.0"
# A build other than the type-tested one (the knobs): what a meter running unapproved software reports.
OTHER_VERSION: Final = "0001-dev"
OTHER_CHECKSUM: Final = 0x5EC0DE00

# DL/T 645-2007 identifiers of the identity items (table A.5; the checksum is this meter's own extension).
DI_ADDRESS: Final = 0x04000401
DI_METER_NUMBER: Final = 0x04000402
DI_ASSET: Final = 0x04000403
DI_MODEL: Final = 0x0400040B
DI_SOFTWARE_VERSION: Final = 0x04800001
DI_HARDWARE_VERSION: Final = 0x04800002
DI_MANUFACTURER: Final = 0x04800003
DI_SOFTWARE_CHECKSUM: Final = 0x04800005
DI_STATUS_1: Final = 0x04000501


@dataclass
class MeterRegisters:
    """The register functions of one twin meter, served through its management module."""

    management: ManagementModule
    knobs: RegisterKnobs
    _reverse_seen_kwh: float = field(init=False)
    clock_set_log: ClockSetLog = field(init=False)
    tariffs: TariffRegisters = field(init=False)
    display: Display = field(init=False)

    def __post_init__(self) -> None:
        m = self.management
        self._reverse_seen_kwh = m.metering.reverse_kwh
        self.clock_set_log = ClockSetLog(self.knobs)
        self.tariffs = TariffRegisters(m.metering, m.rtc, self.knobs)
        self.display = Display(m.metering, self.knobs)

    def software_version(self) -> str:
        """The running image's version as this meter reports it."""
        if self.knobs.software_version_wrong:
            return OTHER_VERSION
        server = self.management.dlt698
        return server.firmware.version if server is not None else "0001"

    def software_checksum(self) -> int:
        """The running image's checksum (4 bytes) as this meter reports it."""
        server = self.management.dlt698
        if self.knobs.software_checksum_wrong or server is None:
            return OTHER_CHECKSUM
        return int(server.firmware.checksum, 16)

    def reverse(self) -> bool:
        """True while this meter measures active power flowing back (what status word 1 bit 4 shows)."""
        m = self.management
        terminals = m.world.terminals()
        return m.metering.registered_power_w(terminals) < 0.0

    def items(self) -> dict[int, Callable[[float], Value]]:
        """The DL/T 645 items of the register functions (DI -> value at bench time `now`)."""
        m = self.management
        return {
            DI_ADDRESS: lambda now: int(m.address),
            DI_METER_NUMBER: lambda now: int(m.address),  # this maker prints the address as the meter number
            DI_ASSET: lambda now: f"TW-{m.address}",
            DI_MODEL: lambda now: MODEL,
            DI_SOFTWARE_VERSION: lambda now: self.software_version(),
            DI_HARDWARE_VERSION: lambda now: HARDWARE_VERSION,
            DI_MANUFACTURER: lambda now: MANUFACTURER,
            DI_SOFTWARE_CHECKSUM: lambda now: self.software_checksum(),
        }

    def step(self, t0: float, dt_s: float, terminals: Terminals) -> None:
        """Book the step's energy to its tariff and keep the display's values (stepped after the meter)."""
        metering = self.management.metering
        if self.knobs.reverse_counted_forward and metering.reverse_kwh > self._reverse_seen_kwh:
            # A firmware that takes the magnitude of the power books energy flowing back as forward energy.
            metering.forward_kwh += metering.reverse_kwh - self._reverse_seen_kwh
            metering.reverse_kwh = self._reverse_seen_kwh
        self._reverse_seen_kwh = metering.reverse_kwh
        self.tariffs.step(t0, dt_s)
        self.display.step(t0, dt_s)

    def attach(self) -> None:
        """Serve the items on the management module, and the direction bit in status word 1."""
        m = self.management
        m.items.update(self.items())
        m.items.update(self.clock_set_log.items())
        m.items.update(self.tariffs.items())
        m.items.update(self.display.items())
        m.display = self.display
        m.clock_set_listeners.append(self.clock_set_log.log)
        word_1 = m.items.get(DI_STATUS_1)

        def status_1(now: float) -> Value:
            base = word_1(now) if word_1 is not None else 0
            assert isinstance(base, int)
            reverse = self.reverse() and not self.knobs.direction_bit_stuck
            return base | STATUS1_ACTIVE_REVERSE if reverse else base & ~STATUS1_ACTIVE_REVERSE

        m.items[DI_STATUS_1] = status_1


def attach_registers(management: ManagementModule, knobs: RegisterKnobs, relay: Relay) -> MeterRegisters:
    """Build the register functions of `management`'s meter and serve them (after its power side and
    DL/T 698.45 server are attached: it reads their items and firmware); `relay` is its load relay."""
    relay.welded = knobs.relay_welded
    registers = MeterRegisters(management, knobs)
    registers.attach()
    return registers
