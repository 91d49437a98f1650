"""SCPI syntax for the twin's instruments: the standard error codes, IEEE 488.2 status bits, header patterns
(short/long forms, optional nodes, numeric suffixes), numbers with unit suffixes, and one parsed request.

Twin side only; no I/O (rig.twin.scpi serves devices built on it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


class ScpiFault(Exception):
    """A command the instrument rejects; goes to the error queue with its SCPI code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code},\"{message}\"")
        self.code = code
        self.message = message


# Standard SCPI error codes (SCPI-99 vol. 2, chapter 21).
UNDEFINED_HEADER = (-113, "Undefined header")
MISSING_PARAMETER = (-109, "Missing parameter")
PARAMETER_NOT_ALLOWED = (-108, "Parameter not allowed")
DATA_TYPE_ERROR = (-104, "Data type error")
DATA_OUT_OF_RANGE = (-222, "Data out of range")
ILLEGAL_PARAMETER = (-224, "Illegal parameter value")
SETTINGS_CONFLICT = (-221, "Settings conflict")
QUEUE_OVERFLOW = (-350, "Queue overflow")
QUERY_UNTERMINATED = (-420, "Query UNTERMINATED")
SYSTEM_ERROR = (-310, "System error")  # device-specific: what a twin with a filling error queue reports
INVALID_SUFFIX = (-131, "Invalid suffix")
SUFFIX_NOT_ALLOWED = (-138, "Suffix not allowed")

# IEEE 488.2 standard event status register (*ESR?), bit by bit (IEEE 488.2 11.5.1).
ESR_OPERATION_COMPLETE = 0x01
ESR_QUERY_ERROR = 0x04
ESR_DEVICE_ERROR = 0x08
ESR_EXECUTION_ERROR = 0x10
ESR_COMMAND_ERROR = 0x20
ESR_POWER_ON = 0x80  # the instrument restarted since the register was last read
# Status byte (*STB?): SCPI error/event queue not empty, message available, standard event summary,
# master summary status (IEEE 488.2 11.2; SCPI-99 vol. 1, 9.1).
STB_ERROR_QUEUE = 0x04
STB_MESSAGE_AVAILABLE = 0x10
STB_EVENT_SUMMARY = 0x20
STB_MASTER_SUMMARY = 0x40
STATUS_READS = ("*ESR?", "*STB?", "*ESE?", "*SRE?")

# SCPI error code ranges and the event status bit each one sets (SCPI-99 vol. 2, 21.8).
_ERROR_CLASSES = ((-199, -100, ESR_COMMAND_ERROR), (-299, -200, ESR_EXECUTION_ERROR),
                  (-399, -300, ESR_DEVICE_ERROR), (-499, -400, ESR_QUERY_ERROR))

# Unit-suffix multipliers (IEEE 488.2 7.7.3.3): MA is mega, M is milli; MHZ and MOHM are the two exceptions.
_MULTIPLIERS = {"EX": 1e18, "PE": 1e15, "T": 1e12, "G": 1e9, "MA": 1e6, "K": 1e3, "M": 1e-3, "U": 1e-6,
                "N": 1e-9, "P": 1e-12, "F": 1e-15, "A": 1e-18}
_MEGA_UNITS = {"MHZ": ("HZ", 1e6), "MOHM": ("OHM", 1e6)}
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*$")


def parse_number(text: str, unit: str | None = None) -> float:
    """A <decimal numeric program data> with an optional unit suffix (`unit`: the base unit the
    setting takes, e.g. 'V'; None: no suffix allowed). ScpiFault -104/-131/-138 when it is not one."""
    match = _NUMBER.match(text)
    if match is None:
        raise ScpiFault(*DATA_TYPE_ERROR)
    value = float(match.group(1))
    suffix = match.group(2).upper()
    if not suffix:
        return value
    if unit is None:
        raise ScpiFault(*SUFFIX_NOT_ALLOWED)
    base = unit.upper()
    if suffix in _MEGA_UNITS and _MEGA_UNITS[suffix][0] == base:
        return value * _MEGA_UNITS[suffix][1]
    if suffix == base:
        return value
    prefix = suffix.removesuffix(base) if suffix.endswith(base) else None
    if prefix and prefix in _MULTIPLIERS:
        return value * _MULTIPLIERS[prefix]
    raise ScpiFault(*INVALID_SUFFIX)


def event_bit(code: int) -> int:
    """The standard event status bit an error code sets (device-specific for positive codes)."""
    for low, high, bit in _ERROR_CLASSES:
        if low <= code <= high:
            return bit
    return ESR_DEVICE_ERROR if code > 0 else 0

_TOKEN = re.compile(r"\[|\]|:|[A-Za-z]+#?|\*[A-Za-z]+\??")


def compile_header(pattern: str) -> re.Pattern[str]:
    """Regex for a SCPI header pattern such as `[SOURce:]VOLTage[:LEVel]` or `CALCulate#:ERRor`."""
    out = []
    for token in _TOKEN.findall(pattern):
        if token == "[":
            out.append("(?:")
        elif token == "]":
            out.append(")?")
        elif token == ":":
            out.append(":")
        elif token.startswith("*"):
            out.append(re.escape(token.upper()))
        else:
            suffix = token.endswith("#")
            word = token.rstrip("#")
            short = "".join(c for c in word if c.isupper())
            out.append(f"(?:{short}|{word.upper()})" if short != word.upper() else word.upper())
            if suffix:
                out.append(r"(\d*)")
    return re.compile("".join(out) + r"(\?)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Request:
    """One parsed program message unit."""

    header: str
    query: bool
    args: list[str]
    suffix: int | None

    def number(self, low: float | None = None, high: float | None = None, unit: str | None = None) -> float:
        """The single numeric argument (with a suffix in `unit` or a multiple of it), range-checked."""
        if len(self.args) != 1:
            raise ScpiFault(*(MISSING_PARAMETER if not self.args else PARAMETER_NOT_ALLOWED))
        value = parse_number(self.args[0], unit)
        if (low is not None and value < low) or (high is not None and value > high):
            raise ScpiFault(*DATA_OUT_OF_RANGE)
        return value

    def boolean(self) -> bool:
        """The single ON/OFF/1/0 argument."""
        if len(self.args) != 1:
            raise ScpiFault(*(MISSING_PARAMETER if not self.args else PARAMETER_NOT_ALLOWED))
        word = self.args[0].upper()
        if word in ("ON", "1"):
            return True
        if word in ("OFF", "0"):
            return False
        raise ScpiFault(*ILLEGAL_PARAMETER)

    def no_args(self) -> None:
        """Reject arguments where none are allowed."""
        if self.args:
            raise ScpiFault(*PARAMETER_NOT_ALLOWED)


Handler = Callable[[Request], str | None]
