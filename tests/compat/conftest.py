"""Shared set-up for the NoETL corpus tests.

* ``Api``: a stdlib HTTP server on 127.0.0.1 standing in for httpbin.org, jsonplaceholder and
  api.open-meteo.com (the only public hosts the corpus names). Every request is recorded.
* ``Compat``: one embedded runner (SQLite store, 8 worker threads) per test module, with a
  fresh PostgreSQL *target* database (the fixtures hard-code table names), credentials
  ``pg_local``/``pg_k8s`` pointing at it, and ``NOETL_HTTP_REWRITE`` sending the public URLs
  to ``Api``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult

import pytest

from noetl.credentials import put_credential, store_credentials
from noetl.domain.records import Event
from noetl.dsl import load_playbook
from noetl.local import LocalRunner
from noetl.store import open_store
from noetl.tools.base import Services
from tests.compat import template_tap
from tests.helpers import assert_one_terminal
from tests.httpstub import StubHandler, serving
from tests.tools.conftest import POSTS
from tests.tools.pgutil import pg_fields

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "noetl"
COPIES = Path(__file__).resolve().parent / "fixtures"
PUBLIC = ("https://httpbin.org", "https://jsonplaceholder.typicode.com",
          "https://api.open-meteo.com")


def forecast(query: dict[str, str]) -> dict[str, Any]:
    """An open-meteo-like answer derived from the query (so each city differs)."""
    lat, lon = float(query["latitude"]), float(query["longitude"])
    hours = [f"2026-12-01T{h:02d}:00" for h in range(24)]
    return {"latitude": lat, "longitude": lon, "timezone": "GMT",
            "hourly_units": {"time": "iso8601", "temperature_2m": "°C"},
            "hourly": {"time": hours,
                       "temperature_2m": [round(lat / 10 + h * 0.1, 1) for h in range(24)]}}


class Api:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.url = ""

    def paths(self) -> list[str]:
        with self.lock:
            return [r["path"] for r in self.requests]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


def _handler(api: Api) -> type[StubHandler]:
    class H(StubHandler):
        def route(self, parts: SplitResult, query: dict[str, str], body: Any) -> None:
            seen = {"method": self.command, "path": parts.path, "query": query, "body": body,
                    "headers": {k.lower(): v for k, v in self.headers.items()}}
            with api.lock:
                api.requests.append(seen)
            seg = parts.path.strip("/").split("/")
            if seg[0] in ("get", "post"):  # httpbin echo
                want = "GET" if seg[0] == "get" else "POST"
                if self.command != want:
                    self.send(405, {"error": "method not allowed"})
                else:
                    self.send(200, {"args": query, "json": body, "url": api.url + self.path,
                                    "headers": dict(self.headers.items())})
            elif seg[0] == "echo":  # any method: what was asked
                self.send(200, {"method": self.command, "path": parts.path, "args": query,
                                "json": body})
            elif seg[0] == "status":
                self.send(int(seg[1]), {"status": int(seg[1])})
            elif seg[0] == "posts":
                self.send(200, POSTS)
            elif seg[:2] == ["v1", "forecast"]:
                self.send(200, forecast(query))
            else:
                self.send(404, {"error": "no route"})

    return H


@contextmanager
def serve_api() -> Iterator[Api]:
    api = Api()
    with serving(_handler(api)) as url:
        api.url = url
        yield api


REPRO_HOST = "http://127.0.0.1:18765"  # the compatibility reproductions' echo server


def rewrite_spec(api: Api) -> str:
    return ",".join(f"{p}={api.url}" for p in (*PUBLIC, REPRO_HOST))


def fresh_database(admin_url: str) -> Any:
    """A scratch database (the one helper every PostgreSQL test uses)."""
    from tests.conftest import scratch_database

    return scratch_database(admin_url)


REPROS = Path(__file__).resolve().parent / "repro"


def fixture_path(rel: str) -> Path:
    if rel.startswith("copy:"):
        return COPIES / rel[5:]
    if rel.startswith("repro:"):
        return REPROS / rel[6:]
    return CORPUS / rel


class Compat:
    def __init__(self, runner: LocalRunner, target: str, api: Api):
        self.runner, self.target, self.api = runner, target, api

    def start(self, rel: str, args: dict[str, Any] | None = None) -> int:
        """Start a corpus fixture (``rel`` under tests/fixtures/noetl), a copy (``copy:NAME``)
        or a compatibility reproduction (``repro:NAME``)."""
        path = fixture_path(rel)
        return self.runner.engine.start(load_playbook(path), args=args).execution_id

    def finish(self, eid: int, timeout: float = 60) -> tuple[dict[str, Any], list[Event]]:
        desc = self.runner.wait(eid, timeout)
        with self.runner.store.read() as tx:
            events = tx.get_events(eid, 0, 100000)
        assert_one_terminal(events)
        return desc, events

    def run(self, rel: str, args: dict[str, Any] | None = None
            ) -> tuple[dict[str, Any], list[Event]]:
        return self.finish(self.start(rel, args))

    def register(self, rel: str) -> None:
        path = fixture_path(rel)
        self.runner.engine.register(path.read_text(), str(path))

    def execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.target, autocommit=True) as conn:
            conn.execute(sql.encode())

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.target) as conn:
            return list(conn.execute(sql.encode(), params).fetchall())


@pytest.fixture(scope="module")
def compat(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compat]:
    home = tmp_path_factory.mktemp("compat")
    with serve_api() as api, fresh_database(pg_admin_url) as target, \
            pytest.MonkeyPatch.context() as mp:
        mp.setenv("NOETL_HOME", str(home))
        mp.delenv("NOETL_STORE_URL", raising=False)
        mp.setenv("NOETL_HTTP_REWRITE", rewrite_spec(api))
        store = open_store(f"sqlite:///{home / 'noetl.db'}")
        services = Services(credentials=store_credentials(store), data_dir=str(home / "data"))
        try:
            with LocalRunner(store, concurrency=8, services=services) as runner:
                for name in ("pg_local", "pg_k8s"):
                    put_credential(store, name, "postgres", pg_fields(target))
                yield Compat(runner, target, api)
        finally:
            store.close()


def events_of(events: list[Event], node: str, kind: str) -> list[Event]:
    return [e for e in events if e.node_name == node and e.event_type == kind]


def wait_until(pred: Any, timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="session", autouse=True)
def template_tap_installed() -> Iterator[template_tap.Tap]:
    """The tap on tool inputs (tests/compat/template_tap.py), for every embedded compat run."""
    with pytest.MonkeyPatch.context() as mp:
        yield template_tap.install(mp)


@pytest.fixture(autouse=True)
def no_template_reaches_a_tool(template_tap_installed: template_tap.Tap) -> Iterator[None]:
    """Every compat test fails if one of its runs COMPLETED while ``{{``/``{%`` reached a tool."""
    since = len(template_tap_installed.leaks)
    yield
    bad = template_tap_installed.violations(since)
    assert not bad, "template text reached a tool in a completed run:\n" + "\n".join(bad)
