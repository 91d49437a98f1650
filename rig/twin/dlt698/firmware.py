"""The twin meter's software upgrade over DL/T 698.45 file transfer (object F001), and its two image banks.

Twin side. DL/T 698.45 defines F001's start (method 7) and write-block (method 8) and the block status
(attribute 4); what a meter checks and how it switches images is the vendor's. This twin's emulation, to be
followed by a host:
- Image: b"TWFW" || software version (4 ASCII) || body || SM2 signature (64, r||s, GB/T 32918 with SM3 and the
  default signer ID) over everything before it, by the twin's firmware-signing key (derived from the twin's
  seed at run time: `firmware_signing_keypair`).
- Start (7): {file info {source, target, size, attribute, version, type}, block size, check {type, value}};
  check type 0 is the image's SM3 digest (this emulation's choice). A new start drops a transfer in progress.
- Write (8): {block number from 0, block data}; blocks are kept in flash and survive a power loss (a host reads
  attribute 4, the blocks received, and resumes).
- Check (10): the whole file against the start's check value, its format and its signature: DAR 0, or DAR 255
  (corrupt or unsigned), or DAR 13 (not every block received).
- Execute (11): the checked image goes to the spare bank and the meter restarts into it after APPLY_S of
  bench time; a power loss before that leaves the old image running (rolled back, never bricked).
The running image's version is in 4300 attribute 3 (software version field) and the CONNECT factory version;
its checksum (first 4 bytes of its SM3, hex) in the extended-information field.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from drivers.crypto import Sm2KeyPair, sm2_generate_keypair, sm2_sign, sm2_verify, sm3
from drivers.errors import SecurityError

if TYPE_CHECKING:
    from rig.config.dlt698 import Dlt698Knobs

MAGIC: Final = b"TWFW"
SIGNATURE_BYTES: Final = 64
APPLY_S: Final = 2.0  # bench time from execute until the meter runs the new image
FACTORY_VERSION: Final = "0001"
FACTORY_BODY: Final = b"twin meter firmware as delivered"
UPGRADE_VERSION: Final = "0002"  # the version of the image the twin hands a bench for its upgrade plan

# DAR of the file-transfer methods
DAR_OK: Final = 0
DAR_NOT_IN_TRANSFER: Final = 13  # not in block-write state
DAR_BAD_BLOCK: Final = 14  # invalid block number
DAR_OUT_OF_RANGE: Final = 8
DAR_REFUSED: Final = 255


def firmware_signing_keypair(seed: int) -> Sm2KeyPair:
    """The twin's throwaway firmware-signing key pair, derived from its seed at run time (never stored)."""
    return sm2_generate_keypair(random.Random(f"meter-hil-rig twin firmware signing key, seed {seed}"))


def image_checksum(image: bytes) -> str:
    """The checksum a meter reports for an image: first 4 bytes of its SM3, hex (8 characters)."""
    return sm3(image)[:4].hex().upper()


@dataclass
class Transfer:
    """A file transfer in progress (kept in flash)."""

    size: int
    block_size: int
    check_value: bytes
    blocks: dict[int, bytes] = field(default_factory=dict)
    checked: bool = False

    @property
    def block_count(self) -> int:
        """Blocks the file takes."""
        return (self.size + self.block_size - 1) // self.block_size

    def file(self) -> bytes:
        """The blocks received, in order."""
        return b"".join(self.blocks[n] for n in sorted(self.blocks))[:self.size]


