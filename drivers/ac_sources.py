"""Voltage-only programmable AC sources (drivers layer): Chroma 61500/61600 and Keysight AC6800 as
`SourceDialect` rows, with their LIST subsystems (drivers.transients) for dips and interruptions.

They have no separate current output: on a meter bench they supply the voltage circuit (dips, power
loss, no-load tests); load points with current need a phantom-load meter-test source. Rows not confirmed
against the vendor's manual are listed in `check`.
"""

from __future__ import annotations

from typing import Final

from drivers.scpi import Setting
from drivers.source import KEYSIGHT_WATCHDOG, SourceDialect
from drivers.transients import CHROMA_61500_LIST, KEYSIGHT_AC6800_LIST

# Chroma 61501..61504 user's manual 8.6.2: [SOUR:]VOLT[:LEV][:IMM][:AMPL]:AC, [SOUR:]FREQ, OUTP ON|OFF,
# FETC|MEAS:VOLT:ACDC?, :CURR:AC?, :FREQ?, :POW:AC[:REAL]?, :POW:AC:PFAC? (shared/reference/instruments.md).
CHROMA_61500: Final = SourceDialect(
    name="chroma-61500",
    voltage=Setting("voltage", "VOLT:AC", "V", 0.0, 300.0, decimals=1),
    current=None,
    phase=None,
    frequency=Setting("frequency", "FREQ", "Hz", 15.0, 1000.0, decimals=2),
    output_on="OUTP ON",
    output_off="OUTP OFF",
    output_query="OUTP?",
    measure_voltage="MEAS:VOLT:ACDC?",
    measure_current="MEAS:CURR:AC?",
    measure_power="MEAS:POW:AC?",
    measure_power_factor="MEAS:POW:AC:PFAC?",
    measure_frequency="MEAS:FREQ?",
    transient=CHROMA_61500_LIST,
    source="Chroma 61501/61502/61503/61504 user's manual, 8.6.2",
    check=("output_query", "transient"),
)

# Keysight AC6800 programming guide: VOLT, FREQ, OUTP, MEAS:CURR:AC? (shared/reference/instruments.md).
KEYSIGHT_AC6800: Final = SourceDialect(
    name="keysight-ac6800",
    voltage=Setting("voltage", "VOLT", "V", 0.0, 310.0, decimals=2),
    current=None,
    phase=None,
    frequency=Setting("frequency", "FREQ", "Hz", 40.0, 500.0, decimals=2),
    output_on="OUTP ON",
    output_off="OUTP OFF",
    output_query="OUTP?",
    measure_voltage="MEAS:VOLT:AC?",
    measure_current="MEAS:CURR:AC?",
    measure_power="MEAS:POW:AC?",
    measure_power_factor="MEAS:POW:AC:PFAC?",
    measure_frequency="MEAS:FREQ?",
    transient=KEYSIGHT_AC6800_LIST,
    watchdog=KEYSIGHT_WATCHDOG,  # the family's I/O watchdog, unconfirmed on the AC6800 (its `check` says so)
    source="Keysight AC6800 programming guide (VOLT, FREQ, OUTP, MEAS subsystems)",
    check=("output_query", "measure_voltage", "measure_power", "measure_power_factor", "measure_frequency",
           "transient"),
)
