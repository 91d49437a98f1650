"""The twin-only control channel: virtual clock, knobs, and ground truth for the rig's own tests.

Below the transports: plans never use it. In-process it is `TwinControl`; `rig twin serve` exposes the
same operations as JSON lines on a loopback TCP port, reached by `RemoteTwinControl`.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import socketserver
import threading
from typing import TYPE_CHECKING, Any

from drivers.clock import poll_until
from drivers.errors import InstrumentError, InstrumentTimeout

if TYPE_CHECKING:
    from rig.twin.runtime import Twin


class TwinControl:
    """Operations on a running twin: time, ground truth, knobs."""

    def __init__(self, twin: Twin) -> None:
        self.twin = twin

    def now(self) -> float:
        """Bench seconds since the twin started."""
        return self.twin.world.time_s

    def sleep(self, duration_s: float) -> float:
        """Advance the virtual clock (once the twin has answered what it was sent); returns the new time."""
        if not duration_s >= 0 or duration_s == float("inf"):
            raise ValueError(f"cannot advance the twin clock by {duration_s!r} s")
        self.twin.clock.sleep(duration_s)
        return self.twin.world.time_s

    def state(self) -> dict[str, Any]:
        """Ground truth: the source's real output and every meter's registers."""
        world = self.twin.world
        with world.lock:
            t = world.terminals()
            return {
                "time_s": world.time_s,
                "output_on": world.output_on,
                "voltage_v": t.voltage_v,
                "current_a": t.current_a,
                "phase_deg": t.phase_deg,
                "frequency_hz": t.frequency_hz,
                "meters": [
                    {
                        "address": m.address,
                        "forward_kwh": m.metering.forward_kwh,
                        "reverse_kwh": m.metering.reverse_kwh,
                        "pulses": m.metering.pulses,
                        # supply, battery, display codes
                        "power": m.management.power.truth() if m.management and m.management.power else None,
                        # what its display shows (the forward energy screen)
                        "display": m.management.display.truth(world.time_s)
                        if m.management and m.management.display else None,
                    }
                    for m in self.twin.meters
                ],
            }

    def replace_battery(self, address: str, cell: str = "new") -> float:
        """Hands at the bench: change the clock battery of meter `address` now, mains or not
        (`cell`: 'new' or a test cell of the twin's stock); the fitted cell's open-circuit voltage, V."""
        world = self.twin.world
        with world.lock:
            for meter in self.twin.meters:
                if meter.address == address and meter.management is not None and meter.management.power:
                    return meter.management.power.replace_battery(cell)
        raise ValueError(f"the twin has no meter {address!r} with a clock battery")

    def call(self, op: str, args: dict[str, Any]) -> Any:
        """Dispatch one JSON request."""
        if op == "now":
            return self.now()
        if op == "sleep":
            return self.sleep(float(args["s"]))
        if op == "state":
            return self.state()
        if op == "datetime":
            return self.twin.clock.datetime_now().isoformat()
        if op == "replace_battery":
            return self.replace_battery(str(args["address"]), str(args.get("cell", "new")))
        raise ValueError(f"unknown control operation {op!r}")


class _ControlHandler(socketserver.StreamRequestHandler):
    server: ControlServer

    def handle(self) -> None:
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for raw in self.rfile:
            try:
                request = json.loads(raw)
                result = self.server.control.call(str(request["op"]), dict(request.get("args", {})))
                reply: dict[str, Any] = {"ok": True, "result": result}
            except Exception as exc:  # noqa: BLE001 - any bad request is answered, never kills the twin
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            self.wfile.write(json.dumps(reply).encode() + b"\n")
            self.wfile.flush()


class ControlServer(socketserver.ThreadingTCPServer):
    """JSON-lines control channel on loopback."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, control: TwinControl, port: int = 0) -> None:
        self.control = control
        super().__init__(("127.0.0.1", port), _ControlHandler)

    @property
    def url(self) -> str:
        """Where `RemoteTwinControl` reaches it."""
        return f"tcp://127.0.0.1:{self.server_address[1]}"

    def start(self) -> None:
        """Serve in a background thread."""
        threading.Thread(target=self.serve_forever, args=(0.05,), name="twin-control", daemon=True).start()

    def stop(self) -> None:
        """Stop serving."""
        self.shutdown()
        self.server_close()


class RemoteTwinControl:
    """Client of a served twin's control channel (`tcp://127.0.0.1:PORT`)."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        host, _, port = url.removeprefix("tcp://").rpartition(":")
        self._address = (host, int(port))
        self._timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._reader: Any = None

    def _call(self, op: str, **args: Any) -> Any:
        if self._sock is None:
            try:
                self._sock = socket.create_connection(self._address, timeout=self._timeout_s)
            except OSError as exc:
                raise InstrumentTimeout(f"twin control channel {self._address}: {exc}") from None
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._reader = self._sock.makefile("rb")
        self._sock.sendall(json.dumps({"op": op, "args": args}).encode() + b"\n")
        line = self._reader.readline()
        if not line:
            raise InstrumentError(f"twin control channel {self._address} closed")
        reply = json.loads(line)
        if not reply["ok"]:
            raise InstrumentError(f"twin control: {reply['error']}")
        return reply["result"]

    def now(self) -> float:
        """Bench seconds of the served twin."""
        return float(self._call("now"))

    def sleep(self, duration_s: float) -> None:
        """Advance the served twin's clock."""
        if duration_s > 0:
            self._call("sleep", s=duration_s)

    def wait_until(self, predicate: Any, timeout_s: float, poll_s: float = 0.05) -> bool:
        """Advance in `poll_s` steps until `predicate()` or the timeout."""
        return poll_until(self, predicate, timeout_s, poll_s)

    def datetime_now(self) -> dt.datetime:
        """The served twin's calendar time."""
        return dt.datetime.fromisoformat(str(self._call("datetime")))

    def state(self) -> dict[str, Any]:
        """Ground truth of the served twin."""
        result: dict[str, Any] = self._call("state")
        return result

    def replace_battery(self, address: str, cell: str = "new") -> float:
        """Change a meter's clock battery on the served twin; the fitted cell's voltage, V."""
        return float(self._call("replace_battery", address=address, cell=cell))

    def close(self) -> None:
        """Close the connection."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