@dataclass
class Firmware:
    """The meter's image banks and the transfer state."""

    knobs: Dlt698Knobs
    public_hex: str
    active: bytes = MAGIC + FACTORY_VERSION.encode() + FACTORY_BODY + bytes(SIGNATURE_BYTES)
    transfer: Transfer | None = None
    applying_until_s: float | None = None
    pending: bytes | None = None
    bricked: bool = False
    reported_version: str = FACTORY_VERSION
    upgrades: int = 0
    rollbacks: int = 0

    @property
    def version(self) -> str:
        """The software version the meter reports."""
        return self.reported_version

    @property
    def checksum(self) -> str:
        """The running image's checksum as reported."""
        return image_checksum(self.active)

    def start(self, size: int, block_size: int, check_value: bytes) -> int:
        """Method 7."""
        if not 0 < size <= 1 << 20 or not 0 < block_size <= 1024:
            return DAR_OUT_OF_RANGE
        self.transfer = Transfer(size, block_size, check_value)
        return DAR_OK

    def write(self, number: int, data: bytes) -> int:
        """Method 8."""
        transfer = self.transfer
        if transfer is None or self.applying_until_s is not None:
            return DAR_NOT_IN_TRANSFER
        last = transfer.block_count - 1
        expected = transfer.size - last * transfer.block_size if number == last else transfer.block_size
        if not 0 <= number <= last or len(data) != expected:
            return DAR_BAD_BLOCK
        transfer.blocks[number] = bytes(data)
        transfer.checked = False
        return DAR_OK

    def block_status(self) -> bytes:
        """Attribute 4: one bit per block received (first block in the top bit)."""
        transfer = self.transfer
        if transfer is None:
            return b""
        bits = bytearray((transfer.block_count + 7) // 8)
        for n in transfer.blocks:
            bits[n // 8] |= 0x80 >> (n % 8)
        return bytes(bits)

    def _valid(self, image: bytes) -> bool:
        if len(image) < len(MAGIC) + 4 + SIGNATURE_BYTES or not image.startswith(MAGIC):
            return False
        try:
            return sm2_verify(self.public_hex, image[:-SIGNATURE_BYTES], image[-SIGNATURE_BYTES:])
        except SecurityError:
            return False

    def check(self) -> int:
        """Method 10."""
        transfer = self.transfer
        if transfer is None or len(transfer.blocks) != transfer.block_count:
            return DAR_NOT_IN_TRANSFER
        image = transfer.file()
        good = sm3(image) == transfer.check_value and self._valid(image)
        if not good and not self.knobs.accepts_corrupt_image:
            return DAR_REFUSED
        transfer.checked = True
        return DAR_OK

    def execute(self, now_s: float) -> int:
        """Method 11: restart into the checked image after APPLY_S."""
        transfer = self.transfer
        if transfer is None or not transfer.checked:
            return DAR_NOT_IN_TRANSFER
        self.pending = transfer.file()
        self.applying_until_s = now_s + APPLY_S
        return DAR_OK

    def step(self, end_s: float, powered: bool) -> None:
        """The switch to the new image completes, or a power loss interrupts it."""
        if self.applying_until_s is None or self.pending is None:
            return
        if not powered:
            self.applying_until_s = None
            if self.knobs.loses_old_image_on_interruption:
                self.bricked = True  # the old bank was erased first: nothing valid to boot
            else:
                self.rollbacks += 1  # the old bank is untouched: it boots the old image
            self.pending = None
            return
        if end_s >= self.applying_until_s:
            new, self.pending, self.applying_until_s = self.pending, None, None
            self.active = new
            self.transfer = None
            self.upgrades += 1
            if not self.knobs.version_not_updated:
                self.reported_version = new[len(MAGIC):len(MAGIC) + 4].decode("ascii", "replace")


def build_image(keypair: Sm2KeyPair, version: str, body: bytes) -> bytes:
    """A signed image (what a vendor ships; the twin's tests build them with the twin's key)."""
    unsigned = MAGIC + version.encode("ascii")[:4].ljust(4, b"0") + body
    return unsigned + sm2_sign(keypair, unsigned)


def upgrade_image(keypair: Sm2KeyPair, seed: int) -> bytes:
    """The signed image the twin hands the rig as the manufacturer's (version UPGRADE_VERSION): what a lab
    receives from a vendor, so a plan can load it without the signing key."""
    body = random.Random(f"meter-hil-rig twin firmware image, seed {seed}").randbytes(700)
    return build_image(keypair, UPGRADE_VERSION, body)
