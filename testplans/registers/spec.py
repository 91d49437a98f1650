"""What the register plans require of a meter, as data with its source.

Test-plan layer; no I/O. `check=True` marks a value the project reference does not give (the lab confirms
it against the standard or the maker's protocol document).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Source:
    """Where a requirement comes from, and whether it still needs confirming."""

    text: str
    check: bool = False


DLT645: Final = "DL/T 645-2007"
# Identity: a type test compares the software the meter runs with the software the type was approved with
# (WELMEC 7.2 / OIML D 31 software identification; the bench file's meter type declares it).
SOFTWARE_ID = Source("OIML D 31 / WELMEC 7.2 software identification: the meter shows the version and checksum "
                     "of the type-approved software; declared in the bench file's meter type", check=True)
IDENTITY_ITEMS = Source(f"{DLT645} table A.5: 04 00 04 02 meter number, 04 00 04 0B model, 04 80 00 01..03 "
                        "software/hardware version, manufacturer; software checksum 04 80 00 05 is a maker's "
                        "extension", check=True)
