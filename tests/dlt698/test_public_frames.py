"""Public DL/T 698.45 example frames decode to the objects and values they were published with, through the
rig's host side (drivers.dlt698, on the `dlt698` package) and through the twin's independent codec; and the
host side encodes the same requests byte for byte (HCS and FCS included).

Where each frame comes from (public sources found with the search tool; stored file ids of its code index):
- ANNEX_H3_*: the standard's Annex H.3 example (master station asks the address, OAD 40010200, wildcard SA),
  as quoted in the comments of a public DL/T 698.45 meter firmware (get_request_normal handler; index file
  44257402759, citing "698面向对象的用电信息数据交换协议（20210910）, 附录H3").
- TOOL_*: request/response pairs from a public test-line parser's example-frame tests (index file
  59681537638: "虚拟表地址请求/响应 (40 01 02 00)", "标准698抄表(正向有功)", "射频参数广播配置确认").
- MASTER_READ_ADDRESS: the read-address frame hard-coded in several public master-station tools (index files
  21217602709, 21258606603, 430529981), client address 10H.
"""

from __future__ import annotations

import pytest
from dlt698 import codec
from dlt698._native import AddressType, GetRequest, GetResponse, ServerAddress, SetResponse

from drivers.dlt698 import Dlt698Frame, FrameSplitter, address_bytes, oad_text
from drivers.dlt698.link import Attempt698, Exchange698
from rig.twin.dlt698 import codec as twin_codec

ANNEX_H3_REQUEST = "68 17 00 43 45 AA AA AA AA AA AA 00 5B 4F 05 01 25 40 01 02 00 00 0A 92 16"
ANNEX_H3_RESPONSE = ("68 21 00 C3 05 33 09 20 39 00 00 00 4A 55 85 01 25 40 01 02 00 01 09 06 00 00 39 20 09 33 "
                     "00 00 B2 D8 16")
TOOL_ADDRESS_REQUEST = "68 17 00 43 45 AA AA AA AA AA AA 10 DA 5F 05 01 01 40 01 02 00 00 C6 07 16"
TOOL_ADDRESS_RESPONSE = ("68 21 00 C3 05 10 00 00 00 00 00 10 55 7E 85 01 41 40 01 02 00 01 09 06 00 00 00 00 00 "
                         "10 00 00 DD BA 16")
TOOL_ENERGY_REQUEST = "68 17 00 43 05 05 01 00 00 00 00 00 FA 8D 05 01 01 00 10 02 00 00 FE 19 16"
TOOL_SET_CONFIRM = "68 19 00 C3 05 01 00 00 00 00 00 10 2C 7B 86 01 01 FF F0 01 00 00 00 00 FA A3 16"
MASTER_READ_ADDRESS = "68 17 00 43 45 AA AA AA AA AA AA 10 DA 5F 05 01 03 40 01 02 00 00 90 0F 16"

ALL = [ANNEX_H3_REQUEST, ANNEX_H3_RESPONSE, TOOL_ADDRESS_REQUEST, TOOL_ADDRESS_RESPONSE, TOOL_ENERGY_REQUEST,
       TOOL_SET_CONFIRM, MASTER_READ_ADDRESS]


def _frame(text: str) -> Dlt698Frame:
    (item,) = FrameSplitter().feed(b"\xfe\xfe\xfe\xfe" + bytes.fromhex(text))
    assert isinstance(item, Dlt698Frame), item
    return item


@pytest.mark.parametrize("text", ALL)
def test_public_frames_pass_both_codecs_with_the_same_fields(text: str) -> None:
    ours = _frame(text)
    theirs = twin_codec.parse_frame(bytes.fromhex(text))
    assert ours.control == theirs.control
    assert address_bytes(ours.server) == theirs.server_address
    assert ours.client == theirs.client_address
    assert ours.payload == theirs.apdu


