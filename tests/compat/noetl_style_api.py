"""The loopback API the NoETL-style suite (tests/compat/noetl_style) runs against.

One stdlib server on an ephemeral port stands in for api.open-meteo.com, api.github.com and
jsonplaceholder.typicode.com (reached through ``NOETL_HTTP_REWRITE``) and serves the routes
playbooks reach through a ``base_url`` run arg: ``/flaky/<key>?fail=N`` (503 for the first N
calls of a key, then 200), ``/status/<code>`` and ``/echo/...``. Every request is recorded.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import SplitResult

from tests.compat.conftest import forecast
from tests.httpstub import StubHandler, serving

PUBLIC = ("https://api.open-meteo.com", "https://api.github.com",
          "https://jsonplaceholder.typicode.com")
REPOS = {"microsoft/vscode": (160000, 28000, "TypeScript"),
         "psf/requests": (52000, 9300, "Python"),
         "noetl/noetl": (120, 30, "Python")}
AUTHORS = ["Ada", "Grace", "Ada", "Linus", "Grace", "Ada", "Linus", "Linus", "Grace", "Ada"]
COMMITS: list[dict[str, Any]] = [
    {"sha": f"c{i:02d}", "commit": {"author": {"name": a, "date": f"2025-10-{i + 1:02d}"},
                                    "message": f"change {i}"}}
    for i, a in enumerate(AUTHORS)]
CITIES = ["Gwenborough", "Wisokyburgh", "Gwenborough", "McKenziehaven", "Wisokyburgh",
          "Gwenborough"]
USERS: list[dict[str, Any]] = [{"id": i + 1, "name": f"User {i + 1}", "username": f"user{i + 1}",
          "email": f"user{i + 1}@example.org", "address": {"city": c, "zipcode": f"{i:05d}"},
          "company": {"name": f"Co {i % 2}"}} for i, c in enumerate(CITIES)]


class SuiteApi:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.flaky: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.url = ""

    def matching(self, prefix: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["path"].startswith(prefix)]

    def rewrite(self) -> str:
        return ",".join(f"{p}={self.url}" for p in PUBLIC)


def _handler(api: SuiteApi) -> type[StubHandler]:
    class H(StubHandler):
        def route(self, parts: SplitResult, query: dict[str, str], body: Any) -> None:
            seen = {"method": self.command, "path": parts.path, "query": query, "json": body,
                    "headers": {k.lower(): v for k, v in self.headers.items()}}
            with api.lock:
                api.requests.append(seen)
            seg = parts.path.strip("/").split("/")
            if seg[:2] == ["v1", "forecast"]:
                if "latitude" in query and "longitude" in query:
                    self.send(200, forecast(query))
                else:
                    self.send(400, {"error": "latitude and longitude are required"})
            elif seg[0] == "repos" and len(seg) == 3 and "/".join(seg[1:]) in REPOS:
                stars, forks, lang = REPOS["/".join(seg[1:])]
                self.send(200, {"full_name": "/".join(seg[1:]), "stargazers_count": stars,
                                "forks_count": forks, "language": lang})
            elif seg[0] == "repos" and seg[-1] == "commits":
                self.send(200, COMMITS[:int(query.get("per_page", 30))])
            elif seg == ["users"]:
                self.send(200, USERS)
            elif seg[0] == "flaky":
                with api.lock:
                    api.flaky[seg[1]] += 1
                    n = api.flaky[seg[1]]
                if n <= int(query.get("fail", 0)):
                    self.send(503, {"error": "try again", "attempt": n})
                else:
                    self.send(200, {"key": seg[1], "attempt": n})
            elif seg[0] == "status":
                self.send(int(seg[1]), {"status": int(seg[1])})
            elif seg[0] == "echo":
                self.send(200, seen)
            else:
                self.send(404, {"error": "no route"})

    return H


@contextmanager
def serve_suite_api() -> Iterator[SuiteApi]:
    api = SuiteApi()
    with serving(_handler(api)) as url:
        api.url = url
        yield api
