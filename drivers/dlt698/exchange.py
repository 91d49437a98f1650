"""What happened in one DL/T 698.45 request/reply exchange (drivers layer): its attempts in bench time, the reply
(fragments joined) and every way that reply breaks the standard, in words (`Exchange698.problems`).
Imports nothing above the drivers layer."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from dlt698 import Data, Oad, codec, standard
from dlt698._native import GetRequest, GetResponse

from drivers.dlt698.apdu import oad_text, piid_of, service_tag
from drivers.dlt698.frame import FUNCTION_DATA, BadFrame698, Dlt698Frame
from drivers.serial_link import AttemptsTiming, ReplyTiming

__all__ = ["Attempt698", "Exchange698"]

@dataclass(frozen=True)
class Attempt698(ReplyTiming):
    """One transmission of a request and what came back, in bench time."""

    sent_at_s: float
    chunks: tuple[tuple[float, bytes], ...]
    frames: tuple[Dlt698Frame, ...]  # every valid frame heard (fragments included)
    bad_frames: tuple[BadFrame698, ...]
    noise_bytes: int
    reply: Dlt698Frame | None  # the (last fragment of the) server frame that answers the request
    apdu: bytes | None = None  # the reply's APDU (fragments joined)
    reply_at_s: float | None = None
    unsolicited: tuple[Dlt698Frame, ...] = ()  # server frames that answer nothing asked (reports, late replies)


@dataclass(frozen=True)
class Exchange698(AttemptsTiming):
    """A request, every attempt at it and the reply; `problems` says where the reply breaks the standard."""

    request: Dlt698Frame
    preamble: int
    attempts: tuple[Attempt698, ...]

    @property
    def reply(self) -> Dlt698Frame | None:
        """The reply frame of the last attempt."""
        return self.attempts[-1].reply if self.attempts else None

    @property
    def apdu(self) -> bytes | None:
        """The reply's APDU (fragments joined)."""
        return self.attempts[-1].apdu if self.attempts else None

    def problems(self, server: str | None = None, client: int | None = None) -> list[str]:
        """Every way the reply breaks DL/T 698.45 (frame: HCS/FCS/length/end, control bits, addresses; APDU:
        service, PIID, attributes answered, values against the standard's types); empty when it conforms."""
        out = self.line_problems()
        reply, apdu = self.reply, self.apdu
        if reply is None or apdu is None:
            if not any(a.bad_frames for a in self.attempts):
                out.append("no reply")
            return out
        wanted = server if server is not None else self.request.server
        if self.request.address_type == "single" and reply.server != wanted:
            out.append(f"reply from server address {reply.server}, expected {wanted}")
        if reply.address_type != "single":
            out.append(f"reply carries a {reply.address_type} server address; a meter answers with its own (single)")
        expected_client = client if client is not None else self.request.client
        if reply.client != expected_client:
            out.append(f"reply to client address {reply.client:02X}H, expected {expected_client:02X}H")
        if not reply.from_server:
            out.append(f"control {reply.control:02X}H: DIR clear (the server's frames have D7 set)")
        if not reply.prm:
            out.append(f"control {reply.control:02X}H: PRM clear on an answer to the client's request")
        if reply.function != FUNCTION_DATA:
            out.append(f"control {reply.control:02X}H: function {reply.function}, expected 3 (user data)")
        out += _apdu_problems(self.request.payload, apdu)
        return out


def _apdu_problems(request: bytes, reply: bytes) -> list[str]:
    out: list[str] = []
    if reply[:1] == b"\x90" and request[:1] == b"\x10":
        try:
            codec.decode_security(reply)
        except Exception as exc:  # noqa: BLE001 - the package's error classes
            return [f"SECURITY-Response does not decode: {exc}"]
        return []
    if reply[:1] == b"\xee":
        return [f"{service_tag(request)} answered with ERROR-Response"]
    if reply[0] != request[0] | 0x80:
        return [f"{service_tag(request)} answered with {service_tag(reply)}"]
    if len(reply) > 1 and len(request) > 1 and request[0] in (0x05, 0x06, 0x07) and reply[1] != request[1]:
        out.append(f"reply choice {reply[1]} does not match the request's {request[1]}")
    asked, got = piid_of(request), piid_of(reply)
    if asked is not None and got is not None and (got & 0x3F) != (asked & 0x3F):
        out.append(f"reply PIID {got & 0x3F} answers another request (asked {asked & 0x3F})")
    try:
        message = codec.decode_apdu(reply)
        asked_message = codec.decode_apdu(request)
    except Exception as exc:  # noqa: BLE001 - the package's error classes
        return [*out, f"{service_tag(reply)} does not decode: {exc}"]
    if isinstance(message, GetResponse) and isinstance(asked_message, GetRequest):
        got_oads = [oad_text(r.attribute) for r in message.attributes]
        want_oads = [oad_text(a) for a in asked_message.attributes]
        if got_oads != want_oads:
            out.append(f"GET-Response carries {', '.join(got_oads) or 'nothing'}, asked {', '.join(want_oads)}")
        for result in message.attributes:
            if isinstance(result.result, Data):
                with contextlib.suppress(LookupError):
                    problem = _value_problem(result.attribute, result.result)
                    if problem:
                        out.append(problem)
    return out


def _value_problem(attribute: Oad, value: Data) -> str:
    """The standard catalogue's verdict on a value's type and shape ('' when it conforms or is not catalogued)."""
    try:
        standard.find_attribute(attribute)
    except Exception:  # noqa: BLE001 - not in the catalogue: a manufacturer's object, nothing to check against
        return ""
    for wiring in (standard.Wiring.single_phase, standard.Wiring.three_phase):
        try:
            standard.validate_value(attribute, value, standard.DeviceLayout(wiring=wiring))
            return ""
        except Exception:  # noqa: BLE001 - try the other wiring before judging
            continue
    return f"{oad_text(attribute)}: value of type {value.type.name} does not fit the standard's definition"
