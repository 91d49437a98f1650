"""What the security plans (ESAM-backed SM4 sessions over DL/T 645) require of a meter, as data with
its source.

Test-plan layer; no I/O. `check=True` marks a value the project reference does not give and the lab has
to confirm against the State Grid specifications (not public); the security emulation itself is the
twin's documented SM4 scheme (README "ESAM-backed security").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.dlt645 import ControlErrorCode, ErrorCode, SecurityErrorCode
from testplans.comms.spec import di


@dataclass(frozen=True)
class Expect:
    """An error word a meter must answer with, and where that comes from."""

    word: int
    name: str
    source: str
    check: bool = False


SECURITY_REF: Final = "reference/security.md"
DLT645_REF: Final = "reference/dlt645.md 'Abnormal replies'"
STATE_GRID: Final = "State Grid extension of DL/T 645-2007 (not in the project reference)"


def _expect(code: ErrorCode | SecurityErrorCode | ControlErrorCode, source: str, check: bool = False) -> Expect:
    return Expect(int(code), code.name or str(int(code)), source, check)


# Identity authentication (03H, DI 07 00 00 FF).
WRONG_KEY = _expect(SecurityErrorCode.IDENTITY_AUTHENTICATION_FAILED,
                    SECURITY_REF + ": ciphertext2 differs from ciphertext1 -> SERR 0x0008")
WRONG_CIPHERTEXT = _expect(SecurityErrorCode.IDENTITY_AUTHENTICATION_FAILED,
                           SECURITY_REF + ": ciphertext2 differs from ciphertext1 -> SERR 0x0008")
WRONG_DISPERSION = _expect(SecurityErrorCode.OTHER,
                           SECURITY_REF + ": dispersion factor not the ESAM's meter number -> 'other error'")
SUSPENDED_AUTHENTICATION = _expect(SecurityErrorCode.METER_SUSPENDED,
                                   SECURITY_REF + ": 200 MAC failures -> SERR 0x0100")
TAMPERED_VALIDITY = _expect(SecurityErrorCode.ESAM_VERIFICATION_FAILED,
                            DLT645_REF + ": SERR 0x0004 ESAM verification failed", check=True)

# Remote control (1CH) at level 98.
NO_SESSION = _expect(ControlErrorCode.AUTHENTICATION_TIMED_OUT,
                     SECURITY_REF + ": 1C needs an open session, else error 0x08")
MAC_ERROR = _expect(ControlErrorCode.MAC_ERROR, DLT645_REF + ": 1C error 0x02 MAC error")
DEADLINE_PASSED = _expect(ControlErrorCode.DEADLINE_PASSED,
                          SECURITY_REF + ": a deadline earlier than the meter clock -> error 0x10")
TRIP_REFUSED = _expect(ControlErrorCode.TRIP_REFUSED, DLT645_REF + ": 1C error 0x20 trip refused (keep-power)")
SUSPENDED_CONTROL = _expect(ControlErrorCode.SUSPENDED, DLT645_REF + ": 1C error 0x01 suspended")

# Protected writes (14H at level 99 / 98): the standard's ERR has no MAC bit, 'unauthorised' is what is left.
WRITE_REFUSED = _expect(ErrorCode.UNAUTHORISED, DLT645_REF + ": ERR 0x04 password wrong / unauthorised",
                        check=True)

LOCKOUT_THRESHOLD: Final = 200  # MAC failures that suspend the meter (reference/security.md)
LOCKOUT_SOURCE: Final = SECURITY_REF + ": MAC failures are counted; at 200 the meter is suspended until the daily reset"
# Authentications whose random2 must all differ (4 random bytes: a repeat among 8 is ~1e-8 by chance).
RANDOM2_AUTHENTICATIONS: Final = 8

# Session validity: the plan sets a short one (with MAC) to see it expire on the bench's clock, then sets
# this working value again for the rest of the run (the lab's choice, not a standard's).
TEST_VALIDITY_MIN: Final = 2
WORKING_VALIDITY_MIN: Final = 30
EXPIRY_MARGIN_S: Final = 10.0  # before / after the validity, s (the meter counts whole seconds)
# The meter's daily reset of the MAC-error count: the plan sets the meter clock this long before midnight.
BEFORE_MIDNIGHT_S: Final = 10
AFTER_MIDNIGHT_S: Final = 10.0

# Running status word 3 (DI 04 00 05 03).
STATUS_WORD_3: Final = 0x04000503
RELAY_OPEN = 1 << 4
RELAY_TRIP_COMMAND = 1 << 6
ALARM = 1 << 7
KEEP_POWER = 1 << 12
AUTHENTICATED = 1 << 13
STATUS_SOURCE: Final = STATE_GRID + ": status word 3 bit 4 relay open, bit 6 trip commanded, bit 7 pre-trip " \
                       "alarm, bit 12 keep-power, bit 13 identity authenticated"

# The relay: what a bench sees of a tripped meter over a window at Un, Ib.
RELAY_WINDOW_S: Final = 30.0
CLOSED_PULSES_FRACTION: Final = 0.8  # at least this share of the pulses Un x Ib gives over the window
CURRENT_READING: Final = di("phase A current")  # the meter's own current reading
TIME: Final = di("time")
OPEN_CURRENT_SOURCE: Final = "no load current through open contacts: below the class's starting current"
CLOSED_CURRENT_PCT: Final = 1.0  # the meter's current reading against the source's with the relay closed, %

# Reply latency of a secured request (it waits for the ESAM): the UART limits apply.
LATENCY_LOW_S: Final = 0.020
LATENCY_HIGH_S: Final = 0.500
LATENCY_SOURCE: Final = "reference/dlt645.md 'Serial line': reply within 20..500 ms"
