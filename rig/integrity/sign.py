"""SM2 signing of a run (composition layer): the session's key, signatures over canonical JSON, key
fingerprints. Pure functions; imports neither rig.results nor pytest.

Manifest: what a finished session vouches for (every column of the run header, its sessions, items and
attachment hashes; the record count and chain head), signed with SM2 (SM3/Z_A, default signer ID).
Addendum: what the session vouches for once every report is written (the SM3 of every run-folder file, the
run's closing columns), signed with the same key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drivers.crypto import Sm2KeyPair, sm2_generate_keypair, sm2_keypair_from_private, sm2_sign, sm2_verify, sm3
from drivers.errors import RigError
from rig.integrity.chain import IntegrityError, canonical_bytes

MANIFEST_FORMAT = "meter-hil-rig/run-manifest/2"
ADDENDUM_FORMAT = "meter-hil-rig/run-addendum/1"
SIGNING_KEY_NAME = "signing"  # the bench file's `keys:` entry that holds the bench's SM2 private key

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
