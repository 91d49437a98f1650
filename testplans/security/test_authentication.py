"""Identity authentication (03H, DI 07 00 00 FF) with the meter's ESAM: a right one opens a session (the
status word says so, a protected command is taken); a wrong key, a wrong dispersion factor and a wrong
ciphertext are refused with the SERR the reference gives; every authentication gets a fresh random2.
Per position; in the standard's error words."""

from __future__ import annotations

import pytest

from drivers.security import EsamSession, MeterSecurityClient, RemoteControl, SoftwareKeySource, dispersion_factor
from rig.bench import Bench, Position
from testplans.security import spec
from testplans.security.helpers import refusal, status_word_3

pytestmark = pytest.mark.plan


def _record_refusal(record, position: Position, what: str, outcome: tuple[int, str], expected: spec.Expect) -> None:
    record(f"error word of the reply to {what}", outcome[0], "", low=expected.word, high=expected.word,
           position=position, outcome=outcome[1], expected=expected.name, source=expected.source,
           check=expected.check)


def test_successful_authentication(secure: MeterSecurityClient, position: Position, record) -> None:
    """A right authentication is answered with random2 (4 bytes) and the ESAM serial (8 bytes) within the
    UART's reply time; the status word shows the session, and a protected command is taken."""
    event = secure.authenticate()
    latency = secure.link.last.latency_s if secure.link.last else None
    record("reply latency of an identity authentication", latency, "s", low=spec.LATENCY_LOW_S,
           high=spec.LATENCY_HIGH_S, position=position, source=spec.LATENCY_SOURCE, check=True)
    record("random2 length", len(event.random2), "bytes", low=4, high=4, position=position, source=spec.SECURITY_REF)
    record("ESAM serial length", len(event.esam_serial), "bytes", low=8, high=8, position=position,
           source=spec.SECURITY_REF)
    record("ESAM serial is not all zeros", int(any(event.esam_serial)), "", low=1, high=1, position=position)
    word = status_word_3(secure.link) or 0
    record("status word 3 shows the identity authentication", int(bool(word & spec.AUTHENTICATED)), "", low=1,
           high=1, position=position, source=spec.STATUS_SOURCE, check=True)
    outcome = refusal(lambda: secure.control(RemoteControl.ALARM_OFF))
    record("error word of a protected command in the new session", outcome[0], "", low=0, high=0,
           position=position, outcome=outcome[1])


def test_wrong_key_rejected(bench: Bench, secure: MeterSecurityClient, position: Position, record) -> None:
    """An authentication computed with another master key is refused (SERR 0x0008) and opens no session."""
    wrong_keys = SoftwareKeySource.generate("a wrong key")
    stranger = MeterSecurityClient(secure.link, EsamSession(position.address, wrong_keys), bench.clock)
    _record_refusal(record, position, "an authentication with a wrong key", refusal(stranger.authenticate),
                    spec.WRONG_KEY)
    word = status_word_3(secure.link) or 0
    record("status word 3 shows an identity authentication after the refusal", int(bool(word & spec.AUTHENTICATED)),
           "", low=0, high=0, position=position, source=spec.STATUS_SOURCE, check=True)


def test_wrong_dispersion_factor_rejected(secure: MeterSecurityClient, position: Position, record) -> None:
    """An authentication for another meter number (its dispersion factor and ciphertext made with the
    right master key) is refused as 'other error': keys for one meter never open another."""
    other = position.address[:-1] + str((int(position.address[-1]) + 5) % 10)
    outcome = refusal(lambda: secure.authenticate(dispersion=dispersion_factor(other)))
    _record_refusal(record, position, f"an authentication with the dispersion factor of meter {other}", outcome,
                    spec.WRONG_DISPERSION)


def test_wrong_ciphertext_rejected(secure: MeterSecurityClient, position: Position, record) -> None:
    """An authentication whose ciphertext1 was altered on the way is refused (SERR 0x0008)."""
    request = secure.session.authentication_request().tampered("ciphertext1", bit=3)
    _record_refusal(record, position, "an authentication with a wrong ciphertext1",
                    refusal(lambda: secure.send(request)), spec.WRONG_CIPHERTEXT)


def test_random2_fresh_each_authentication(secure: MeterSecurityClient, position: Position, record) -> None:
    """Every authentication gets a different random2 from the ESAM (a repeated one allows replays)."""
    seen = [secure.authenticate().random2 for _ in range(spec.RANDOM2_AUTHENTICATIONS)]
    record(f"different random2 in {spec.RANDOM2_AUTHENTICATIONS} authentications", len(set(seen)), "",
           low=spec.RANDOM2_AUTHENTICATIONS, high=spec.RANDOM2_AUTHENTICATIONS, position=position,
           source=spec.SECURITY_REF + ": random2 from the ESAM's DRBG")
