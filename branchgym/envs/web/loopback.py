"""A real HTTP server on loopback for tests and benchmarks of the web code.

It binds ``127.0.0.1`` only, runs in a daemon thread, dispatches each request to a route
function and records every request it receives (so a test can assert what a client sent, or
that nothing was sent at all).

>>> with LoopbackServer({"/hi": lambda req: Reply(200, b"hello", "text/plain")}) as srv:
...     import httpx
...     httpx.get(srv.url("/hi")).text
'hello'
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["LoopbackServer", "Reply", "Request", "raw_tcp_server"]


@dataclass(frozen=True)
class Request:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Reply:
    """What a route answers. ``body`` may be a dict/list (sent as JSON) or bytes/str.

    ``chunks`` (with ``delay_s``) sends the body in pieces with pauses, for time-cap tests.
    """

    status: int = 200
    body: Any = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    chunks: int = 1
    delay_s: float = 0.0


Route = Callable[[Request], Reply]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that hangs up early (size/time caps) is expected here
        super().handle_error(request, client_address)


class LoopbackServer:
    """``LoopbackServer(routes)``; routes map a path (no query) to ``route(request) -> Reply``.

    Unknown paths answer 404. Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, routes: Mapping[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "start the server first"
        return int(self._httpd.server_address[1])

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def start(self) -> LoopbackServer:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else header+body writes meet delayed ACKs (40 ms)

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                req = Request(self.command, parts.path, parse_qs(parts.query),
                              {k.lower(): v for k, v in self.headers.items()},
                              self.rfile.read(length) if length else b"")
                with server._lock:
                    server.requests.append(req)
                route = server.routes.get(parts.path)
                reply = route(req) if route else Reply(404, b"not found", "text/plain")
                body = reply.body
                if isinstance(body, (dict, list)):
                    body = json.dumps(body).encode("utf-8")
                elif isinstance(body, str):
                    body = body.encode("utf-8")
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(body)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command == "HEAD":
                    return
                step = max(1, -(-len(body) // max(1, reply.chunks)))
                # a client that gives up mid-body (size/time caps) is what the tests expect
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    for i in range(0, len(body), step):
                        self.wfile.write(body[i:i + step])
                        self.wfile.flush()
                        if reply.delay_s:
                            threading.Event().wait(reply.delay_s)

            do_GET = do_POST = do_HEAD = _handle

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket. Idempotent."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def raw_tcp_server(handler: Callable[[socket.socket], None]) -> tuple[socket.socket, int]:
    """A TCP server on ``127.0.0.1`` that hands each connection to ``handler`` on its own daemon
    thread, for servers that misbehave below HTTP (a status line sent one byte a second, a body
    with forged encodings). Returns the listening socket (close it to stop) and its port."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def accept_loop() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:  # the socket was closed: stop
                return
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    return srv, srv.getsockname()[1]
