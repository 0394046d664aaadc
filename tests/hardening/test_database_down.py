"""Losing the database mid-run (issue 13, item 9): every request that needs it gets 503 with
``Retry-After`` and a JSON reason (no stack trace), liveness keeps answering, and the server
serves normally again once the database is back. A real ``noetl server start`` on a real
PostgreSQL database whose connections are terminated and refused."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

pytestmark = pytest.mark.postgres

PB = ("apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: d, path: t/down}\n"
      "workflow:\n  - step: start\n    type: noop\n")


@pytest.fixture
def database_switch(fresh_pg_url: str, pg_admin_url: str) -> Iterator[Callable[[bool], None]]:
    db = urlsplit(fresh_pg_url).path.lstrip("/")

    def switch(up: bool) -> None:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS {str(up).lower()}')
            if not up:  # and every open connection (the server's pool, its LISTEN) is cut
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = %s AND pid <> pg_backend_pid()", (db,))

    yield switch
    switch(True)


def test_database_down_is_503_with_retry_after(fresh_pg_url: str, server_proc: Callable[..., str],
                                               database_switch: Callable[[bool], None]) -> None:
    url = server_proc({"NOETL_PG_POOL_TIMEOUT": "0.5"}, store=fresh_pg_url)
    c = httpx.Client(base_url=url, timeout=30)
    c.post("/api/catalog/register", json={"content": PB}).raise_for_status()
    eid = c.post("/api/run/playbook", json={"path": "t/down"}).json()["execution_id"]

    database_switch(False)
    requests = [("GET", "/api/executions", None), ("GET", f"/api/executions/{eid}", None),
                ("GET", f"/api/executions/{eid}/events", None),
                ("POST", "/api/catalog/register", {"content": PB.replace("t/down", "t/d2")}),
                ("POST", "/api/run/playbook", {"path": "t/down"}),
                ("POST", "/api/queue/lease", {"worker_id": "w", "limit": 1}),
                # the other hot routes (their own dispatch, api/hot.HotRoutes)
                ("POST", "/api/queue/1/complete", {"worker_id": "w", "status": "ok"}),
                ("POST", "/api/queue/1/fail", {"worker_id": "w", "error": "e"}),
                ("POST", "/api/queue/report", {"worker_id": "w", "reports": [
                    {"job_id": "1", "status": "ok"}]}),
                ("POST", "/api/queue/report", {"worker_id": "w", "reports": [  # the batch
                    {"job_id": "1", "status": "ok"}, {"job_id": "2", "status": "ok"}]}),
                ("POST", "/api/queue/1/heartbeat", {"worker_id": "w"}),
                ("GET", "/api/credentials", None)]
    for method, path, body in requests * 2:  # the cut connections, then no connection at all
        t0 = time.monotonic()
        r = c.request(method, path, json=body)
        assert r.status_code == 503, (method, path, r.status_code, r.text)
        assert r.headers["Retry-After"].isdigit()
        assert r.json()["error"] == "unavailable" and "retry" in r.json()["detail"]
        assert "Traceback" not in r.text
        assert time.monotonic() - t0 < 15, (method, path)  # pool timeout 0.5 s + slack
        assert c.get("/health").status_code == 200  # liveness needs no database

    database_switch(True)
    deadline = time.monotonic() + 30
    while True:  # the pool reconnects on its own
        r = c.get(f"/api/executions/{eid}")
        if r.status_code == 200:
            break
        assert r.status_code == 503 and time.monotonic() < deadline, r.text
        time.sleep(0.2)
    c.post("/api/catalog/register", json={"content": PB.replace("t/down", "t/d3")}
           ).raise_for_status()
    assert c.post("/api/run/playbook", json={"path": "t/d3"}).status_code == 200


def _server_children(pid: int) -> list[int]:
    """The pids of the server processes ``noetl server start`` (pid) runs."""
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(k) for k in kids
            if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]


def test_a_server_process_restarted_while_the_database_is_down_waits_for_it(
        fresh_pg_url: str, server_proc: Callable[..., str], server_pids: dict[str, int],
        database_switch: Callable[[bool], None], tmp_path: Path) -> None:
    """One of --processes dying while the database is down is restarted, and the new one
    waits for the database (uvicorn stops every process when one fails to start)."""
    url = server_proc({"NOETL_PG_POOL_TIMEOUT": "0.5"}, store=fresh_pg_url,
                      args=("--processes", "2", "--log-level", "info"))
    parent = server_pids[url]
    log = tmp_path / "server-0.log"

    def started() -> int:  # server processes that finished starting
        return log.read_text().count("Application startup complete")

    deadline = time.monotonic() + 30
    while started() < 2:  # both serve (ready means one does)
        assert time.monotonic() < deadline and Path(f"/proc/{parent}").exists(), log.read_text()
        time.sleep(0.05)
    kids = _server_children(parent)
    assert len(kids) == 2, kids
    database_switch(False)
    os.kill(kids[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while "database unavailable at startup" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        assert Path(f"/proc/{parent}").exists(), log.read_text()
        time.sleep(0.1)
    c = httpx.Client(base_url=url, timeout=30)
    assert c.get("/health").status_code == 200  # the other process still answers
    assert c.get("/api/executions").status_code == 503

    database_switch(True)
    deadline = time.monotonic() + 30
    while started() < 3:  # the restarted process got the database and serves
        assert time.monotonic() < deadline and Path(f"/proc/{parent}").exists(), log.read_text()
        time.sleep(0.1)
    restarted = [k for k in _server_children(parent) if k != kids[1]]
    assert len(restarted) == 1 and restarted[0] != kids[0]
    while c.get("/api/executions").status_code != 200:  # the other one's pool reconnects
        assert time.monotonic() < deadline
        time.sleep(0.2)
    c.post("/api/catalog/register", json={"content": PB}).raise_for_status()
    assert c.post("/api/run/playbook", json={"path": "t/down"}).status_code == 200
    assert "failed to start" not in log.read_text()


def test_while_the_database_is_down_requests_fail_fast_and_recovery_is_prompt(
        fresh_pg_url: str, server_proc: Callable[..., str],
        database_switch: Callable[[bool], None]) -> None:
    """With the default pool timeout (30 s): while the database is down each request gets
    its 503 at once (not after the pool timeout) and /ready says so; once it is back the
    server serves within seconds however long it was down (psycopg_pool's own reconnection
    backoff doubles without a cap: after 18 s down its next attempt came 10-16 s later)."""
    url = server_proc({}, store=fresh_pg_url, args=("--processes", "1"))
    c = httpx.Client(base_url=url, timeout=60)
    assert c.get("/ready").json() == {"status": "ready"}
    database_switch(False)
    down_at = time.monotonic()
    while time.monotonic() - down_at < 18:  # requests all along, each answered quickly
        t0 = time.monotonic()
        r = c.get("/api/executions")
        assert r.status_code == 503, r.text
        assert time.monotonic() - t0 < 10, "waited for the pool timeout"  # it is 30 s
    r = c.get("/ready")
    assert r.status_code == 503 and r.headers["Retry-After"].isdigit()
    assert r.json()["status"] == "unavailable"
    assert c.get("/health").status_code == 200  # liveness: the process is fine

    database_switch(True)
    up_at = time.monotonic()
    while c.get("/api/executions").status_code != 200:
        assert time.monotonic() - up_at < 30
        time.sleep(0.1)
    assert time.monotonic() - up_at < 6  # reconnection backs off to at most 2 s
    assert c.get("/ready").status_code == 200
