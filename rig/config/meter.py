"""`meter:` of the bench file: the nameplate of the meters under test."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from rig.config.base import StrictModel

CLASSIC_CLASSES = ("2", "1", "0.5S", "0.2S")
LETTER_CLASSES = ("A", "B", "C", "D")


class MeterType(StrictModel):
    """The nameplate of the meters under test (one type per bench run)."""

    scheme: Literal["classic", "letter"] = Field(
        description="classic: IEC 62053-21/22:2003 classes 2, 1, 0.5S, 0.2S; letter: 2020 / IR46 classes A-D"
    )
    accuracy_class: str = Field(description="accuracy class, e.g. '1' or 'B'")
    connection: Literal["direct", "ct"] = "direct"
    wiring: Literal["1P2W", "3P4W", "3P3W"] = "1P2W"
    un_v: float = Field(gt=0, description="reference voltage Un, V")
    ib_a: float = Field(gt=0, description="basic current Ib (direct) or nominal In (CT), A")
    imax_a: float = Field(gt=0, description="maximum current Imax, A")
    itr_a: float | None = Field(default=None, gt=0, description="transitional current, A (default 0.1 Ib / 0.05 In)")
    constant_imp_per_kwh: float = Field(gt=0, description="meter constant, imp/kWh")
    frequency_hz: float = Field(default=50.0, gt=0, description="reference frequency, Hz")
    start_up_time_s: float = Field(default=5.0, ge=0, description="time after power-up before the meter answers, s")
    min_logged_outage_s: float | None = Field(
        default=60.0, ge=0, description="shortest outage the meter logs as a power-down event, s (None: the meter "
        "type does not say; project reference power.md, check)")
    software_version: str | None = Field(
        default=None, description="software version declared for the type (as the meter reports it, DL/T 645 "
        "04800001); None: not declared")
    software_checksum: str | None = Field(
        default=None, description="software checksum declared for the type, 8 hex digits; None: not declared")

    @field_validator("accuracy_class", mode="before")
    @classmethod
    def _class_as_text(cls, value: Any) -> Any:
        # `accuracy_class: 1` (unquoted YAML, or --set meter.accuracy_class=2) means the class named "1".
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f"{value:g}"
        return value

    @field_validator("software_version", "software_checksum", mode="before")
    @classmethod
    def _software_as_text(cls, value: Any) -> Any:
        # YAML reads 0001 or 12345678 unquoted as a number, losing digits: the declared text must be quoted.
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f"{value!r} was read as a number: quote it as text, e.g. '0001' or '1A2B3C4D'")
        return value

    @field_validator("software_checksum")
    @classmethod
    def _checksum_hex(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = value.strip().upper().removeprefix("0X")
        if len(digits) != 8 or any(c not in "0123456789ABCDEF" for c in digits):
            raise ValueError(f"software_checksum {value!r} must be 8 hex digits (4 bytes), e.g. '1A2B3C4D'")
        return digits

    @model_validator(mode="after")
    def _check(self) -> MeterType:
        allowed = CLASSIC_CLASSES if self.scheme == "classic" else LETTER_CLASSES
        if self.accuracy_class not in allowed:
            raise ValueError(
                f"accuracy_class {self.accuracy_class!r} is not a {self.scheme} class; use one of {', '.join(allowed)}"
            )
        if self.imax_a <= self.ib_a:
            raise ValueError(f"imax_a ({self.imax_a} A) must be above ib_a ({self.ib_a} A)")
        if self.itr_a is None:
            object.__setattr__(self, "itr_a", self.ib_a * (0.1 if self.connection == "direct" else 0.05))
        return self

    @property
    def transitional_current_a(self) -> float:
        """Itr, A (given or derived)."""
        assert self.itr_a is not None
        return self.itr_a

    @property
    def phase_factor(self) -> float:
        """m in the standards' formulas: 1 single-phase, 3 for 3P4W, sqrt(3) for 3P3W."""
        return {"1P2W": 1.0, "3P4W": 3.0, "3P3W": math.sqrt(3.0)}[self.wiring]

    @property
    def nameplate(self) -> str:
        """The usual nameplate text, e.g. `220 V 5(60) A 1200 imp/kWh class 1`."""
        return (
            f"{self.un_v:g} V {self.ib_a:g}({self.imax_a:g}) A {self.constant_imp_per_kwh:g} imp/kWh "
            f"class {self.accuracy_class}"
        )

