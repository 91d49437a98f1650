"""DL/T 645-2007 abnormal replies, sans-IO (drivers layer): the ERR / SERR words and their frames.

C = request | 0xC0 with a 1-byte ERR; to 03 (security) C = 0xC3 with a 2-byte SERR, low byte first.
"""

from __future__ import annotations

from enum import IntFlag

from drivers.dlt645.frame import ABNORMAL, REPLY, Dlt645Frame, Function
from drivers.errors import FrameError


class ErrorCode(IntFlag):
    """ERR of an abnormal reply to the normal functions (11, 14, 17, ...)."""

    OTHER = 0x01
    NO_DATA = 0x02
    UNAUTHORISED = 0x04  # password wrong or not authorised
    BAUD_UNCHANGEABLE = 0x08
    TOO_MANY_YEAR_ZONES = 0x10
    TOO_MANY_DAY_PERIODS = 0x20
    TOO_MANY_TARIFFS = 0x40


class SecurityErrorCode(IntFlag):
    """SERR of an abnormal reply to 03 (security), 2 bytes low byte first."""

    OTHER = 0x0001
    REPEATED_RECHARGE = 0x0002
    ESAM_VERIFICATION_FAILED = 0x0004
    IDENTITY_AUTHENTICATION_FAILED = 0x0008
    CUSTOMER_NUMBER_MISMATCH = 0x0010
    RECHARGE_COUNT_ERROR = 0x0020
    OVER_HOARDING_LIMIT = 0x0040
    ADDRESS_ANOMALY = 0x0080
    METER_SUSPENDED = 0x0100  # MAC-error lockout


class ControlErrorCode(IntFlag):
    """ERR of an abnormal reply to 1C (trip, close, alarm, keep-power)."""

    SUSPENDED = 0x01
    MAC_ERROR = 0x02
    UNAUTHORISED = 0x04
    AUTHENTICATION_TIMED_OUT = 0x08
    DEADLINE_PASSED = 0x10
    TRIP_REFUSED = 0x20  # keep-power is on


AnyErrorCode = ErrorCode | SecurityErrorCode | ControlErrorCode


def abnormal_reply(address: str, function: Function, error: int) -> Dlt645Frame:
    """The abnormal reply of meter `address` to `function` carrying the nonzero error word `error`."""
    function = Function(function)
    if function is Function.BROADCAST_TIME:
        raise FrameError("broadcast time (08) has no reply, so no abnormal reply either")
    width = 2 if function is Function.SECURITY else 1
    if not 0 < error < 1 << (8 * width):
        raise FrameError(f"error word of a {function.name} reply must be 1..0x{(1 << (8 * width)) - 1:X}, "
                         f"got {error!r}")
    return Dlt645Frame(address, int(function) | REPLY | ABNORMAL, int(error).to_bytes(width, "little"))


def abnormal_error(frame: Dlt645Frame) -> AnyErrorCode:
    """The error word of an abnormal reply, as the flag type of its function."""
    if not (frame.is_reply and frame.is_abnormal):
        raise FrameError(f"not an abnormal reply: control byte 0x{frame.control:02X} lacks D7 and D6")
    function = frame.function
    width = 2 if function is Function.SECURITY else 1
    if len(frame.data) != width:
        raise FrameError(
            f"abnormal reply to {function.name} must carry L = {width}, got L = {len(frame.data)}"
        )
    word = int.from_bytes(frame.data, "little")
    if function is Function.SECURITY:
        return SecurityErrorCode(word)
    if function is Function.CONTROL:
        return ControlErrorCode(word)
    return ErrorCode(word)
