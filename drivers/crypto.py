"""SM2/SM3/SM4 primitives for the ESAM emulation and the host side (drivers layer).

The only module that imports crypto libraries: cryptography (OpenSSL) for SM3/SM4, gmssl for SM2
and as an independent pure-Python cross-check. No key material ever appears in a message or repr.
"""

from __future__ import annotations

import random
import secrets
import string
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmssl import sm2 as _gm_sm2
from gmssl import sm3 as _gm_sm3
from gmssl import sm4 as _gm_sm4

from drivers.errors import SecurityError, ValidationError

__all__ = [
    "BLOCK_BYTES",
    "KEY_BYTES",
    "SM2_DEFAULT_UID",
    "SM2_SIGNATURE_BYTES",
    "SM3_DIGEST_BYTES",
    "Sm2KeyPair",
    "Sm4CbcMac",
    "gmssl_sm3",
    "gmssl_sm4_cbc_encrypt",
    "gmssl_sm4_ecb_encrypt",
    "mac4",
    "pad_iso9797_m2",
    "random_bytes",
    "sm2_generate_keypair",
    "sm2_keypair_from_private",
    "sm2_sign",
    "sm2_verify",
    "sm3",
    "sm4_cbc_decrypt",
    "sm4_cbc_encrypt",
    "sm4_cbc_mac",
    "sm4_ecb_decrypt",
    "sm4_ecb_encrypt",
    "unpad_iso9797_m2",
]

BLOCK_BYTES: Final = 16
KEY_BYTES: Final = 16
SM3_DIGEST_BYTES: Final = 32
SM2_SIGNATURE_BYTES: Final = 64
SM2_DEFAULT_UID: Final = b"1234567812345678"

# sm2p256v1 (GB/T 32918.5) as gmssl carries it; we use its table so both sides share one curve.
_CURVE: Final[dict[str, str]] = _gm_sm2.default_ecc_table
_N: Final = int(_CURVE["n"], 16)
_P: Final = int(_CURVE["p"], 16)
_A: Final = int(_CURVE["a"], 16)
_B: Final = int(_CURVE["b"], 16)
_SCALAR_HEX: Final = 64
_POINT_HEX: Final = 128
_HEX_DIGITS: Final = frozenset(string.hexdigits)
_SIGN_ATTEMPTS: Final = 4
_BAD_PADDING: Final = (
    "data does not end in ISO/IEC 9797-1 method-2 padding (wrong key, wrong IV or corrupted data)"
)


# ---------------------------------------------------------------------------------------------
# Input checks. Messages name lengths and types only, never the value: it may be a key.


def _require_bytes(name: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ValidationError(f"{name} must be bytes, got {type(value).__name__}")
    return bytes(value)


def _require_key(key: object) -> bytes:
    raw = _require_bytes("SM4 key", key)
    if len(raw) != KEY_BYTES:
        raise ValidationError(f"SM4 key must be {KEY_BYTES} bytes, got {len(raw)}")
    return raw


def _require_iv(iv: object) -> bytes:
    raw = _require_bytes("SM4 IV", iv)
    if len(raw) != BLOCK_BYTES:
        raise ValidationError(f"SM4 IV must be {BLOCK_BYTES} bytes, got {len(raw)}")
    return raw


def _require_blocks(data: object) -> bytes:
    raw = _require_bytes("data", data)
    if len(raw) % BLOCK_BYTES:
        raise ValidationError(
            f"SM4 data must be a multiple of {BLOCK_BYTES} bytes (no implicit padding), got {len(raw)}; "
            "pad it first, e.g. with pad_iso9797_m2"
        )
    return raw


def _require_block_size(block: object) -> int:
    if not isinstance(block, int) or isinstance(block, bool) or not 1 <= block <= 255:
        raise ValidationError(f"padding block size must be an int in 1..255 bytes, got {block!r}")
    return block


# ---------------------------------------------------------------------------------------------
# SM4 and SM3 through cryptography (OpenSSL): the fast path everything in the rig uses.


def _sm4(key: bytes, mode: modes.ECB | modes.CBC, data: bytes, *, encrypt: bool) -> bytes:
    cipher = Cipher(algorithms.SM4(key), mode)
    context = cipher.encryptor() if encrypt else cipher.decryptor()
    return context.update(data) + context.finalize()


def sm4_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    """SM4-ECB encrypt; 16-byte key, data a multiple of 16 bytes, no padding added."""
    return _sm4(_require_key(key), modes.ECB(), _require_blocks(data), encrypt=True)


def sm4_ecb_decrypt(key: bytes, data: bytes) -> bytes:
    """SM4-ECB decrypt; 16-byte key, data a multiple of 16 bytes, no padding removed."""
    return _sm4(_require_key(key), modes.ECB(), _require_blocks(data), encrypt=False)


def sm4_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(BLOCK_BYTES)) -> bytes:
    """SM4-CBC encrypt; 16-byte key and IV, data a multiple of 16 bytes, no padding added."""
    return _sm4(_require_key(key), modes.CBC(_require_iv(iv)), _require_blocks(data), encrypt=True)


