"""A real HTTP server on 127.0.0.1 (stdlib, one thread per request) for tests that need a
remote API: subclass :class:`StubHandler`, implement ``route``, and run it with
:func:`serving`. Shared by the http tool tests and the NoETL corpus tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit


class StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes

    def log_message(self, *a: Any) -> None:
        pass

    def send(self, code: int, body: Any, ctype: str = "application/json") -> None:
        raw = (json.dumps(body) if ctype == "application/json" else str(body)).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def route(self, parts: SplitResult, query: dict[str, str], body: Any) -> None:
        raise NotImplementedError

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        self.route(parts, {k: v[0] for k, v in parse_qs(parts.query).items()}, body)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


@contextmanager
def serving(handler: type[StubHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port; yield its base URL; shut down on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        t.join(5)
