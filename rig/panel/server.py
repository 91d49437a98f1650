"""The panel's web server: aiohttp on loopback in a thread of its own (with its own event loop), the page and its
script from package data, the state as JSON and as server-sent events (aiohttp-sse), answers posted back.

It is never part of the run's safety: the run only writes into the PanelState; if the server fails, the run
goes on (and says so once on the terminal).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from importlib import resources
from typing import Any

from aiohttp import web
from aiohttp_sse import sse_response

from drivers.errors import RigError
from rig.panel.state import PanelState

HOST = "127.0.0.1"  # loopback only: the panel has no login; a lab reaches it through the bench PC
_STATIC = {"/": ("index.html", "text/html"), "/panel.js": ("panel.js", "text/javascript"),
           "/panel.css": ("panel.css", "text/css")}
_STATE_KEY = web.AppKey("state", PanelState)


class PanelError(RigError):
    """The panel could not be served (the port is taken, ...)."""


class PanelServer:
    """Serves one PanelState at http://127.0.0.1:PORT/ (PORT 0: any free port) until `stop()`."""

    def __init__(self, state: PanelState, port: int = 0) -> None:
        self.state = state
        self.port = port
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._changed: asyncio.Event | None = None
        self._sent: dict[int, int] = {}  # client id -> version last sent
        self._flushed = threading.Condition()

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Bind and serve in a daemon thread; the URL. PanelError when the port cannot be bound."""
        ready = threading.Event()
        problem: list[str] = []
        self._thread = threading.Thread(target=self._serve, args=(ready, problem), name="rig-panel", daemon=True)
        self._thread.start()
        ready.wait(30.0)
        if problem or not self.url:
            raise PanelError(f"cannot serve the panel on {HOST}:{self.port}: "
                             f"{problem[0] if problem else 'the server did not start'}")
        self.state.listen(self._wake)
        return self.url

    def _serve(self, ready: threading.Event, problem: list[str]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._bind())
        except OSError as exc:
            problem.append(exc.strerror or str(exc))
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                if self._runner is not None:
                    loop.run_until_complete(self._runner.cleanup())
            loop.close()

    async def _bind(self) -> None:
        app = web.Application()
        app[_STATE_KEY] = self.state
        app[_SERVER_KEY] = self
        for path in _STATIC:
            app.router.add_get(path, _static)
        app.router.add_get("/state", _state)
        app.router.add_get("/events", _events)
        app.router.add_post("/answer", _answer)
        self._changed = asyncio.Event()
        # Open event streams are cut at once when the run ends (the page keeps what it was last sent).
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])  # the port bound (0 asks for any free one)
        self.url = f"http://{HOST}:{self.port}/"

    def stop(self, flush_s: float = 3.0) -> None:
        """Stop serving, once every open page was sent the latest state (at most `flush_s` wall seconds): a
        page keeps showing how the run ended after the server is gone."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return
        with self._flushed:
            self._flushed.wait_for(lambda: all(v >= self.state.version for v in self._sent.values()), flush_s)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10.0)

    # ------------------------------------------------------------------------------------- changes

    def _wake(self) -> None:
        loop = self._loop
        if loop is not None and loop.is_running():
            with contextlib.suppress(RuntimeError):  # the loop closed in between: nobody to tell
                loop.call_soon_threadsafe(self._set_changed)

    def _set_changed(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()  # waiters hold the old one; the next change sets the new one

    def _mark_sent(self, client: int, version: int) -> None:
        with self._flushed:
            self._sent[client] = version
            self._flushed.notify_all()

    def _forget(self, client: int) -> None:
        with self._flushed:
            self._sent.pop(client, None)
            self._flushed.notify_all()


_SERVER_KEY = web.AppKey("server", PanelServer)


async def _static(request: web.Request) -> web.Response:
    name, content_type = _STATIC[request.path]
    body = resources.files("rig.panel").joinpath("static", name).read_text(encoding="utf-8")
    return web.Response(text=body, content_type=content_type, headers={"Cache-Control": "no-store"})


async def _state(request: web.Request) -> web.Response:
    return web.json_response(request.app[_STATE_KEY].snapshot())


async def _events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the whole state on connect and after every change (a page is small; sending it
    whole keeps the page free of patching logic)."""
    server = request.app[_SERVER_KEY]
    state = request.app[_STATE_KEY]
    client = id(request)
    async with sse_response(request) as events:
        try:
            while events.is_connected():
                changed = server._changed
                snapshot = state.snapshot()
                await events.send(json.dumps(snapshot), event="state")
                server._mark_sent(client, snapshot["version"])
                if changed is None:
                    break
                # A minute's silence still refreshes the wall-time estimate on the page.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), 60.0)
        finally:
            server._forget(client)
    return events


async def _answer(request: web.Request) -> web.Response:
    """`POST /answer {"prompt": id, "text": "yes"}`: 200 when it was taken, 409 when already answered, 400
    when it does not fit the question. Only same-origin JSON: a page from elsewhere cannot answer for the
    operator (a cross-origin JSON post needs a preflight this server never grants)."""
    state = request.app[_STATE_KEY]
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"http://{request.host}":
        return web.json_response({"error": "answers come from the panel's own page"}, status=403)
    if request.content_type != "application/json":
        return web.json_response({"error": "post JSON: {\"prompt\": id, \"text\": answer}"}, status=415)
    try:
        body: Any = await request.json()
        prompt, text = int(body["prompt"]), str(body["text"])
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": "post JSON: {\"prompt\": id, \"text\": answer}"}, status=400)
    if not state.live:
        return web.json_response({"error": "this panel follows a journal: answer on the run's own panel or "
                                           "terminal"}, status=409)
    problem = state.answer(prompt, text, f"{state.who} (panel)")
    if problem is None:
        return web.json_response({"ok": True})
    status = 409 if "answered already" in problem else 400
    return web.json_response({"error": problem}, status=status)
