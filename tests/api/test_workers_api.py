"""The worker registry over HTTP (register/heartbeat, list, stop, the ``noetl_workers``
gauge), the server's own reaper (an expired lease is re-queued with no worker polling), the
in-server worker pool, and ``noetl server start``'s defaults per store."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.api.conftest import Running
from tests.distributed.conftest import Cluster
from tests.helpers import wait_until

ONE = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: one, path: tests/one}
workflow:
  - step: start
    type: python
    code: |
      def main():
          return {"ok": 1}
"""
BEAT = {"worker_id": "r-1", "session": "abc", "mode": "remote", "hostname": "h", "pid": 7,
        "concurrency": 4, "running": 1, "jobs_done": 12, "lease_seconds": 30}


def _start(c: httpx.Client) -> str:
    c.post("/api/catalog/register", json={"content": ONE}).raise_for_status()
    r = c.post("/api/run/playbook", json={"path": "tests/one"})
    r.raise_for_status()
    return str(r.json()["execution_id"])


def test_register_heartbeat_list_stop_and_gauge(api: Running) -> None:
    with api.client() as c:
        assert c.get("/api/workers").json()["items"] == []
        bad = c.post("/api/workers/heartbeat", json={"worker_id": "r-1", "session": "abc"})
        assert bad.status_code == 422 and "lease_seconds" in bad.text
        assert c.post("/api/workers/heartbeat", json=BEAT).json() == {"status": "ok",
                                                                     "worker_id": "r-1"}
        eid = _start(c)
        job = c.post("/api/queue/lease", json={"worker_id": "r-1"}).json()["jobs"][0]
        body = c.get("/api/workers").json()
        assert body["counts"] == {"alive": 1, "lost": 0, "stopped": 0}
        (w,) = body["items"]
        assert {k: w[k] for k in BEAT} == BEAT
        assert w["state"] == "alive" and w["meta"] == {}
        assert w["jobs"] == [{"job_id": job["job_id"], "execution_id": eid, "step": "start",
                              "index": None, "attempt": 1, "lease_until": job["lease_until"]}]
        assert 'noetl_workers{state="alive"} 1.0' in c.get("/metrics").text
        assert c.post("/api/workers/nobody/stop", json={}).status_code == 404
        assert c.post("/api/workers/r-1/stop", json={}).status_code == 200
        assert c.get("/api/workers").json()["counts"] == {"alive": 0, "lost": 0, "stopped": 1}
        metrics = c.get("/metrics").text
        assert 'noetl_workers{state="stopped"} 1.0' in metrics
        assert 'noetl_workers{state="alive"} 0.0' in metrics
        assert c.post("/api/workers/r-1/stop", json={"forget": True}).status_code == 200
        assert c.get("/api/workers").json()["items"] == []
        # any id a worker may choose, as the worker's client sends it (quoted)
        from noetl.worker.http_backend import HttpBackend

        odd = {**BEAT, "worker_id": "host/a b?c"}
        with HttpBackend(api.url) as backend:
            backend.worker_beat(odd)
            assert [w["worker_id"] for w in c.get("/api/workers").json()["items"]] == [
                "host/a b?c"]
            backend.worker_stopped("host/a b?c")
        assert c.get("/api/workers").json()["counts"]["stopped"] == 1


def test_the_server_reaps_an_expired_lease_with_no_worker_polling(api: Running) -> None:
    with api.client() as c:
        eid = _start(c)
        job = c.post("/api/queue/lease", json={"worker_id": "gone", "lease_seconds": 0.3}
                     ).json()["jobs"][0]

        def requeued() -> bool:
            rows = c.get("/api/queue", params={"execution_id": eid}).json()["items"]
            return bool(rows) and rows[0]["status"] == "queued"
        # the reaper wakes when the lease ends (at the latest every second); the bound is
        # generous for a loaded machine: no lease, no poll re-queues it but the reaper
        wait_until(requeued, 10, "the reaper to re-queue the job")
        why = c.get(f"/api/executions/{eid}").json()["steps"]["start"]["waiting"]
        assert why["reason"] == "lease_expired" and why["worker_id"] == "gone"
        assert "re-queued: no worker has polled yet" in why["message"]
        again = c.post("/api/queue/lease", json={"worker_id": "w-2"}).json()["jobs"][0]
        assert again["job_id"] == job["job_id"] and again["attempt"] == 2


def test_in_server_pool_runs_playbooks(serve: Callable[..., Running], sqlite_url: str,
                                       noetl_home: Path) -> None:
    srv = serve(sqlite_url, workers=2)
    with srv.client() as c:
        eid = _start(c)
        wait_until(lambda: c.get(f"/api/executions/{eid}").json()["status"] == "COMPLETED", 20,
               "the server's own workers to run it")
        (w,) = c.get("/api/workers").json()["items"]
        assert (w["mode"], w["concurrency"], w["state"]) == ("server", 2, "alive")
    srv.stop()  # the pool stops with the server and says so in the store
    from noetl.engine.workers import workers_view
    from noetl.store import open_store

    store = open_store(sqlite_url)
    try:
        with store.read() as tx:
            assert [x["state"] for x in workers_view(tx)["items"]] == ["stopped"]
    finally:
        store.close()


def test_server_start_runs_no_workers_on_postgres_by_default(fresh_pg_url: str,
                                                              tmp_path: Path) -> None:
    """On PostgreSQL, playbook code runs in `noetl worker start` processes, not the server."""
    c = Cluster(fresh_pg_url, tmp_path)
    try:
        url = c.server("a")
        with httpx.Client(base_url=url, timeout=30) as h:
            eid = _start(h)
            why = wait_until(lambda: h.get(f"/api/executions/{eid}").json()["steps"]["start"]
                         .get("waiting"), 10, "an explanation")
            assert why["reason"] == "no_worker"
            assert h.get("/api/workers").json()["items"] == []
    finally:
        c.stop_all()


def test_processes_with_workers_is_refused(fresh_pg_url: str) -> None:
    r = subprocess.run([sys.executable, "-m", "noetl", "server", "start", "--port", "1",
                        "--store", fresh_pg_url, "--processes", "2", "--workers"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--workers runs in one server process" in r.stderr
