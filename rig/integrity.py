"""Tamper evidence for runs (composition layer): canonical bytes, the SM3 record chain, and the SM2-signed
run manifest. Pure functions over plain dicts; the journal (rig.results) and `rig verify` (rig.verify) use them.

Chain: h_0 = SM3("meter-hil-rig/chain/1:" + run_id), h_n = SM3(h_{n-1} || canonical(record_n)).
Manifest: what a finished session vouches for (every column of the run header, its sessions, items and
attachment hashes; the record count and chain head), signed with SM2 (SM3/Z_A, default signer ID).
Addendum: what the session vouches for once every report is written (the SM3 of every run-folder file, the
run's closing columns), signed with the same key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drivers.crypto import Sm2KeyPair, sm2_generate_keypair, sm2_keypair_from_private, sm2_sign, sm2_verify, sm3
from drivers.errors import RigError

CHAIN_FORMAT = "meter-hil-rig/chain/1"
MANIFEST_FORMAT = "meter-hil-rig/run-manifest/2"
ADDENDUM_FORMAT = "meter-hil-rig/run-addendum/1"
SIGNING_KEY_NAME = "signing"  # the bench file's `keys:` entry that holds the bench's SM2 private key
# Fields of a record that the chain covers, in the journal's words.
RECORD_FIELDS = ("run_id", "seq", "session", "test", "position", "meter", "quantity", "value", "unit", "low",
                 "high", "verdict", "bench_time_s", "recorded_utc", "detail")


class IntegrityError(RigError):
    """Signing or checking a run failed for a reason other than an alteration (e.g. a bad key)."""


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no spaces, UTF-8 kept, floats as Python's shortest repr."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)


def canonical_bytes(value: Any) -> bytes:
    """`canonical_json(value)` as UTF-8 bytes."""
    return canonical_json(value).encode("utf-8")


def finite_or_none(value: float | int | None) -> float | None:
    """A measured number as stored: float, or None when missing or not finite (NaN, inf)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def normalise_detail(detail: Mapping[str, Any] | None) -> str | None:
    """A record's detail as the canonical JSON text the journal stores and the chain covers."""
    if not detail:
        return None
    # Round trip through JSON first: tuples become lists, unknown types their str().
    return canonical_json(json.loads(json.dumps(dict(detail), default=str, allow_nan=True)))


def genesis(run_id: str) -> str:
    """The chain's start for a run: binds the whole chain to the run id."""
    return sm3(f"{CHAIN_FORMAT}:{run_id}".encode()).hex()


def record_digest(previous_hex: str, body: Mapping[str, Any]) -> str:
    """h_n = SM3(h_{n-1} || canonical(body)), hex; `body` holds exactly RECORD_FIELDS."""
    missing = [f for f in RECORD_FIELDS if f not in body]
    if missing:
        raise IntegrityError(f"record body lacks {', '.join(missing)}")
    covered = {f: body[f] for f in RECORD_FIELDS}
    return sm3(bytes.fromhex(previous_hex) + canonical_bytes(covered)).hex()


def body_from_json(run_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The chain body of a record as results.json shows it (detail as an object there)."""
    body = {f: data.get(f) for f in RECORD_FIELDS}
    body["run_id"] = run_id
    for key in ("value", "low", "high", "bench_time_s"):
        if isinstance(body[key], int | float) and not isinstance(body[key], bool):
            body[key] = finite_or_none(body[key])
    body["detail"] = normalise_detail(data.get("detail"))
    return body


# ----------------------------------------------------------------------------------- signing


@dataclass(frozen=True)
class RunSigner:
    """The key a session signs its manifest with; `kind` is `bench` (from the bench file) or `throwaway`."""

    keypair: Sm2KeyPair
    kind: str
    reference: str  # where the key came from, e.g. "key file /etc/rig/sign.hex" (never the key)

    @property
    def public_hex(self) -> str:
        """The public key, 128 hex digits x||y."""
        return self.keypair.public_hex

    def sign(self, manifest: Mapping[str, Any]) -> str:
        """SM2 signature (r||s hex) of the canonical manifest."""
        return sm2_sign(self.keypair, canonical_bytes(manifest)).hex()


def throwaway_signer() -> RunSigner:
    """A fresh keypair for this session only (the twin, or a bench without a signing key)."""
    return RunSigner(sm2_generate_keypair(), "throwaway", "generated for this session; private half discarded")


def signer_from_private_hex(private_hex: str, reference: str) -> RunSigner:
    """The bench's signing key (64 hex digits), read through a KeyRef."""
    try:
        return RunSigner(sm2_keypair_from_private(private_hex), "bench", reference)
    except RigError as exc:
        # The message of the crypto layer names lengths and ranges, never the digits.
        raise IntegrityError(f"{reference}: not a usable SM2 private key ({exc})") from None


def normalise_public_key(public_hex: str) -> str:
    """An SM2 public key as stored with runs: 128 lower-case hex digits x||y (an 04 prefix dropped)."""
    key = public_hex.strip().lower()
    return key[2:] if len(key) == 130 and key.startswith("04") else key


def key_fingerprint(public_hex: str) -> str:
    """Short, comparable name of a public key: the first 16 hex digits of its SM3."""
    return sm3(bytes.fromhex(public_hex)).hex()[:16]


def signature_valid(public_hex: str, manifest_text: str, signature_hex: str) -> bool:
    """True when `signature_hex` is the SM2 signature of the manifest text by `public_hex`."""
    try:
        return sm2_verify(public_hex, manifest_text.encode("utf-8"), bytes.fromhex(signature_hex))
    except (ValueError, RigError):
        return False
