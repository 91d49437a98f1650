"""Fluke 6100B / 6105A electrical power standard (drivers layer): the phantom-load meter-test source
(`FLUKE_6100B`, `Fluke6100Source`) and its Energy option's error calculator (`FLUKE_6105A_ENERGY`,
`Fluke6105aEnergy`), which compares meter-under-test (MUT) pulses with the energy of the main outputs.

The command sets are data, taken from the Fluke "6100B/6105A Users Manual", chapter 5 "Remote Operation"
(SCPI Commands and Syntax); pages are cited per row. A row the manual's text does not show in that exact
form is listed in `check`: confirm it on an instrument before the first bench run. Imports nothing above
the drivers.
"""

from __future__ import annotations

from typing import Final

from drivers.errors import InstrumentError
from drivers.reference import CalculatorState, ErrorCalculator, ReferenceDialect, ReferenceStandard
from drivers.scpi import Setting
from drivers.source import HarmonicDialect, PowerSource, SourceDialect
from drivers.transport import MessageTransport

MANUAL: Final = "Fluke 6100B/6105A Users Manual, chapter 5 Remote Operation"

# One phase of the standard drives the meter under test (a 6100B master unit is phase 1; auxiliary
# 6101B/6106A units add phases 2 and 3).
PHASE: Final = 1
_P = f"SOUR:PHAS{PHASE}"

# 5-36 (voltage) and 5-45 (current): MHARmonics:HARMonic<y> <amplitude>,<phase angle> sets harmonic y (0..100,
# DC is y = 0 and its phase angle must be zero) in the presently selected amplitude units (absolute: V, A);
# MHARmonics:CLEar removes every harmonic but the fundamental. The MHARmonics:STATe form that applies them, the
# units being absolute after *RST, and the phase angle's reference and sign are not shown in the text read: check.
# Its interharmonics (5-71, IHARmonics) are not mapped, so no sub-harmonics from this row.
FLUKE_6100B_HARMONICS: Final = HarmonicDialect(
    voltage=f"{_P}:VOLT:MHAR:HARM{{order}} {{amplitude}},{{phase}}",
    current=f"{_P}:CURR:MHAR:HARM{{order}} {{amplitude}},{{phase}}",
    clear=(f"{_P}:VOLT:MHAR:CLE", f"{_P}:CURR:MHAR:CLE"),
    enable=(f"{_P}:VOLT:MHAR:STAT ON", f"{_P}:CURR:MHAR:STAT ON"),
    percent=False,
    fundamental=True,
    max_order=100,
    dc=True,
    fractional=False,
    source=f"{MANUAL}: 5-36 (voltage MHARmonics), 5-45 (current MHARmonics)",
    check=("enable", "percent", "fundamental", "phase sign and reference"),
)

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
    harmonics=FLUKE_6100B_HARMONICS,
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


# The Energy option (6105A, or a 6100B with it): MUT pulse inputs on channels 1..3, the reference taken
# from the main outputs themselves (MAIN). Rows from 5-57..5-61; the pages read do not show how a test is
# started, how its state and each MUT's error are read, or the reference's accumulated energy: those rows
# are named after the ENERgy tree and listed in `check`. Its calibration is not queried in the pages read
# either: the twin's CAL:CERT?/CAL:DUE? stand in (check).
# Note 5-58: ENERgy:ABORt also switches the outputs off (as STBY does) unless "Maintain Voltage" is set.
MUT_CHANNELS: Final = 3
FLUKE_6105A_ENERGY: Final = ReferenceDialect(
    name="fluke-6105a-energy",
    calibration_certificate="CAL:CERT?",
    calibration_due="CAL:DUE?",
    measure_voltage=f"{_P}:VOLT:MHAR:AMPL?",  # 5-36: the reference is the main output (ENER:REF:SOUR MAIN)
    measure_current=f"{_P}:CURR:AMPL?",  # 5-43
    measure_power=f"{_P}:POW:WATT?",  # 5-32
    measure_power_factor=f"{_P}:POW:PFAC?",
    measure_frequency="SOUR:FREQ?",
    energy_start="ENER:REF:ACC:STAR",
    energy_stop="ENER:REF:ACC:STOP",
    energy_query="ENER:REF:ACC?",
    # 5-94: ENERgy:MUT:CONStant(?) <dnpd>, in the units of ENERgy:MUT:CONStant:UNIT (IPKWH: imp/kWh, 5-95).
    constant=Setting("meter constant", "ENER:MUT:CONS", "imp/kWh", 0.001, 1e9, decimals=3),
    pulses=Setting("pulses per reading", "ENER:MUT:TEST:DUR", "pulses", 1, 1e7, decimals=0),
    calc_start="ENER:STAR",
    calc_abort="ENER:ABOR",  # 5-92
    calc_state="ENER:STAT?",
    calc_error="ENER:MUT{channel}:ERR?",
    count_start="ENER:MUT{channel}:COUN:STAR",
    count_query="ENER:MUT{channel}:COUN?",
    states=(("IDLE", CalculatorState.IDLE), ("ARMED", CalculatorState.WAIT), ("RUNNING", CalculatorState.RUN),
            ("COMPLETE", CalculatorState.DONE), ("COUNTING", CalculatorState.COUNT)),
    # 5-97: channels 1..3 as independent MUTs; 5-91: the test's duration counted on the position's channel
    # (sent after MUT:SOURce, as 5-58 recommends).
    calc_setup=("ENER:MUT:SOUR CH1TO3", "ENER:MUT:TEST:PSOU CH{channel}"),
    # 5-95: constants in impulses per kWh (no short form of the parameter); 5-103: reference = main outputs.
    open_setup=("ENER:MUT:CONS:UNIT IPKWH", "ENER:REF:SOUR MAIN"),
    source=f"{MANUAL}: 5-32, 5-36, 5-43 (readings), 5-58..5-61 (ENERgy tree: PSOUrce, ABORt, MUT, REFerence)",
    check=("calibration_certificate", "calibration_due", "measure_power_factor", "measure_frequency",
           "energy_start", "energy_stop", "energy_query", "pulses", "calc_start", "calc_state", "calc_error",
           "count_start", "count_query", "states"),
)


class Fluke6105aEnergy(ReferenceStandard):
    """The power standard's Energy option as the bench's reference and error calculators (MUT channels 1..3)."""

    def __init__(self, transport: MessageTransport, dialect: ReferenceDialect = FLUKE_6105A_ENERGY) -> None:
        super().__init__(transport, dialect)

    def calculator(self, channel: int) -> ErrorCalculator:
        """The MUT input `channel` (1..3) as an error calculator."""
        if not 1 <= channel <= MUT_CHANNELS:
            raise ValueError(f"error calculator channel {channel}: the Energy option has MUT inputs 1..{MUT_CHANNELS}")
        return super().calculator(channel)