def sm4_cbc_decrypt(key: bytes, data: bytes, iv: bytes = bytes(BLOCK_BYTES)) -> bytes:
    """SM4-CBC decrypt; 16-byte key and IV, data a multiple of 16 bytes, no padding removed."""
    return _sm4(_require_key(key), modes.CBC(_require_iv(iv)), _require_blocks(data), encrypt=False)


def pad_iso9797_m2(data: bytes, block: int = BLOCK_BYTES) -> bytes:
    """Append 0x80 and zeros up to a multiple of `block` bytes (always at least one byte)."""
    raw = _require_bytes("data", data)
    fill = _require_block_size(block) - len(raw) % block  # 1..block: aligned data gains a whole block
    return raw + b"\x80" + bytes(fill - 1)


def unpad_iso9797_m2(data: bytes, block: int = BLOCK_BYTES) -> bytes:
    """Remove ISO/IEC 9797-1 method-2 padding; SecurityError if it is not there."""
    raw = _require_bytes("data", data)
    _require_block_size(block)
    body = raw.rstrip(b"\x00")
    # One message for every failure: which check failed must not become a padding oracle.
    if not raw or len(raw) % block or not body.endswith(b"\x80") or len(raw) - len(body) > block - 1:
        raise SecurityError(_BAD_PADDING)
    return body[:-1]


def sm4_cbc_mac(key: bytes, data: bytes, iv: bytes = bytes(BLOCK_BYTES)) -> bytes:
    """16-byte SM4 CBC-MAC (ISO/IEC 9797-1 MAC 1, padding method 2) of data of any length."""
    return sm4_cbc_encrypt(key, pad_iso9797_m2(data), iv)[-BLOCK_BYTES:]


def mac4(key: bytes, data: bytes) -> bytes:
    """The 4-byte MAC of the ESAM emulation: first 4 bytes of the SM4 CBC-MAC with a zero IV."""
    return sm4_cbc_mac(key, data)[:4]


_PADDINGS: Final = tuple(b"\x80" + bytes(BLOCK_BYTES - 1 - n) for n in range(BLOCK_BYTES))


class Sm4CbcMac:
    """A keyed SM4 CBC-MAC engine (zero IV, ISO/IEC 9797-1 padding method 2) for many messages under one
    key: one OpenSSL CBC context kept open, its chaining value cancelled into each message's first block,
    so a MAC costs one call instead of a new cipher. Not thread-safe; the key never shows in its repr."""

    def __init__(self, key: bytes) -> None:
        self._context = Cipher(algorithms.SM4(_require_key(key)), modes.CBC(bytes(BLOCK_BYTES))).encryptor()
        self._chain = 0  # the context's last output block, as an int

    def __repr__(self) -> str:
        return "Sm4CbcMac(<key hidden>)"

    def mac(self, data: bytes) -> bytes:
        """16-byte CBC-MAC of `data` (same as `sm4_cbc_mac(key, data)`)."""
        raw = data if type(data) is bytes else _require_bytes("data", data)
        padded = raw + _PADDINGS[len(raw) % BLOCK_BYTES]  # method 2, as pad_iso9797_m2 without its checks
        first = (int.from_bytes(padded[:BLOCK_BYTES], "big") ^ self._chain).to_bytes(BLOCK_BYTES, "big")
        out = self._context.update(first + padded[BLOCK_BYTES:])
        last = out[-BLOCK_BYTES:]
        self._chain = int.from_bytes(last, "big")
        return last

    def mac4(self, data: bytes) -> bytes:
        """The emulation's 4-byte MAC of `data` (same as `mac4(key, data)`)."""
        return self.mac(data)[:4]


def sm3(data: bytes) -> bytes:
    """SM3 digest (32 bytes) of data."""
    digest = hashes.Hash(hashes.SM3())
    digest.update(_require_bytes("data", data))
    return digest.finalize()


