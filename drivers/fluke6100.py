"""Fluke 6100B / 6105A electrical power standard as a phantom-load meter-test source (drivers layer).

The command set is data (`FLUKE_6100B`), taken from the Fluke "6100B/6105A Users Manual", chapter 5
"Remote Operation" (SCPI Commands and Syntax); pages are cited per row. A row the manual's text does not
show in that exact form is listed in `check`: confirm it on an instrument before the first bench run.
Imports nothing above the drivers.
"""

from __future__ import annotations

from typing import Final

from drivers.errors import InstrumentError
from drivers.scpi import Setting
from drivers.source import PowerSource, SourceDialect
from drivers.transport import MessageTransport

MANUAL: Final = "Fluke 6100B/6105A Users Manual, chapter 5 Remote Operation"

# One phase of the standard drives the meter under test (a 6100B master unit is phase 1; auxiliary
# 6101B/6106A units add phases 2 and 3).
PHASE: Final = 1
_P = f"SOUR:PHAS{PHASE}"

FLUKE_6100B: Final = SourceDialect(
    name="fluke-6100b",
    # 5-36: SOURce:PHASe<x>:VOLTage:MHARmonics:AMPLitude(?) <dnpd> sets (and reads) the RMS value of the
    # voltage waveshape. Range: the 1000 V range of the voltage channel (check the upper end on the unit).
    voltage=Setting("voltage", f"{_P}:VOLT:MHAR:AMPL", "V", 0.0, 1000.0, decimals=4),
    # 5-43: current ranges 0.25 A ... 21 A, 50 A and 80 A with the high-current options; the set form of
    # the current channel's MHARmonics:AMPLitude mirrors the voltage channel's (5-36).
    current=Setting("current", f"{_P}:CURR:MHAR:AMPL", "A", 0.0, 80.0, decimals=5),
    # 5-45: SOURce:PHASe<x>:CURRent:MHARmonics:HARMonic<y>:PANGle? reads the fundamental's phase angle;
    # setting it on its own, and its sign (lagging positive), are to be checked.
    phase=Setting("phase angle", f"{_P}:CURR:MHAR:HARM1:PANG", "deg", -180.0, 180.0, decimals=3),
    # 16 Hz .. 850 Hz fundamental (data sheet).
    frequency=Setting("frequency", "SOUR:FREQ", "Hz", 16.0, 850.0, decimals=3),
    output_on="OUTP ON",
    output_off="OUTP OFF",  # 5-58: ':OUTPut OFF' turns every channel off
    output_query="OUTP?",
    measure_voltage=f"{_P}:VOLT:MHAR:AMPL?",  # 5-36
    measure_current=f"{_P}:CURR:AMPL?",  # 5-43: the phase's output amplitude, RMS A, e.g. 1.44E1
    measure_power=f"{_P}:POW:WATT?",  # 5-32: the phase's power, W, e.g. 2.43E4
    measure_power_factor=f"{_P}:POW:PFAC?",
    measure_frequency="SOUR:FREQ?",
    transient=None,  # its dips and swells are 'phenomena' on the waveform, not a LIST subsystem: not mapped
    source=f"{MANUAL}: 5-32 (power, fitted), 5-36 (voltage), 5-43 (current), 5-45 (phase), 5-58 (OUTPut OFF)",
    # current and phase: their set forms (phase also its sign); the rest: not shown in the pages read.
    check=("current", "phase", "frequency", "output_on", "output_query", "measure_power_factor", "measure_frequency"),
)

FITTED_QUERY: Final = f"{_P}:FITT?"  # 5-32: SOURce:PHASe<x>:FITTed? -> 1 when the phase is present
MODEL_QUERY: Final = f"{_P}:MOD?"  # 5-32: SOURce:PHASe<x>:MODel? -> "6105A"


class Fluke6100Source(PowerSource):
    """A Fluke 6100B/6105A driving one meter position from its phase 1 voltage and current channels."""

    def __init__(self, transport: MessageTransport, *, max_voltage_v: float, max_current_a: float,
                 dialect: SourceDialect = FLUKE_6100B) -> None:
        super().__init__(transport, max_voltage_v=max_voltage_v, max_current_a=max_current_a, dialect=dialect)

    def open(self) -> None:
        """Connect, clear the status, and make sure the phase that drives the meter is fitted."""
        super().open()
        if self.transport.query(FITTED_QUERY).strip() != "1":
            self.close()
            raise InstrumentError(f"{self.resource}: phase {PHASE} of the power standard is not fitted "
                                  f"({FITTED_QUERY} did not reply 1); check the master unit and its auxiliaries")

    def model(self) -> str:
        """The model of the phase driving the meter, e.g. 6105A."""
        return self.transport.query(MODEL_QUERY).strip().strip('"')
