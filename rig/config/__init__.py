"""The bench file: a YAML document validated with pydantic, plus dotted command-line overrides.

The package's modules, by part of the file:
- `rig.config.base`: the strict model base, `ConfigError`, how validation errors are worded;
- `rig.config.meter`: `meter:` (MeterType);
- `rig.config.position`: `positions:` (PositionConfig and its UART, BLE, SPI and tap links);
- `rig.config.twin`: `twin:` (the twin's instruments, defect knobs and bench faults; pure data);
- `rig.config.bench`: the whole file (BenchConfig: instruments, safety, keys, run policy);
- `rig.config.load`: reading, overrides, validation, `--ambient`.

The names below are the package's interface; `from rig.config import BenchConfig` is the usual import.
"""

from rig.config.base import TWIN_RESOURCE, ConfigError, StrictModel
from rig.config.bench import (
    ESAM_MASTER_KEY,
    SAFETY_CEILINGS,
    BenchConfig,
    InstrumentConfig,
    KeyRef,
    RunPolicy,
    SafetyLimits,
)
from rig.config.load import (
    BENCHES_DIR,
    DEFAULT_BENCH,
    MAX_INPUT_FILE_BYTES,
    apply_override,
    dump_bench,
    load_bench,
    parse_ambient,
    parse_override,
    read_bench_yaml,
    read_text_capped,
    validate_bench,
)
from rig.config.meter import CLASSIC_CLASSES, LETTER_CLASSES, MeterType
from rig.config.position import (
    BLE_BACKEND_PREFIXES,
    IARMS_COUNTS_AT_IMAX,
    SPI_MASTER_KINDS,
    SPI_TWIN_URL_PREFIXES,
    URMS_COUNTS_AT_UN,
    BleConfig,
    PositionConfig,
    SerialSettings,
    SpiPositionConfig,
    SpiSignals,
    UartTapConfig,
    ble_uuid,
)
from rig.config.twin import (
    FAULT_KINDS,
    BleKnobs,
    FaultsConfig,
    FaultSpec,
    MeteringKnobs,
    MeterKnobs,
    PowerKnobs,
    ReferenceTwin,
    SecurityKnobs,
    SourceTwin,
    SpiKnobs,
    TwinConfig,
    UartKnobs,
    knob,
)

__all__ = [
    "BENCHES_DIR", "BLE_BACKEND_PREFIXES", "CLASSIC_CLASSES", "DEFAULT_BENCH", "ESAM_MASTER_KEY", "FAULT_KINDS",
    "IARMS_COUNTS_AT_IMAX", "LETTER_CLASSES", "MAX_INPUT_FILE_BYTES", "SAFETY_CEILINGS", "SPI_MASTER_KINDS",
    "SPI_TWIN_URL_PREFIXES", "TWIN_RESOURCE", "URMS_COUNTS_AT_UN", "BenchConfig", "BleConfig", "BleKnobs",
    "ConfigError", "FaultSpec", "FaultsConfig", "InstrumentConfig", "KeyRef", "MeterKnobs", "MeterType",
    "MeteringKnobs", "PositionConfig", "PowerKnobs", "ReferenceTwin", "RunPolicy", "SafetyLimits",
    "SecurityKnobs", "SerialSettings", "SourceTwin", "SpiKnobs", "SpiPositionConfig", "SpiSignals", "StrictModel",
    "TwinConfig", "UartKnobs", "UartTapConfig", "apply_override", "ble_uuid", "dump_bench", "knob", "load_bench",
    "parse_ambient", "parse_override", "read_bench_yaml", "read_text_capped", "validate_bench",
]