def random_bytes(n: int, rng: random.Random | None = None) -> bytes:
    """n random bytes: from `secrets` unless a seeded `rng` is given (twin reproducibility only)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValidationError(f"random byte count must be an int >= 0, got {n!r}")
    return secrets.token_bytes(n) if rng is None else rng.randbytes(n)


# ---------------------------------------------------------------------------------------------
# SM2 through gmssl (cryptography has no SM2). gmssl 3.2 quirks handled here:
# - CryptSM2.__init__ does public_key.lstrip("04"), which also eats leading '0'/'4' digits of x
#   (1 key in 256 starts with "04"), so the engine gets its public key assigned afterwards;
# - its default nonce comes from random.choice (Mersenne Twister, predictable; a known nonce
#   reveals the private key), so we always pass a nonce from `secrets`;
# - verify() does not check 1 <= r, s < n (GB/T 32918.2 B1, B2), so we do;
# - _sm3_z hard-codes the signer ID 1234567812345678, so only that ID is supported.


def _parse_scalar_hex(text: object) -> int:
    if not isinstance(text, str) or len(text) != _SCALAR_HEX or not _HEX_DIGITS.issuperset(text):
        length = len(text) if isinstance(text, str) else type(text).__name__
        raise ValidationError(f"SM2 private key must be {_SCALAR_HEX} hex characters (got {length})")
    d = int(text, 16)
    # n-1 is excluded too: signing needs (1 + d) to be invertible mod n.
    if not 1 <= d <= _N - 2:
        raise ValidationError("SM2 private key must lie in [1, n-2] of sm2p256v1")
    return d


def _parse_public_hex(text: object, *, allow_prefix: bool) -> str:
    if allow_prefix and isinstance(text, str) and len(text) == _POINT_HEX + 2 and text[:2] == "04":
        text = text[2:]
    if not isinstance(text, str) or len(text) != _POINT_HEX or not _HEX_DIGITS.issuperset(text):
        length = len(text) if isinstance(text, str) else type(text).__name__
        raise ValidationError(
            f"SM2 public key must be {_POINT_HEX} hex characters x||y (got {length})"
            + ("; a 04 prefix is accepted" if allow_prefix else "; without the 04 prefix")
        )
    x, y = int(text[:_SCALAR_HEX], 16), int(text[_SCALAR_HEX:], 16)
    if not (x < _P and y < _P and (y * y - (x * x * x + _A * x + _B)) % _P == 0):
        raise ValidationError("SM2 public key is not a point on sm2p256v1")
    return text.lower()


def _gm_engine(private_hex: str, public_hex: str) -> Any:
    engine = _gm_sm2.CryptSM2(private_key=private_hex, public_key="")
    engine.public_key = public_hex  # after __init__, so gmssl's lstrip("04") never sees it
    return engine


def _derive_public_hex(d: int) -> str:
    point: str | None = _gm_engine("", "")._kg(d, _CURVE["g"])
    if point is None:  # only for d = 0 mod n, which _parse_scalar_hex already excludes
        raise SecurityError("SM2 public key derivation failed in gmssl")
    return point.lower()


@dataclass(frozen=True)
class Sm2KeyPair:
    """An SM2 key pair on sm2p256v1 as gmssl expects it; the private half never shows in repr."""

    private_hex: str = field(repr=False)  # 64 hex digits
    public_hex: str  # 128 hex digits x||y, uncompressed, without the 04 prefix

    def __post_init__(self) -> None:
        d = _parse_scalar_hex(self.private_hex)
        public = _parse_public_hex(self.public_hex, allow_prefix=False)
        # Costs one point multiplication (~6 ms) but turns a mismatched pair into an error here
        # instead of signatures that silently never verify.
        if _derive_public_hex(d) != public:
            raise ValidationError("SM2 public key does not belong to the private key")
        object.__setattr__(self, "private_hex", self.private_hex.lower())
        object.__setattr__(self, "public_hex", public)


def sm2_keypair_from_private(private_hex: str) -> Sm2KeyPair:
    """The key pair of a 64-hex-digit SM2 private key (e.g. read from the bench's key file)."""
    d = _parse_scalar_hex(private_hex)
    return Sm2KeyPair(f"{d:064x}", _derive_public_hex(d))


def sm2_generate_keypair(rng: random.Random | None = None) -> Sm2KeyPair:
    """A new SM2 key pair from `secrets`; a seeded `rng` gives the twin reproducible throwaway keys."""
    d = secrets.randbelow(_N - 2) + 1 if rng is None else rng.randrange(1, _N - 1)
    return Sm2KeyPair(f"{d:064x}", _derive_public_hex(d))


def _require_default_uid(uid: object) -> None:
    raw = _require_bytes("SM2 signer ID", uid)
    if raw != SM2_DEFAULT_UID:
        raise ValidationError(
            f"only the default SM2 signer ID {SM2_DEFAULT_UID.decode()} is supported "
            f"(gmssl 3.2 hard-codes it in Z_A); got a {len(raw)}-byte ID"
        )


def _sign_with_nonce(keypair: Sm2KeyPair, message: bytes, k: int) -> bytes | None:
    # gmssl computes e = SM3(Z_A || M) and signs it; None when this k hits r = 0, r + k = n or s = 0.
    signature: str | None = _gm_engine(keypair.private_hex, keypair.public_hex).sign_with_sm3(
        message, f"{k:064x}"
    )
    return None if signature is None else bytes.fromhex(signature)


def sm2_sign(keypair: Sm2KeyPair, message: bytes, uid: bytes = SM2_DEFAULT_UID) -> bytes:
    """SM2 signature r||s (64 bytes) of message with the SM3 Z_A step (GB/T 32918.2)."""
    if not isinstance(keypair, Sm2KeyPair):
        raise ValidationError(f"keypair must be an Sm2KeyPair, got {type(keypair).__name__}")
    raw = _require_bytes("message", message)
    _require_default_uid(uid)
    for _ in range(_SIGN_ATTEMPTS):  # a rejected k has probability ~2^-256; the standard says draw again
        signature = _sign_with_nonce(keypair, raw, secrets.randbelow(_N - 1) + 1)
        if signature is not None:
            return signature
    raise SecurityError(f"SM2 signing rejected {_SIGN_ATTEMPTS} fresh nonces in a row; gmssl is broken")


def sm2_verify(public_hex: str, message: bytes, signature: bytes, uid: bytes = SM2_DEFAULT_UID) -> bool:
    """True if signature (r||s, 64 bytes) is a valid SM2/SM3 signature of message by public_hex."""
    public = _parse_public_hex(public_hex, allow_prefix=True)
    raw = _require_bytes("message", message)
    sig = _require_bytes("SM2 signature", signature)
    if len(sig) != SM2_SIGNATURE_BYTES:
        raise ValidationError(f"SM2 signature must be {SM2_SIGNATURE_BYTES} bytes r||s, got {len(sig)}")
    _require_default_uid(uid)
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    if not (1 <= r < _N and 1 <= s < _N):
        return False
    return bool(_gm_engine("", public).verify_with_sm3(sig.hex(), raw))


# ---------------------------------------------------------------------------------------------
# Cross-check namespace: gmssl's pure-Python SM3/SM4 (~0.15 MB/s), for tests against the fast path.


def _gm_sm4_engine(key: bytes) -> Any:
    engine = _gm_sm4.CryptSM4()
    engine.set_key(key, _gm_sm4.SM4_ENCRYPT)
    return engine


def gmssl_sm4_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    """SM4-ECB encrypt with gmssl (cross-check only); same rules and output as sm4_ecb_encrypt."""
    raw = _require_blocks(data)
    out: bytes = _gm_sm4_engine(_require_key(key)).crypt_ecb(raw)
    # gmssl appends a whole PKCS#7 block to aligned input (its ZERO mode does too); ECB blocks are
    # independent, so the first len(data) bytes are the unpadded ciphertext.
    return out[: len(raw)]


def gmssl_sm4_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(BLOCK_BYTES)) -> bytes:
    """SM4-CBC encrypt with gmssl (cross-check only); same rules and output as sm4_cbc_encrypt."""
    raw = _require_blocks(data)
    out: bytes = _gm_sm4_engine(_require_key(key)).crypt_cbc(_require_iv(iv), raw)
    # crypt_cbc always appends a PKCS#7 block; a CBC block depends only on the blocks before it,
    # so dropping the appended block leaves the unpadded ciphertext.
    return out[: len(raw)]


def gmssl_sm3(data: bytes) -> bytes:
    """SM3 digest with gmssl (cross-check only)."""
    # sm3_hash appends its padding to the list it is given, so it gets a fresh one.
    digest_hex: str = _gm_sm3.sm3_hash(list(_require_bytes("data", data)))
    return bytes.fromhex(digest_hex)
