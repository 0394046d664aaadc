"""A real HTTP server on 127.0.0.1 (stdlib, one thread per request) for the http tool tests.

Routes: ``/json`` echoes method, path, query, JSON body and the auth-related headers;
``/status/<code>``; ``/flaky/<key>/<n>`` answers 503 ``n`` times per key, then 200;
``/text``; ``/posts`` a list of records; ``/collect`` stores POSTed bodies (``stub.bodies``).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import SplitResult

import pytest

from tests.httpstub import StubHandler, serving

POSTS = [{"id": i, "userId": i % 3, "title": f"title {i} 'q' ✓", "body": f"body\n{i}"}
         for i in range(1, 26)]


class Stub:
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.bodies: list[Any] = []
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.url = ""


def _handler(stub: Stub) -> type[StubHandler]:
    class H(StubHandler):
        def route(self, parts: SplitResult, query: dict[str, str], body: Any) -> None:
            seen = {"method": self.command, "path": parts.path, "query": query, "body": body,
                    "authorization": self.headers.get("Authorization"),
                    "x_api_key": self.headers.get("X-API-Key"),
                    "x_custom": self.headers.get("X-Custom"),
                    "client_port": self.client_address[1]}
            with stub.lock:
                stub.requests.append(seen)
            seg = parts.path.strip("/").split("/")
            if seg[0] == "json":
                self.send(200, {k: v for k, v in seen.items()
                                if k not in ("authorization", "x_api_key", "x_custom", "client_port")})
            elif seg[0] == "status":
                self.send(int(seg[1]), {"status": int(seg[1])})
            elif seg[0] == "flaky":
                with stub.lock:
                    stub.hits[seg[1]] += 1
                    hit = stub.hits[seg[1]]
                if hit <= int(seg[2]):
                    self.send(503, {"error": "try again", "hit": hit})
                else:
                    self.send(200, {"ok": True, "hit": hit})
            elif seg[0] == "text":
                self.send(200, "plain text ✓", "text/plain; charset=utf-8")
            elif seg[0] == "posts":
                self.send(200, {"result": {"items": POSTS}} if parts.query == "wrapped=1"
                          else POSTS)
            elif seg[0] == "collect":
                with stub.lock:
                    stub.bodies.append(body)
                self.send(201, {"stored": True})
            else:
                self.send(404, {"error": "no route"})

    return H


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    with serving(_handler(s)) as url:
        s.url = url
        yield s
