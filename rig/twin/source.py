"""The twin's phantom-load power source: the SCPI command set of the `scpi-phantom` dialect,
acting on the World's set-points. Range violations go to the error queue as -222, as on a real source.
"""

from __future__ import annotations

from rig.config import SourceTwin
from rig.twin.scpi import Request, ScpiDevice
from rig.twin.world import World


class SourceModel(ScpiDevice):
    """Voltage and current outputs with a phase angle between them, output relay, measurements."""

    def __init__(self, world: World, config: SourceTwin) -> None:
        super().__init__(world, config.idn, config.latency_s)
        self.config = config
        world.source_noise_pct = config.amplitude_noise_pct
        sp = world.set_point
        self._setting("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", "voltage_v", 0.0, config.max_voltage_v)
        self._setting("[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]", "current_a", 0.0, config.max_current_a)
        self._setting("[SOURce:]PHASe[:ANGLe]", "phase_deg", -180.0, 180.0)
        self._setting("[SOURce:]FREQuency[:CW]", "frequency_hz", 45.0, 65.0)
        self.command("OUTPut[:STATe]", self._output)
        self.command("MEASure[:SCALar]:VOLTage[:AC]", lambda r: f"{self.world.terminals().voltage_v:.4f}")
        self.command("MEASure[:SCALar]:CURRent[:AC]", lambda r: f"{self.world.terminals().current_a:.5f}")
        self.command("MEASure[:SCALar]:POWer[:AC][:REAL]", lambda r: f"{self.world.terminals().active_power_w:.4f}")
        self.command("MEASure[:SCALar]:PFACtor", lambda r: f"{self.world.terminals().power_factor:.5f}")
        self.command("MEASure[:SCALar]:FREQuency", lambda r: f"{self.world.terminals().frequency_hz:.4f}")
        sp.frequency_hz = 50.0

    def _setting(self, pattern: str, attribute: str, low: float, high: float) -> None:
        def handler(request: Request) -> str | None:
            if request.query:
                request.no_args()
                return f"{getattr(self.world.set_point, attribute):.5f}"
            setattr(self.world.set_point, attribute, request.number(low, high))
            return None

        self.command(pattern, handler)

    def _output(self, request: Request) -> str | None:
        if request.query:
            return "1" if self.world.output_on else "0"
        self.world.output_on = request.boolean()
        return None

    def reset(self) -> None:
        """Power-on state: output off, zero amplitude, 50 Hz."""
        self.world.output_on = False
        sp = self.world.set_point
        sp.voltage_v = sp.current_a = sp.phase_deg = 0.0
        sp.frequency_hz = 50.0
