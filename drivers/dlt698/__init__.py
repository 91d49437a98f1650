"""DL/T 698.45 (object-oriented electricity data exchange protocol) host side: frames, APDU helpers and the
meter link over a UART or the BLE transparent-UART service. Frames and APDUs are encoded by the `dlt698`
package; timing, reply matching and conformance reports are the rig's."""

from drivers.dlt698.apdu import DAR_NAMES, Data, Oad, Scaled, layout, oad, oad_text, scaled
from drivers.dlt698.frame import BadFrame698, Dlt698Frame, FrameSplitter, address_bytes, address_text
from drivers.dlt698.link import Attempt698, DarRefused, Dlt698Link, Exchange698, ServiceRefused

__all__ = [
           "DAR_NAMES",
           "Attempt698",
           "BadFrame698",
           "DarRefused",
           "Data",
           "Dlt698Frame",
           "Dlt698Link",
           "Exchange698",
           "FrameSplitter",
           "Oad",
           "Scaled",
           "ServiceRefused",
           "address_bytes",
           "address_text",
           "layout",
           "oad",
           "oad_text",
           "scaled",
]
