"""The whole bench file (`BenchConfig`): instruments, positions, meter type, safety limits, key references,
run policy, and the twin's section."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from drivers.registry import DRIVERS_BY_ROLE
from rig.config.base import TWIN_RESOURCE, ConfigError, StrictModel
from rig.config.lab import load_lab_profile
from rig.config.meter import MeterType
from rig.config.place import PlaceConfig, resolve_references
from rig.config.position import PositionConfig
from rig.config.twin import FAULT_TARGETS, TwinConfig

# Upper bounds of the bench file's safety limits: a limit above these is a typo, not a bench (low-voltage
# meter benches: IEC 60038 ends low voltage at 1000 V AC; the largest direct-connected meters take 200 A).
SAFETY_CEILINGS = {"max_voltage_v": 1000.0, "max_current_a": 500.0}


class SafetyLimits(StrictModel):
    """Set-points above these are refused before anything is sent to the source."""

    max_voltage_v: float = Field(gt=0, le=SAFETY_CEILINGS["max_voltage_v"], description="highest voltage, V")
    max_current_a: float = Field(gt=0, le=SAFETY_CEILINGS["max_current_a"], description="highest current, A")


class InstrumentConfig(StrictModel):
    """One instrument of the bench: its role, driver, and where it is reached."""

    role: str
    driver: str
    resource: str = Field(description="VISA resource (TCPIP::host::port::SOCKET, ASRL...) or 'twin'")
    timeout_s: float = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _known_driver(self) -> InstrumentConfig:
        if self.role not in DRIVERS_BY_ROLE:
            raise ValueError(f"unknown role {self.role!r}; known roles: {', '.join(sorted(DRIVERS_BY_ROLE))}")
        known = DRIVERS_BY_ROLE[self.role]
        if self.driver not in known:
            raise ValueError(f"unknown driver {self.driver!r} for role {self.role!r}; known: {', '.join(known)}")
        return self


# `keys.esam_master`: the ESAM master key of the meters (secure sessions derive theirs from it); on the twin,
# set up by the twin itself.
ESAM_MASTER_KEY = "esam_master"


class KeyRef(StrictModel):
    """Key material by reference: a file path or an environment variable, never the key itself."""

    file: Path | None = None
    env: str | None = None

    @model_validator(mode="after")
    def _one(self) -> KeyRef:
        if (self.file is None) == (self.env is None):
            raise ValueError("give exactly one of 'file' or 'env' (the key itself never goes in a bench file)")
        return self

    def read(self) -> bytes:
        """The key bytes (hex text in the file or variable); ConfigError names the reference, not the key."""
        if self.env is not None:
            text = os.environ.get(self.env)
            if text is None:
                raise ConfigError(f"key environment variable {self.env} is not set")
            where = f"environment variable {self.env}"
        else:
            assert self.file is not None
            try:
                text = self.file.read_text()
            except OSError as exc:
                raise ConfigError(f"key file {self.file} cannot be read: {exc.strerror}") from None
            where = f"key file {self.file}"
        try:
            return bytes.fromhex(text.strip())
        except ValueError:
            raise ConfigError(f"{where} does not hold hex text") from None



class RunPolicy(StrictModel):
    """`run:`: how the rig treats bench faults (an instrument or link failing, never the meter)."""

    on_bench_fault: Literal["continue", "stop"] = Field(
        "continue", description="after a point fails for a bench fault: go on with the next, or stop (resume later)"
    )
    retry_attempts: int = Field(3, ge=1, le=10, description="tries of one instrument operation before a bench fault")
    retry_backoff_s: float = Field(0.5, ge=0, description="bench time before the second try, doubled each try, s")


class BenchConfig(StrictModel):
    """A whole bench: instruments, positions, meter type, safety limits, keys, and the twin."""

    name: str
    description: str = ""
    clock: str = Field(
        "wall", description="'wall' on a bench; 'twin' for the embedded twin; 'twin+tcp://HOST:PORT' for a served twin"
    )
    meter: MeterType
    safety: SafetyLimits
    instruments: list[InstrumentConfig]
    positions: list[PositionConfig] = Field(min_length=1)
    keys: dict[str, KeyRef] = Field(default_factory=dict)
    twin: TwinConfig | None = None
    results_db: str | None = Field(
        None, description="SQLAlchemy URL of the results journal (default: SQLite in the run folder)"
    )
    run: RunPolicy = Field(default_factory=lambda: RunPolicy(), description="what a run does about bench faults")
    place: PlaceConfig | None = Field(None, description="the labgrid place this bench is (rig run --place)")
    lab: Path | None = Field(None, description="the lab profile file (rig/config/lab.py), relative to the bench file")

    @field_validator("lab")
    @classmethod
    def _lab_profile(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and not value.is_absolute():
            value = Path(str((info.context or {}).get("source") or ".")).parent / value
        if value is not None:
            load_lab_profile(value.resolve())  # a bad profile is refused with the bench file, not at the report
        return value.resolve() if value is not None else None

    @model_validator(mode="before")
    @classmethod
    def _place_resources(cls, data: Any) -> Any:
        return resolve_references(data)  # `place:NAME` values: the resources of the place the run holds

    @model_validator(mode="after")
    def _consistent(self) -> BenchConfig:
        roles = [i.role for i in self.instruments]
        for role in ("source", "reference"):
            if roles.count(role) != 1:
                raise ValueError(f"instruments: need exactly one with role {role!r}, found {roles.count(role)}")
        for field, values in (
            ("address", [p.address for p in self.positions]),
            ("pulse_channel", [str(p.pulse_channel) for p in self.positions]),
        ):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"positions: {field} must be unique, repeated: {', '.join(dupes)}")
        uses_twin = any(i.resource == TWIN_RESOURCE for i in self.instruments) or self.clock == "twin"
        if uses_twin and self.twin is None:
            raise ValueError("resources or clock say 'twin' but there is no 'twin:' section")
        if self.clock not in ("wall", "twin") and not self.clock.startswith("twin+tcp://"):
            raise ValueError(f"clock {self.clock!r}: use 'wall', 'twin' or 'twin+tcp://HOST:PORT'")
        if self.twin is not None:
            for index in self.twin.positions:
                if not 0 <= index < len(self.positions):
                    count = len(self.positions)
                    raise ValueError(f"twin.positions.{index}: there are only {count} positions (0-based)")
            for n, spec in enumerate(self.twin.faults.schedule):
                if FAULT_TARGETS[spec.kind] == "position" and int(spec.target) >= len(self.positions):
                    raise ValueError(f"twin.faults.schedule.{n}.target: {spec.kind} on position {spec.target}, but "
                                     f"the bench has {len(self.positions)} position(s), 0-based")
        return self

    @field_validator("keys", mode="before")
    @classmethod
    def _keys_are_references(cls, value: Any) -> Any:
        if isinstance(value, dict):
            inline = sorted(str(name) for name, ref in value.items() if not isinstance(ref, dict))
            if inline:
                raise ValueError(f"{', '.join(inline)} written as a value: give a reference, {{file: PATH}} or "
                                 "{env: VARIABLE} (a key never goes in a bench file or --set; the value is not shown)")
        return value

    def instrument(self, role: str) -> InstrumentConfig:
        """The instrument with `role`."""
        return next(i for i in self.instruments if i.role == role)

    def position_name(self, index: int) -> str:
        """A position's display name (its `name`, else P1, P2, ...)."""
        return self.positions[index].name or f"P{index + 1}"

