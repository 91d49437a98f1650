"""Helpers of the DL/T 698.45 plans: the position's 698 link over a transport, and reading values in
engineering units or the DAR a meter refused them with; the software upgrade's file transfer (F001)."""

from __future__ import annotations

from collections.abc import Iterable

from dlt698 import Omd

from drivers.crypto import sm3
from drivers.dlt698 import DarRefused, Data, Dlt698Link, layout, oad, scaled
from drivers.errors import RigError
from rig.bench import Position
from testplans.dlt698.spec import DEVICE
from testplans.transports import UART


def link698_of(position: Position, transport: str) -> Dlt698Link | None:
    """The position's DL/T 698.45 link over `transport` (None: the bench file gives none)."""
    return position.link698 if transport == UART else position.ble698


def read_scaled(link: Dlt698Link, oi: int, wiring: str = "1P2W") -> float:
    """The first value of attribute 2 of `oi` in the standard's unit (the total of an energy or power array),
    its array shape checked against the meter's wiring."""
    return scaled(oad(oi), link.get(oad(oi)), layout(three_phase=wiring != "1P2W")).value


def read_or_refusal(link: Dlt698Link, oi: int, attribute: int = 2) -> Data | int:
    """The attribute's value, or the DAR the meter refused it with; RigError for anything else."""
    try:
        return link.get(oad(oi, attribute))
    except DarRefused as refused:
        return refused.dar


# ---------------------------------------------------------------- software upgrade (F001 file transfer)

FILE_TRANSFER = 0xF001
START, WRITE, CHECK, EXECUTE = 7, 8, 10, 11  # F001 methods: start transfer, write block, check file, execute
BLOCK_SIZE = 200  # bytes per block: well inside the negotiated APDU size (1024)
# The check the start announces: type 0 with the file's SM3 digest (the vendor's choice for its meters).
CHECK_TYPE = 0
SIGNATURE_BYTES = 64  # the vendor's SM2 signature (r || s) closes the image


def spoiled(image: bytes, how: str) -> bytes:
    """The image spoiled as a tampered or broken delivery would be: 'corrupt' flips bytes in its middle (the
    digest the rig sends is of the bytes sent, so only the signature catches them), 'unsigned' has its
    signature stripped."""
    if how == "unsigned":
        return image[:-SIGNATURE_BYTES]
    middle = len(image) // 2
    return image[:middle] + bytes(b ^ 0xFF for b in image[middle:middle + 4]) + image[middle + 4:]


def file_action(link: Dlt698Link, method: int, parameter: Data | None = None) -> int:
    """One F001 method; its DAR (0: done)."""
    try:
        link.action(Omd(oi=FILE_TRANSFER, method=method, mode=0), parameter)
    except DarRefused as refused:
        return refused.dar
    return 0


def start_transfer(link: Dlt698Link, image: bytes, version: str) -> int:
    """F001 start: the file's information, the block size and the check value; its DAR."""
    info = Data.structure([Data.visible_string("meter-firmware.bin"), Data.visible_string("/firmware"),
                           Data.uint32(len(image)), Data.bit_string(3, b"\xe0"), Data.visible_string(version),
                           Data.enumeration(0)])
    check = Data.structure([Data.enumeration(CHECK_TYPE), Data.octet_string(sm3(image))])
    return file_action(link, START, Data.structure([info, Data.uint16(BLOCK_SIZE), check]))


def block_count(image: bytes) -> int:
    """Blocks the image takes."""
    return (len(image) + BLOCK_SIZE - 1) // BLOCK_SIZE


def write_blocks(link: Dlt698Link, image: bytes, blocks: Iterable[int]) -> list[int]:
    """F001 write of each block; their DARs."""
    return [file_action(link, WRITE, Data.structure([
        Data.uint16(n), Data.octet_string(image[n * BLOCK_SIZE:(n + 1) * BLOCK_SIZE])])) for n in blocks]


def blocks_missing(link: Dlt698Link, image: bytes) -> list[int]:
    """The blocks the meter says it has not received (F001 attribute 4, one bit per block, first block in the
    top bit); every block when it keeps none."""
    status = link.get(oad(FILE_TRANSFER, 4)).value
    bits = bytes(getattr(status, "value", b"") or b"")
    return [n for n in range(block_count(image)) if n // 8 >= len(bits) or not bits[n // 8] & (0x80 >> (n % 8))]


def software_version(link: Dlt698Link) -> tuple[str, str]:
    """The running image's software version and checksum, as the device object (4300 attribute 3) says."""
    fields = link.get(oad(DEVICE, 3)).value
    if not isinstance(fields, list) or len(fields) < 6:
        raise RigError(f"meter {link.server}: 4300 attribute 3 is not the version structure: {fields!r}")
    return str(fields[1].value).strip(), str(fields[5].value).strip()
