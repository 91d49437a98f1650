"""Software upgrade over F001 file transfer, driven by the PyPI `dlt698` client on the twin's serial port:
a signed image is taken, reported (version, checksum) and survives a power loss mid-transfer (resumed) and
mid-switch (rolled back); corrupt and unsigned images are refused; the knobs break each of these."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.crypto import sm3
from rig.twin.dlt698.firmware import build_image, firmware_signing_keypair, image_checksum
from rig.twin.runtime import Twin
from tests.twin_dlt698.test_interop import _client, _energise, _twin

dlt698 = pytest.importorskip("dlt698")
from dlt698 import Data, Oad, Omd  # noqa: E402

BLOCK = 200
BODY = bytes(range(256)) * 4  # 1 KiB: six blocks with the header and signature


def _image(version: str = "0002") -> bytes:
    return build_image(firmware_signing_keypair(1), version, BODY)  # the bench file's twin seed is 1


def _act(client: object, method: int, parameter: Data) -> int:
    return client.action(Omd(oi=0xF001, method=method, mode=0), parameter).dar  # type: ignore[attr-defined]


def _start(client: object, image: bytes) -> int:
    info = Data.structure([Data.visible_string("fw.bin"), Data.visible_string("/fw"), Data.uint32(len(image)),
                           Data.bit_string(3, b"\xe0"), Data.visible_string(image[4:8].decode()),
                           Data.enumeration(0)])
    check = Data.structure([Data.enumeration(0), Data.octet_string(sm3(image))])
    return _act(client, 7, Data.structure([info, Data.uint16(BLOCK), check]))


def _write(client: object, image: bytes, blocks: range | list[int]) -> list[int]:
    return [_act(client, 8, Data.structure([Data.uint16(n), Data.octet_string(image[n * BLOCK:(n + 1) * BLOCK])]))
            for n in blocks]


def _version(client: object) -> tuple[str, str]:
    fields = client.get(Oad(oi=0x4300, attribute=3)).require_data().value  # type: ignore[attr-defined]
    return fields[1].value, fields[5].value


def _outage(twin: Twin) -> None:
    twin.world.output_on = False
    twin.clock.sleep(120.0)
    twin.world.output_on = True
    twin.clock.sleep(30.0)


@pytest.fixture
def twin() -> Iterator[Twin]:
    served = _twin()
    try:
        _energise(served, 30.0)
        yield served
    finally:
        served.stop()


def _blocks(image: bytes) -> int:
    return (len(image) + BLOCK - 1) // BLOCK


def test_upgrade_resumes_after_a_power_loss_and_reports_the_new_version(twin: Twin) -> None:
    image = _image()
    client = _client(twin)
    try:
        assert _version(client)[0] == "0001"
        assert _start(client, image) == 0
        assert _write(client, image, range(3)) == [0, 0, 0]
    finally:
        client.close()
    _outage(twin)  # the blocks are in flash
    client = _client(twin)
    try:
        status = client.get(Oad(oi=0xF001, attribute=4)).require_data()
        assert _act(client, 10, Data.null()) == 13  # not every block yet
        received = status.value  # one bit per block, the first block in the top bit: 0, 1 and 2 arrived
        assert received.bit_count == 8 and bytes(received.value) == b"\xe0"
        assert _write(client, image, range(3, _blocks(image))) == [0] * (_blocks(image) - 3)
        assert _act(client, 10, Data.null()) == 0
        assert _act(client, 11, Data.null()) == 0
    finally:
        client.close()
    twin.clock.sleep(5.0)
    client = _client(twin)
    try:
        assert _version(client) == ("0002", image_checksum(image))
    finally:
        client.close()


@pytest.mark.parametrize("spoil", ["corrupt", "unsigned"])
def test_corrupt_or_unsigned_image_refused(twin: Twin, spoil: str) -> None:
    image = bytearray(_image())
    if spoil == "corrupt":
        image[100] ^= 0x01  # the digest sent matches the bytes sent: only the signature catches it
    else:
        image[-64:] = bytes(64)
    client = _client(twin)
    try:
        assert _start(client, bytes(image)) == 0
        assert set(_write(client, bytes(image), range(_blocks(image)))) == {0}
        assert _act(client, 10, Data.null()) == 255
        assert _act(client, 11, Data.null()) == 13  # nothing checked to execute
        assert _version(client)[0] == "0001"
    finally:
        client.close()


def test_power_loss_while_switching_rolls_back(twin: Twin) -> None:
    image = _image()
    client = _client(twin)
    try:
        old = _version(client)
        assert _start(client, image) == 0
        _write(client, image, range(_blocks(image)))
        assert _act(client, 10, Data.null()) == 0
        assert _act(client, 11, Data.null()) == 0
    finally:
        client.close()
    _outage(twin)  # mains goes before the switch completes
    client = _client(twin)
    try:
        assert _version(client) == old
    finally:
        client.close()


@pytest.mark.parametrize("defect", ["accepts_corrupt_image", "loses_old_image_on_interruption", "version_not_updated"])
def test_upgrade_knobs(defect: str) -> None:
    twin = _twin(f"twin.meter.dlt698.{defect}=true")
    try:
        _energise(twin, 30.0)
        image = bytearray(_image())
        if defect == "accepts_corrupt_image":
            image[-64:] = bytes(64)
        client = _client(twin)
        try:
            assert _start(client, bytes(image)) == 0
            _write(client, bytes(image), range(_blocks(image)))
            assert _act(client, 10, Data.null()) == 0
            assert _act(client, 11, Data.null()) == 0
        finally:
            client.close()
        if defect == "loses_old_image_on_interruption":
            _outage(twin)
            with pytest.raises(Exception):  # noqa: B017 - whatever the package raises: the meter is silent
                _client(twin, timeout_s=0.5)
            return
        twin.clock.sleep(5.0)
        client = _client(twin)
        try:
            version, checksum = _version(client)
        finally:
            client.close()
        assert checksum == image_checksum(bytes(image))  # the new image runs
        assert version == ("0001" if defect == "version_not_updated" else "0002")
    finally:
        twin.stop()
