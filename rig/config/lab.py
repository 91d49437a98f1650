"""The lab profile (a YAML file the bench file names under `lab:`): who issues the certificates (lab, address,
accreditation, logo, signatory, decision rule), for whom (customer), how they are numbered, and the lab's
register of reference standards (who calibrated each, with what uncertainty). Pure data; no rendering here.
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator

import benches
from rig.config.base import ConfigError, StrictModel, describe_errors

# The example profile (benches/lab-profile.example.yaml): what a twin run's certificates carry when its bench
# file names no profile; a bench (real instruments) without one gets certificates that say so.
EXAMPLE_PROFILE = Path(benches.__file__).resolve().parent / "lab-profile.example.yaml"
MAX_PROFILE_BYTES = 64 * 1024
MAX_LOGO_BYTES = 256 * 1024  # the logo travels in the run's journal: a letterhead, not a photograph
LOGO_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
NUMBERING_FIELDS = {"lab": "LAB", "year": 2026, "run": "20260101-000000-abcdef", "position": 1,
                    "name": "P1", "address": "000000000001"}


class Signatory(StrictModel):
    """Who signs the certificates."""

    name: str = Field(min_length=1)
    title: str = Field(min_length=1, description="e.g. 'Head of laboratory'")


class Accreditation(StrictModel):
    """The lab's accreditation."""

    body: str = Field(min_length=1, description="the accreditation body, e.g. 'CNAS' or 'DAkkS'")
    number: str = Field(min_length=1, description="the lab's accreditation number, e.g. 'CNAS L1234'")
    standard: str = Field("ISO/IEC 17025:2017", description="the standard accredited against")


class ReferenceStandardEntry(StrictModel):
    """A reference standard of the lab's equipment register, by the calibration certificate it reports."""

    calibrated_by: str = Field(min_length=1, description="the calibrating laboratory (and its accreditation)")
    uncertainty_pct: float = Field(gt=0, le=5, description="expanded uncertainty of its energy error, %")
    coverage_factor: float = Field(2.0, gt=0, le=5, description="k of that uncertainty")


class LabProfile(StrictModel):
    """The lab profile file (see README 'Lab profile')."""

    name: str = Field(min_length=1, description="the lab's name as on its accreditation")
    code: str = Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9]+$",
                      description="short code used in certificate numbers")
    address: str = Field(min_length=1)
    accreditation: Accreditation
    logo: Path | None = Field(None, description="PNG or JPEG, relative to the profile file")
    signatory: Signatory
    decision_rule: str = Field(min_length=1, description="the decision rule stated on every certificate")
    numbering: str = Field("{lab}-{year}-{run}-{position:02d}",
                           description="certificate number per meter; fields lab, year, run, position (1-based), "
                                       "name, address")
    customer: str = Field("", description="the customer the meters are tested for (name and address)")
    reference_standards: dict[str, ReferenceStandardEntry] = Field(
        default_factory=dict, description="by the calibration certificate number the reference reports")
    example: bool = Field(False, description="true for the shipped example: certificates say it is not a lab's")

    @field_validator("numbering")
    @classmethod
    def _numbering_formats(cls, value: str) -> str:
        try:
            value.format(**NUMBERING_FIELDS)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a numbering scheme: {exc!s}; fields are "
                             f"{', '.join('{' + k + '}' for k in NUMBERING_FIELDS)}") from None
        return value


def load_lab_profile(path: Path) -> LabProfile:
    """Read and check a lab profile file; ConfigError naming the file and what is wrong."""
    # A regular file of a profile's size only: /dev/zero or a log named by mistake is refused, not read.
    if not path.is_file():
        raise ConfigError(f"lab profile {path} cannot be read: no such regular file")
    if path.stat().st_size > MAX_PROFILE_BYTES:
        raise ConfigError(f"lab profile {path} is larger than {MAX_PROFILE_BYTES // 1024} KiB: is it the right file?")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"lab profile {path} is not a readable YAML text file: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"lab profile {path} must be a YAML mapping at the top level")
    try:
        profile = LabProfile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, source=str(path)).replace("invalid bench file",
                                                                         "invalid lab profile")) from None
    if profile.logo is not None:
        logo = profile.logo if profile.logo.is_absolute() else path.resolve().parent / profile.logo
        profile = profile.model_copy(update={"logo": logo})
        _logo_bytes(profile)
    return profile


def _logo_bytes(profile: LabProfile) -> tuple[bytes, str] | None:
    if profile.logo is None:
        return None
    try:
        data = profile.logo.read_bytes()
    except OSError as exc:
        raise ConfigError(f"lab profile: logo {profile.logo} cannot be read: {exc.strerror}") from None
    kind = next((mime for magic, mime in LOGO_TYPES.items() if data.startswith(magic)), None)
    if kind is None or len(data) > MAX_LOGO_BYTES:
        raise ConfigError(f"lab profile: logo {profile.logo} must be a PNG or JPEG file of at most "
                          f"{MAX_LOGO_BYTES // 1024} KiB")
    return data, kind


def lab_meta(profile_path: Path | None, bench_kind: str) -> dict[str, Any] | None:
    """The profile as the run's journal keeps it (the logo inline), so that a certificate needs only the journal.

    No profile named: the example profile on a twin, none (None) on a bench with real instruments.
    """
    if profile_path is None and bench_kind == "bench":
        return None
    path = profile_path if profile_path is not None else EXAMPLE_PROFILE
    profile = load_lab_profile(path)
    meta = profile.model_dump(mode="json")
    meta["profile_file"] = str(path)
    meta["twin_default"] = profile_path is None
    logo = _logo_bytes(profile)
    if logo is not None:
        meta["logo"] = {"mime": logo[1], "base64": base64.b64encode(logo[0]).decode("ascii")}
    return meta


def certificate_number(scheme: str, *, lab: str, run_id: str, position: int, name: str, address: str,
                       year: int | None = None) -> str:
    """A meter's certificate number by the profile's scheme (`position` 1-based)."""
    return scheme.format(lab=lab, year=year if year is not None else dt.datetime.now(dt.UTC).year, run=run_id,
                         position=position, name=name, address=address)
