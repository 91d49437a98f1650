"""Tamper evidence for runs (composition layer), one job per module:

- chain: canonical bytes and the SM3 record chain (pure);
- sign: the session's SM2 key and signatures (pure);
- seal: what a session signs (manifest, addendum) built from the journal, and storing it;
- report, compare, checks, verify: `rig verify`, a table of checks (CHECKS), one row per claim.

Only the pure names are imported here (rig.results imports the chain; seal and verify import rig.results):
import the journal-side ones from their modules, e.g. `from rig.integrity.verify import verify_run`.
"""

from rig.integrity.chain import (
    CHAIN_FORMAT,
    RECORD_FIELDS,
    IntegrityError,
    body_from_json,
    canonical_bytes,
    canonical_json,
    finite_or_none,
    genesis,
    normalise_detail,
    record_digest,
)
from rig.integrity.sign import (
    ADDENDUM_FORMAT,
    MANIFEST_FORMAT,
    SIGNING_KEY_NAME,
    RunSigner,
    key_fingerprint,
    normalise_public_key,
    signature_valid,
    signer_from_private_hex,
    throwaway_signer,
)

__all__ = [
    "ADDENDUM_FORMAT", "CHAIN_FORMAT", "MANIFEST_FORMAT", "RECORD_FIELDS", "SIGNING_KEY_NAME", "IntegrityError",
    "RunSigner", "body_from_json", "canonical_bytes", "canonical_json", "finite_or_none", "genesis",
    "key_fingerprint", "normalise_detail", "normalise_public_key", "record_digest", "signature_valid",
    "signer_from_private_hex", "throwaway_signer",
]
