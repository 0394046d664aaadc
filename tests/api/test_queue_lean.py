"""The lean hot routes of the queue (lease, complete, fail, report, heartbeat: raw bodies
checked by their pydantic models, orjson both ways) and the worker's light client
(``noetl.worker.http_wire``): a bad body is a 422 naming the field, a worker survives a server
restart without losing a report, non-ASCII and large values arrive intact."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from noetl.store import open_store
from noetl.templates import dumpb, dumps, loadb
from noetl.worker.http_backend import HttpBackend
from noetl.worker.pool import WorkerPool
from tests.api.conftest import Running, start_server
from tests.helpers import assert_one_terminal, wait_until

BAD_BODIES = [
    ("/api/queue/lease", {}, "body.worker_id", "Field required"),
    ("/api/queue/lease", {"worker_id": "w", "limit": 0}, "body.limit", "greater than or equal"),
    ("/api/queue/lease", {"worker_id": "w", "wait_seconds": "soon"}, "body.wait_seconds",
     "valid number"),
    ("/api/queue/lease", {"worker_id": "w" * 300}, "body.worker_id", "at most 256"),
    ("/api/queue/lease", [1, 2], "body", "valid dictionary"),
    ("/api/queue/1/complete", {"lease_next": -1}, "body.lease_next", "greater than or equal"),
    ("/api/queue/1/complete", {"status": "maybe"}, "body.status", "'ok' or 'error'"),
    ("/api/queue/1/fail", {"duration": "long"}, "body.duration", "valid number"),
    ("/api/queue/report", {"worker_id": "w"}, "body.reports", "Field required"),
    ("/api/queue/report", {"reports": [{"job_id": "x", "status": "ok"}]},
     "body.reports.0.job_id", "positive decimal id"),
    ("/api/queue/report", {"reports": [{"job_id": "1"}]}, "body.reports.0.status",
     "Field required"),
    ("/api/queue/1/heartbeat", {"extend_seconds": 5}, "body.worker_id", "Field required"),
    ("/api/queue/1/heartbeat", {"worker_id": "w", "logs": "text"}, "body.logs", "valid list"),
]


@pytest.mark.parametrize("path, body, field, message", BAD_BODIES,
                         ids=[f"{p.rsplit('/', 1)[1]}-{f}-{i}"
                              for i, (p, _, f, _m) in enumerate(BAD_BODIES)])
def test_a_bad_body_is_a_422_naming_the_field(shared_api: Running, path: str, body: Any,
                                              field: str, message: str) -> None:
    with shared_api.client() as c:
        r = c.post(path, json=body)
    assert r.status_code == 422, r.text
    out = r.json()
    assert field in [e["loc"] for e in out["errors"]], out
    assert f"{field}: " in out["detail"] and message in out["detail"], out["detail"]


@pytest.mark.parametrize("content", [b"", b"{not json", b"\xff\xfe"], ids=["empty", "broken",
                                                                           "not-utf8"])
def test_a_missing_or_broken_body_is_a_422(shared_api: Running, content: bytes) -> None:
    with shared_api.client() as c:
        for path in ("/api/queue/lease", "/api/queue/1/complete", "/api/queue/report",
                     "/api/queue/1/heartbeat"):
            r = c.post(path, content=content, headers={"Content-Type": "application/json"})
            assert r.status_code == 422, (path, r.text)
            assert r.json()["errors"][0]["loc"] == "body", r.text


def test_the_hot_routes_still_need_the_token(serve: Callable[..., Running], sqlite_url: str,
                                             noetl_home: Path) -> None:
    api = serve(sqlite_url, token="s3cret-token")
    with api.client() as c:
        for path in ("/api/queue/lease", "/api/queue/1/complete", "/api/queue/report"):
            assert c.post(path, json={"worker_id": "w"}).status_code == 401
    with api.client("s3cret-token") as c:
        assert c.post("/api/queue/lease", json={"worker_id": "w"}).json() == \
            {"status": "empty", "jobs": []}


# -- the codec: dumps' text, exactly as json.loads reads it ----------------------------------

class _Colour(enum.Enum):  # a plain Enum (not an int or str one)
    RED = "red"
    BLUE = (0, 0, 255)


def test_the_wire_codec_keeps_what_the_shared_encoder_does() -> None:
    value = {"when": dt.datetime(2024, 5, 6, 7, 8, 9, 10), "day": dt.date(2024, 1, 2),
             "id": uuid.UUID(int=7), "amount": decimal.Decimal("2.50"), "raw": b"\x00\xff",
             "set": {3}, "tuple": (1, "é"), "text": "naïve — 日本語 🎉\u2028",
             "huge": 10 ** 40, "keys": {1: "one", None: "none"},
             "enum": _Colour.RED, "enums": [_Colour.BLUE]}
    assert json.loads(dumps(value))["enums"] == [[0, 0, 255]]  # the value, embedded too
    assert json.loads(dumpb(value)) == json.loads(dumps(value))
    assert loadb(dumpb(value)) == json.loads(dumps(value))


@pytest.mark.parametrize("text", ["[123456789012345678901234567890]", "[NaN, Infinity]",
                                  '["\\ud800"]', '{"a": 18446744073709551615}',
                                  "[" + "12345678, " * 5000 + "-123456789012345678901]",
                                  '["12345678901234567890123", 1]'],
                         ids=["long-int", "nan", "lone-surrogate", "u64", "long-int-late",
                              "digits-in-a-string"])
def test_the_wire_decoder_reads_as_json_loads(text: str) -> None:
    got, want = loadb(text.encode()), json.loads(text)
    assert repr(got) == repr(want) and [type(x) for x in got] == [type(x) for x in want]


def test_views_are_undone_into_plain_containers() -> None:
    """What a python step's ``context`` holds: plain dicts and lists, fresh at the top, the
    views inside views undone too (a view's plain contents are copied as they are)."""
    from noetl.templates import _unview, view

    inner = view({"b": 1})
    nested = view({"a": view([inner, {"c": 2}]), "d": [1, 2]})
    got = _unview(nested)
    assert type(got) is dict and type(got["a"]) is list and type(got["a"][0]) is dict
    assert got == {"a": [{"b": 1}, {"c": 2}], "d": [1, 2]}
    items = list(range(5000))
    plain = _unview(view(items))
    assert type(plain) is list and plain == items and plain is not items
    flat = view({"x": items})
    assert type(_unview(flat)) is dict and _unview(flat)["x"] is items


# -- a worker over the light client ----------------------------------------------------------

PB_WAIT = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {{name: r, path: tests/restart}}
workflow:
  - step: start
    type: python
    code: |
      def main():
          return {{"a": 1}}
    next: [{{step: slow}}]
  - step: slow
    type: python
    code: |
      import os, time
      def main():
          while not os.path.exists({gate!r}):  # released by the test once the server is down
              time.sleep(0.02)
          return {{"b": 2}}
    next: [{{step: after}}]
  - step: after
    type: python
    code: |
      def main():
          return {{"c": 3}}
"""


def _events(store_url: str, eid: int) -> list[Any]:
    store = open_store(store_url)
    try:
        with store.read() as tx:
            return tx.get_events(eid, 0, 100000)
    finally:
        store.close()


def test_a_worker_survives_a_server_restart_without_losing_a_report(
        sqlite_url: str, noetl_home: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """The server stops while a step runs; the step ends while it is down (its report cannot
    be sent); a server starts again on the same port: the worker's connections are new, the
    report is recorded once, and the execution goes on to its end."""
    gate = tmp_path / "gate"
    first = start_server(sqlite_url)
    port = int(first.url.rsplit(":", 1)[1])
    servers = [first]
    backend = HttpBackend(first.url, wait_seconds=0.5)
    pool = WorkerPool(backend, 2, backend.services(), worker_id="w-restart")
    try:
        pool.start()
        with first.client() as c:
            c.post("/api/catalog/register",
                   json={"content": PB_WAIT.format(gate=str(gate))}).raise_for_status()
            eid = int(c.post("/api/run/playbook", json={"path": "tests/restart"}
                             ).json()["execution_id"])

        def slow_started() -> bool:
            return any(e.event_type == "action_started" and e.node_name == "slow"
                       for e in _events(sqlite_url, eid))

        wait_until(slow_started, 30, "the slow step to start")
        connects = backend.wire.connects
        first.stop()
        gate.touch()  # the step ends now; its report finds no server
        wait_until(lambda: any("report failed" in r.getMessage() for r in caplog.records), 30,
                   "the slow step's report to fail")
        second = start_server(sqlite_url, port=port)
        servers.append(second)

        def ended() -> list[Any]:
            return [e for e in _events(sqlite_url, eid)
                    if e.event_type.startswith("execution_") and e.event_type !=
                    "execution_started"]

        wait_until(ended, 60, "the execution to end after the restart")
        events = _events(sqlite_url, eid)
        assert_one_terminal(events)
        assert [e.event_type for e in events if e.event_type.startswith("execution_")][-1] == \
            "execution_completed"
        done = [e.node_name for e in events if e.event_type == "action_completed"]
        assert done == ["start", "slow", "after"]  # the slow step's report recorded once
        assert backend.wire.connects > connects  # new connections to the new server
    finally:
        pool.stop(timeout=10)
        backend.close()
        for s in servers:
            s.stop()


PB_BIG = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: big, path: tests/big}
workload: {text: "naïve — 日本語 🎉", n: 200000}
workflow:
  - step: start
    type: python
    args: {text: "{{ workload.text }}", n: "{{ workload.n }}"}
    code: |
      def main(text, n):
          return {"text": text + " ✓", "big": text * n, "nums": list(range(n)),
                  "long": 10 ** 30}
    next: [{step: echo}]
  - step: echo
    type: python
    args: {got: "{{ start }}"}
    code: |
      def main(got):
          return {"len": len(got["big"]), "text": got["text"], "last": got["nums"][-1],
                  "long": got["long"], "same": got["big"] == "naïve — 日本語 🎉" * 200000}
"""


def test_non_ascii_and_large_values_round_trip(api: Running) -> None:
    """A 3 MB non-ASCII string, a 200,000-item list and a 31-digit integer go from a worker
    to the server (a report) and back to a worker (the next step's work package)."""
    text = "naïve — 日本語 🎉"
    with HttpBackend(api.url, wait_seconds=0.5) as backend, \
            WorkerPool(backend, 2, backend.services()), httpx.Client(base_url=api.url,
                                                                      timeout=60) as c:
        c.post("/api/catalog/register", json={"content": PB_BIG}).raise_for_status()
        eid = c.post("/api/run/playbook", json={"path": "tests/big"}).json()["execution_id"]

        def finished() -> dict[str, Any] | None:
            desc: dict[str, Any] = c.get(f"/api/executions/{eid}").json()
            return desc if desc["status"] in ("COMPLETED", "FAILED") else None

        desc = wait_until(finished, 60, "the execution to end")
    assert desc["status"] == "COMPLETED", desc
    steps = desc["steps"]
    echo = steps["echo"]["result"]
    assert echo == {"len": len(text) * 200000, "text": text + " ✓", "last": 199999,
                    "long": 10 ** 30, "same": True}
    start = steps["start"]["result"]
    assert start["big"] == text * 200000 and start["long"] == 10 ** 30


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"7\r\n{\"a\": [\r\n6\r\n1, 2]}\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    b"{\"a\": [1, 2]}",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n"
    b"{\"a\": [1, 2]}",
], ids=["chunked", "to-the-end", "continue"])
def test_the_light_client_reads_any_http_11_answer(answer: bytes) -> None:
    """Our server sizes its answers; a proxy in between may not."""
    import socket
    import threading

    from noetl.worker.http_wire import LeanHttp

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    got: list[bytes] = []

    def serve_once() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data or not data.endswith(b"}"):
                data += conn.recv(65536)
            got.append(data)
            conn.sendall(answer)

    t = threading.Thread(target=serve_once, daemon=True)
    t.start()
    wire = LeanHttp(f"http://127.0.0.1:{port}", token="tok")
    try:
        assert wire.post("/api/queue/lease", {"worker_id": "wé"}) == {"a": [1, 2]}
    finally:
        wire.close()
        listener.close()
        t.join(5)
    head, _, sent = got[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /api/queue/lease HTTP/1.1\r\n")
    assert b"Authorization: Bearer tok" in head and json.loads(sent) == {"worker_id": "wé"}
