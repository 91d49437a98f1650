"""DL/T 645-2007 codec, sans-IO (drivers layer): frames, stream reader, data identifiers, payloads.

Bytes in, frames and values out; no I/O, no clock, nothing above the drivers layer.
"""

from drivers.dlt645.abnormal import (
    AnyErrorCode,
    ControlErrorCode,
    ErrorCode,
    SecurityErrorCode,
    abnormal_error,
    abnormal_reply,
)
from drivers.dlt645.bcd import bcd_decode, bcd_encode
from drivers.dlt645.frame import (
    BROADCAST_ADDRESS,
    MAX_DATA_LENGTH,
    WILDCARD_ADDRESS,
    Dlt645Frame,
    Function,
    address_from_wire,
    address_to_wire,
    decode,
    encode,
)
from drivers.dlt645.identifiers import (
    DATA_ITEMS,
    STATUS1_CLOCK_BATTERY_LOW,
    DataFormat,
    DataItem,
    Kind,
    Value,
    data_item,
    decode_datetime,
    decode_di,
    decode_value,
    encode_datetime,
    encode_di,
    encode_value,
    split_di,
)
from drivers.dlt645.payloads import (
    BAUD_WORDS,
    baud_from_word,
    baud_word,
    decode_broadcast_time,
    encode_broadcast_time,
)
from drivers.dlt645.reader import BadFrame, FrameReader

__all__ = [
    "BAUD_WORDS",
    "BROADCAST_ADDRESS",
    "DATA_ITEMS",
    "MAX_DATA_LENGTH",
    "STATUS1_CLOCK_BATTERY_LOW",
    "WILDCARD_ADDRESS",
    "AnyErrorCode",
    "BadFrame",
    "ControlErrorCode",
    "DataFormat",
    "DataItem",
    "Dlt645Frame",
    "ErrorCode",
    "FrameReader",
    "Function",
    "Kind",
    "SecurityErrorCode",
    "Value",
    "abnormal_error",
    "abnormal_reply",
    "address_from_wire",
    "address_to_wire",
    "baud_from_word",
    "baud_word",
    "bcd_decode",
    "bcd_encode",
    "data_item",
    "decode",
    "decode_broadcast_time",
    "decode_datetime",
    "decode_di",
    "decode_value",
    "encode",
    "encode_broadcast_time",
    "encode_datetime",
    "encode_di",
    "encode_value",
    "split_di",
]
