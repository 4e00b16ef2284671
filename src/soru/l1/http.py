"""JSON over HTTP: what every soru RPC server shares — the sandbox chain's (``soru.l1.rpc``)
and the rollup node's (``soru.node.rpc``).

A server is a table of :class:`Route` — a method, a path pattern whose ``*`` segments match
any one segment, and the function answering it. The function gets a :class:`Call` (what the
wildcards matched, the query string, the JSON body of a POST) and returns any JSON value,
which is the answer, with status 200. Errors are typed: the answer is ``{"error":
"<class>", "message": …}`` with status

    404  :class:`NotFound` (no such route, or nothing there)
    400  any other :class:`~soru.base.errors.SoruError` or a ``ValueError`` (bad input)
    413  a POST body over ``max_body`` bytes
    500  anything else (a bug in the server; the server keeps serving)

:class:`JsonServer` serves a table on ``host:port`` (port 0: any free one) from background
threads, one per request; every answer is computed holding ``lock`` when one is given, so
that requests do not race with whoever else changes what they read.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from soru.base.errors import SoruError

MAX_BODY = 4 << 20
"""The largest POST body a server reads (bytes)."""


class NotFound(SoruError):
    """No such resource."""


@dataclass(frozen=True, slots=True)
class Call:
    """One request as a route sees it: the segments its wildcards matched, in order, the
    query string's parameters (the last value of each), and a POST's JSON body (None when
    empty)."""

    args: tuple[str, ...]
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None

    def param(self, name: str) -> str:
        """The query parameter ``name``; a ``ValueError`` (400) if it is missing."""
        found = self.query.get(name)
        if found is None:
            raise ValueError(f"the query parameter {name!r} is missing")
        return found


@dataclass(frozen=True, slots=True)
class Route:
    """``method`` requests whose path matches ``pattern`` (``/a/*/b``) are answered by
    ``answer``."""

    method: str
    pattern: str
    answer: Callable[[Call], object]

    def match(self, method: str, segments: Sequence[str]) -> tuple[str, ...] | None:
        """What the wildcards match in ``segments``, or None if the route does not apply."""
        parts = [p for p in self.pattern.split("/") if p]
        if method != self.method or len(parts) != len(segments):
            return None
        if not all(p in ("*", s) for p, s in zip(parts, segments, strict=True)):
            return None
        return tuple(s for p, s in zip(parts, segments, strict=True) if p == "*")


def find_route(routes: Sequence[Route], method: str, target: str) -> tuple[Route, Call]:
    """The route for a request line's ``target`` (path and query), with the call it makes;
    raises :class:`NotFound`."""
    split = urllib.parse.urlsplit(target)
    segments = [urllib.parse.unquote(p) for p in split.path.split("/") if p]
    query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
    for route in routes:
        args = route.match(method, segments)
        if args is not None:
            return route, Call(args, query)
    raise NotFound(f"no RPC at {split.path}")


def error_answer(error: BaseException) -> tuple[int, dict]:
    """The status and JSON body that report ``error``."""
    body = {"error": type(error).__name__, "message": str(error)}
    if isinstance(error, NotFound):
        return 404, body
    if isinstance(error, SoruError | ValueError):
        return 400, body
    return 500, body


class _Handler(BaseHTTPRequestHandler):
    routes: tuple[Route, ...] = ()  # the three are set on the subclass each server makes
    lock: AbstractContextManager[Any] = nullcontext()
    max_body: int = MAX_BODY

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the caller logs
        pass

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _serve(self, method: str, raw: bytes = b"") -> None:
        try:
            route, call = find_route(self.routes, method, self.path)
            body = json.loads(raw) if raw else None
            with self.lock:
                answer = route.answer(Call(call.args, call.query, body))
        except Exception as error:  # noqa: BLE001 - every failure is answered, typed
            self._send(*error_answer(error))
        else:
            self._send(200, answer)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.max_body:
            message = f"request over {self.max_body >> 20} MiB"
            self._send(413, {"error": "TooLarge", "message": message})
            return
        self._serve("POST", self.rfile.read(length))


class JsonServer:
    """Serves ``routes`` on ``host:port`` (port 0: any free one) from a background thread,
    each answer computed holding ``lock`` (when given)."""

    def __init__(self, routes: Sequence[Route], host: str = "127.0.0.1", port: int = 0, *,
                 lock: AbstractContextManager[Any] | None = None,
                 max_body: int = MAX_BODY) -> None:  # fmt: skip
        attributes = {"routes": tuple(routes), "lock": lock or nullcontext(),
                      "max_body": max_body}  # fmt: skip
        self.server = ThreadingHTTPServer((host, port), type("Handler", (_Handler,), attributes))
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> JsonServer:
        self.run_beside(self.server.serve_forever)
        return self

    def run_beside(self, target: Callable[[], object]) -> None:
        """Run ``target`` in a daemon thread that :meth:`stop` waits for."""
        thread = threading.Thread(target=target, daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