@pytest.mark.parametrize("text", ALL)
def test_a_flipped_bit_is_named_hcs_or_fcs(text: str) -> None:
    raw = bytearray(bytes.fromhex(text))
    raw[-3] ^= 0x01  # the FCS itself
    (bad,) = FrameSplitter().feed(bytes(raw))
    assert not isinstance(bad, Dlt698Frame) and "FCS" in bad.reason
    raw = bytearray(bytes.fromhex(text))
    raw[5] ^= 0x01  # a server address byte, under the HCS
    (bad,) = FrameSplitter().feed(bytes(raw))
    assert not isinstance(bad, Dlt698Frame) and "HCS" in bad.reason


def test_annex_h3_request_is_a_wildcard_get_of_the_comm_address_and_encodes_back() -> None:
    frame = _frame(ANNEX_H3_REQUEST)
    assert frame.address_type == "wildcard" and frame.server == "AAAAAAAAAAAA"
    assert frame.client == 0x00 and frame.control == 0x43
    message = codec.decode_apdu(frame.payload)
    assert isinstance(message, GetRequest)
    assert [oad_text(a) for a in message.attributes] == ["40010200"]
    assert message.piid == 0x25
    # The host side builds the same request byte for byte.
    again = Dlt698Frame.request("AAAAAAAAAAAA", 0x00, frame.payload, address_type="wildcard")
    assert again.raw == bytes.fromhex(ANNEX_H3_REQUEST)


def test_annex_h3_response_carries_the_meter_address_it_comes_from() -> None:
    frame = _frame(ANNEX_H3_RESPONSE)
    assert frame.server == "000039200933" and frame.from_server and frame.prm
    message = codec.decode_apdu(frame.payload)
    assert isinstance(message, GetResponse)
    (result,) = message.attributes
    assert oad_text(result.attribute) == "40010200"
    assert result.result.value == bytes.fromhex("000039200933")  # type: ignore[union-attr]


def test_tool_pair_judged_conformant_and_a_wrong_piid_reported() -> None:
    request, response = _frame(TOOL_ADDRESS_REQUEST), _frame(TOOL_ADDRESS_RESPONSE)
    assert codec.decode_apdu(response.payload).attributes[0].result.value == bytes.fromhex("000000000010")  # type: ignore[union-attr]

    def exchange(reply: Dlt698Frame) -> Exchange698:
        attempt = Attempt698(sent_at_s=0.0, chunks=((0.1, reply.raw),), frames=(reply,), bad_frames=(),
                             noise_bytes=0, reply=reply, apdu=reply.payload, reply_at_s=0.1)
        return Exchange698(request=request, preamble=4, attempts=(attempt,))

    # The published pair: request PIID 01, reply PIID-ACD 41 (ACD bit set, same serial number 1).
    assert exchange(response).problems(server="000000000010") == []
    wrong = Dlt698Frame(response.server, response.client, response.control,
                        response.payload[:2] + b"\x02" + response.payload[3:]).with_raw()
    assert any("PIID" in p for p in exchange(wrong).problems(server="000000000010"))


def test_forward_active_energy_request_and_set_confirmation() -> None:
    energy = codec.decode_apdu(_frame(TOOL_ENERGY_REQUEST).payload)
    assert isinstance(energy, GetRequest) and [oad_text(a) for a in energy.attributes] == ["00100200"]
    assert _frame(TOOL_ENERGY_REQUEST).server == "000000000105"
    confirm = codec.decode_apdu(_frame(TOOL_SET_CONFIRM).payload)
    assert isinstance(confirm, SetResponse)
    assert [(oad_text(r.attribute), r.dar) for r in confirm.attributes] == [("FFF00100", 0)]


def test_master_read_address_matches_the_package_encoder() -> None:
    message = codec.decode_apdu(_frame(MASTER_READ_ADDRESS).payload)
    native = codec.encode_frame(Dlt698Frame.request("AAAAAAAAAAAA", 0x10, codec.encode_apdu(message),
                                                    address_type="wildcard").native())
    assert native == bytes.fromhex(MASTER_READ_ADDRESS)
    assert ServerAddress(bytes=address_bytes("AAAAAAAAAAAA"), type=AddressType.wildcard).type == AddressType.wildcard
