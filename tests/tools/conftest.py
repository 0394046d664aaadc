"""A real HTTP server on 127.0.0.1 (stdlib, one thread per request) for the http tool tests.

Routes: ``/json`` echoes method, path, query, JSON body and the auth-related headers;
``/status/<code>``; ``/flaky/<key>/<n>`` answers 503 ``n`` times per key, then 200;
``/text``; ``/posts`` a list of records; ``/collect`` stores POSTed bodies (``stub.bodies``).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

POSTS = [{"id": i, "userId": i % 3, "title": f"title {i} 'q' ✓", "body": f"body\n{i}"}
         for i in range(1, 26)]


class Stub:
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.bodies: list[Any] = []
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.url = ""


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes

        def log_message(self, *a: Any) -> None:
            pass

        def _send(self, code: int, body: Any, ctype: str = "application/json") -> None:
            raw = (json.dumps(body) if ctype == "application/json" else str(body)).encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode()
            seen = {"method": self.command, "path": parts.path,
                    "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                    "body": body,
                    "authorization": self.headers.get("Authorization"),
                    "x_api_key": self.headers.get("X-API-Key"),
                    "x_custom": self.headers.get("X-Custom"),
                    "client_port": self.client_address[1]}
            with stub.lock:
                stub.requests.append(seen)
            seg = parts.path.strip("/").split("/")
            if seg[0] == "json":
                self._send(200, {k: v for k, v in seen.items()
                                 if k not in ("authorization", "x_api_key", "x_custom", "client_port")})
            elif seg[0] == "status":
                self._send(int(seg[1]), {"status": int(seg[1])})
            elif seg[0] == "flaky":
                with stub.lock:
                    stub.hits[seg[1]] += 1
                    hit = stub.hits[seg[1]]
                if hit <= int(seg[2]):
                    self._send(503, {"error": "try again", "hit": hit})
                else:
                    self._send(200, {"ok": True, "hit": hit})
            elif seg[0] == "text":
                self._send(200, "plain text ✓", "text/plain; charset=utf-8")
            elif seg[0] == "posts":
                self._send(200, {"result": {"items": POSTS}} if parts.query == "wrapped=1"
                           else POSTS)
            elif seg[0] == "collect":
                with stub.lock:
                    stub.bodies.append(body)
                self._send(201, {"stored": True})
            else:
                self._send(404, {"error": "no route"})

        do_GET = do_POST = do_PUT = do_DELETE = _handle

    return H


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(s))
    server.daemon_threads = True
    s.url = f"http://127.0.0.1:{server.server_address[1]}"
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True)
    t.start()
    try:
        yield s
    finally:
        server.shutdown()
        server.server_close()
        t.join(5)
