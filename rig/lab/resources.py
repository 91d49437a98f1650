"""labgrid resources and the rig's resource strings, both ways.

The rig reaches an instrument by a VISA resource (TCPIP::host::port::SOCKET for SCPI over a raw socket)
and a meter port by a pyserial URL (rfc2217://host:port). labgrid exports the first as a `PyVISADevice`
(type + url) and the second as a `NetworkSerialPort` (host, port, speed, protocol rfc2217 or raw): these
are the classes labgrid's own drivers (PyVISADriver, SerialDriver) take for the same things.
"""

from __future__ import annotations

import re
from typing import Any

from drivers.errors import RigError

VISA_CLASSES = ("INSTR", "SOCKET", "RAW")
_VISA_RE = re.compile(r"^(?P<type>[A-Za-z]+\d*)::(?P<url>.+)$")
_URL_RE = re.compile(r"^(?P<scheme>rfc2217|socket)://(?P<host>[^:/]+):(?P<port>\d+)/?$")


class PlaceError(RigError):
    """A labgrid place could not be held, or its resources do not fit the bench; the message says which."""


def rig_resource(cls: str, params: dict[str, Any]) -> str:
    """The rig's resource string for one exported labgrid resource (PlaceError for a class it cannot use)."""
    if cls == "PyVISADevice":
        kind, url = str(params.get("type", "")), str(params.get("url", ""))
        if not kind or not url:
            raise PlaceError(f"PyVISADevice {params!r} needs 'type' and 'url'")
        parts = url.split("::")
        if parts[-1].upper() in VISA_CLASSES:
            return f"{kind}::{url}"
        # host::port is a raw SCPI socket; a bare address is a VXI-11/HiSLIP instrument (labgrid adds INSTR too)
        suffix = "SOCKET" if len(parts) == 2 and parts[1].isdigit() else "INSTR"
        return f"{kind}::{url}::{suffix}"
    if cls == "NetworkSerialPort":
        host, port, protocol = params.get("host"), params.get("port"), params.get("protocol", "rfc2217")
        if not host or not port:
            raise PlaceError(f"NetworkSerialPort {params!r} needs 'host' and 'port'")
        scheme = {"rfc2217": "rfc2217", "raw": "socket"}.get(str(protocol))
        if scheme is None:
            raise PlaceError(f"NetworkSerialPort protocol {protocol!r}: the rig speaks rfc2217 or raw")
        return f"{scheme}://{host}:{port}"
    raise PlaceError(f"the rig cannot use a labgrid {cls} (it uses PyVISADevice for instruments and "
                     "NetworkSerialPort for meter ports)")


def labgrid_resource(resource: str, *, speed: int = 115200) -> dict[str, Any]:
    """The exporter entry (cls and parameters) for a rig resource string; PlaceError for one it cannot export."""
    url = _URL_RE.match(resource)
    if url is not None:
        protocol = "rfc2217" if url["scheme"] == "rfc2217" else "raw"
        return {"cls": "NetworkSerialPort", "host": url["host"], "port": int(url["port"]), "speed": speed,
                "protocol": protocol}
    visa = _VISA_RE.match(resource)
    if visa is not None and "://" not in resource:
        return {"cls": "PyVISADevice", "type": visa["type"], "url": visa["url"]}
    raise PlaceError(f"{resource!r} is neither a VISA resource nor an rfc2217:// or socket:// port: labgrid "
                     "cannot export it")


def resources_from_env(document: Any) -> dict[str, str]:
    """{name: rig resource string} from `labgrid-client env`'s YAML (targets -> place -> resources)."""
    out: dict[str, str] = {}
    targets = document.get("targets") if isinstance(document, dict) else None
    for target in (targets or {}).values():
        for entry in (target or {}).get("resources") or []:
            for cls, params in dict(entry).items():
                params = dict(params or {})
                name = str(params.pop("name", cls))  # labgrid leaves out a name equal to the class
                out[name] = rig_resource(str(cls), params)
    return out
