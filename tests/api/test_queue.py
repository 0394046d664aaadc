"""The worker protocol over HTTP: long-poll lease, heartbeat, complete/fail (idempotent on
report_id), release, lease expiry, and the 409 a lost lease gets."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.responses import JSONResponse

from noetl.errors import LeaseLost
from noetl.worker.http_backend import HttpBackend
from noetl.worker.runner import run_work
from tests.api.conftest import Running

Q = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: q, path: tests/q}
workload: {n: 21}
workflow:
  - step: start
    type: python
    retry: {max_attempts: 3, initial_delay: 0, jitter: false}
    args: {n: "{{ workload.n }}"}
    code: |
      def main(n):
          return {"double": n * 2}
"""


@pytest.fixture(params=["sqlite", "postgres"])
def qapi(request: pytest.FixtureRequest, serve: Callable[..., Running], tmp_path: Path,
         noetl_home: Path) -> Running:
    """The queue protocol on both stores (PostgreSQL: SKIP LOCKED leases, NOTIFY wake-ups)."""
    if request.param == "postgres":
        return serve(request.getfixturevalue("fresh_pg_url"))
    return serve(f"sqlite:///{tmp_path / 'q.db'}")


def metric(c: httpx.Client, name: str) -> float:
    for line in c.get("/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def start(c: httpx.Client) -> str:
    assert c.post("/api/catalog/register", json={"content": Q}).status_code == 200
    r = c.post("/api/run/playbook", json={"path": "tests/q"})
    assert r.status_code == 200, r.text
    return str(r.json()["execution_id"])


def lease(c: httpx.Client, worker: str, **kw: Any) -> list[dict[str, Any]]:
    r = c.post("/api/queue/lease", json={"worker_id": worker, **kw})
    assert r.status_code == 200, r.text
    return list(r.json()["jobs"])


def test_long_poll_wakes_when_work_arrives(qapi: Running) -> None:
    got: dict[str, Any] = {}

    def poll() -> None:
        with qapi.client() as c:
            t0 = time.monotonic()
            got["jobs"] = lease(c, "w1", wait_seconds=10)
            got["t"] = time.monotonic() - t0

    with qapi.client() as c:
        t0 = time.monotonic()
        assert c.post("/api/queue/lease",
                      json={"worker_id": "w0", "wait_seconds": 0.3}).json() == \
            {"status": "empty", "jobs": []}
        assert time.monotonic() - t0 >= 0.3
        th = threading.Thread(target=poll)
        th.start()
        time.sleep(0.3)  # let the poll start waiting (the point of the test)
        eid = start(c)
        th.join(10)
    assert got["t"] < 3, got
    (job,) = got["jobs"]
    assert job["execution_id"] == eid and job["step"] == "start" and job["attempt"] == 1
    assert job["ctx"]["workload"] == {"n": 21}


def test_long_poll_of_a_vanished_worker_leases_nothing(qapi: Running) -> None:
    """A worker killed while long-polling must not be handed the next job."""
    import json
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(qapi.url)
    body = json.dumps({"worker_id": "ghost", "wait_seconds": 20}).encode()
    sock = socket.create_connection((u.hostname, u.port))
    sock.sendall(b"POST /api/queue/lease HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json"
                 b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    sock.settimeout(0.3)
    try:
        early = sock.recv(200)  # nothing: the poll is waiting on the server (not refused)
    except TimeoutError:
        early = b""
    assert early == b"", early
    sock.close()
    time.sleep(0.2)
    with qapi.client() as c:
        start(c)
        jobs = lease(c, "alive", wait_seconds=5)
        assert [j["attempt"] for j in jobs] == [1]
        leased = c.get("/api/queue", params={"status": "leased"}).json()["items"]
        assert [j["worker_id"] for j in leased] == ["alive"]


def test_complete_is_idempotent_and_guards_the_lease(qapi: Running) -> None:
    with qapi.client() as c:
        eid = start(c)
        (job,) = lease(c, "w1")
        jid = job["job_id"]
        assert c.post(f"/api/queue/{jid}/heartbeat", json={"worker_id": "w2"}).status_code == 409
        hb = c.post(f"/api/queue/{jid}/heartbeat", json={"worker_id": "w1",
                                                         "extend_seconds": 100}).json()
        assert hb["status"] == "ok" and hb["cancelled"] is False
        assert hb["lease_until"] > time.time() + 90
        outcome = run_work(job)
        assert outcome["status"] == "ok" and outcome["data"] == {"double": 42}
        body = {**outcome, "report_id": "r-1"}
        wrong = c.post(f"/api/queue/{jid}/complete", json={**body, "worker_id": "w2"})
        assert wrong.status_code == 409 and wrong.json()["error"] == "lease_lost"
        ok = c.post(f"/api/queue/{jid}/complete", json={**body, "worker_id": "w1"})
        assert ok.json() == {"status": "ok", "id": jid, "jobs": []}
        dup = c.post(f"/api/queue/{jid}/complete", json={**body, "worker_id": "w1"})
        assert dup.json()["status"] == "duplicate"
        late = c.post(f"/api/queue/{jid}/complete",
                      json={**outcome, "report_id": "r-2", "worker_id": "w1"})
        assert late.status_code == 409
        desc = c.get(f"/api/executions/{eid}").json()
        assert desc["status"] == "COMPLETED" and desc["result"] == {"double": 42}
        evs = c.get(f"/api/executions/{eid}/events").json()["items"]
        assert [e["event_type"] for e in evs].count("action_completed") == 1
        assert metric(c, "noetl_step_duration_seconds_count") == 1
        assert metric(c, 'noetl_executions{status="COMPLETED"}') == 1
        assert c.get("/api/queue", params={"execution_id": eid}).json()["items"][0][
            "status"] == "done"


def test_complete_can_lease_the_next_job_in_the_same_call(qapi: Running) -> None:
    two = Q.replace("tests/q", "tests/q2") + """    next: [{step: second}]
  - step: second
    type: python
    args: {d: "{{ start.double }}"}
    code: |
      def main(d):
          return {"plus": d + 1}
"""
    with qapi.client() as c, HttpBackend(qapi.url, wait_seconds=1) as b:
        assert c.post("/api/catalog/register", json={"content": two}).status_code == 200
        eid = c.post("/api/run/playbook", json={"path": "tests/q2"}).json()["execution_id"]
        (job,) = b.lease("w1")
        res, nxt = b.report_and_lease(int(job["job_id"]), "w1",
                                      {**run_work(job), "report_id": "1"}, 1)
        assert res == "ok" and [w["step"] for w in nxt] == ["second"]
        assert nxt[0]["ctx"]["results"] == {"start": {"double": 42}}
        res, more = b.report_and_lease(int(nxt[0]["job_id"]), "w1",
                                       {**run_work(nxt[0]), "report_id": "2"}, 1)
        assert res == "ok" and more == []
        desc = c.get(f"/api/executions/{eid}").json()
        assert desc["status"] == "COMPLETED" and desc["result"] == {"plus": 43}
        started = [e for e in c.get(f"/api/executions/{eid}/events").json()["items"]
                   if e["event_type"] == "action_started"]
        assert [(e["node_name"], e["worker_id"]) for e in started] == \
            [("start", "w1"), ("second", "w1")]
        assert metric(c, "noetl_leased_jobs_total") == 2


def test_report_batch_records_several_outcomes_in_one_request(qapi: Running) -> None:
    """POST /api/queue/report: one answer per report, in order; a failure reported in the same
    batch is retried by the engine as the step's policy says; a malformed batch is refused
    (422) with nothing recorded; the HTTP backend answers a refused batch report by report."""
    with qapi.client() as c, HttpBackend(qapi.url, wait_seconds=1) as b:
        e1, e2 = start(c), start(c)
        jobs = lease(c, "w1", limit=2)
        assert sorted(j["execution_id"] for j in jobs) == sorted([e1, e2])
        ok = {**run_work(jobs[0]), "report_id": "a", "job_id": jobs[0]["job_id"]}
        failed = {"job_id": jobs[1]["job_id"], "status": "error", "report_id": "b",
                  "error": {"message": "flaky", "type": "IOError"}}
        bad = c.post("/api/queue/report", json={"worker_id": "w1",
                                                "reports": [ok, {**failed, "status": "maybe"}]})
        assert bad.status_code == 422 and "status" in bad.text
        r = c.post("/api/queue/report", json={"worker_id": "w1", "lease_next": 2,
                                              "reports": [ok, failed, {**ok, "job_id": "77"}]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert [x["status"] for x in body["results"]] == ["ok", "ok", "not_found"]
        assert [x["id"] for x in body["results"]] == [jobs[0]["job_id"], jobs[1]["job_id"], "77"]
        # the failed job is retried (max_attempts 3, no delay) and handed back at once
        (again,) = body["jobs"]
        assert again["job_id"] == jobs[1]["job_id"] and again["attempt"] == 2
        by_eid = {j["execution_id"]: j for j in jobs}
        done = c.get(f"/api/executions/{jobs[0]['execution_id']}").json()
        assert done["status"] == "COMPLETED" and done["result"] == {"double": 42}
        results, more = b.report_batch([(int(again["job_id"]), run_work(again))], "w1", 1)
        assert results[0]["status"] == "ok" and more == []
        desc = c.get(f"/api/executions/{again['execution_id']}").json()
        assert desc["status"] == "COMPLETED" and desc["steps"]["start"]["attempts"] == 2
        assert set(by_eid) == {e1, e2}
        assert metric(c, 'noetl_reports_total{result="not_found"}') == 1
        # one report the server refuses (report_id too long) spoils the batch request: the
        # backend then sends them one by one, so only that one is lost
        start(c), start(c)
        j3, j4 = lease(c, "w1", limit=2)
        results, _ = b.report_batch([(int(j3["job_id"]), {**run_work(j3), "report_id": "x" * 200}),
                                     (int(j4["job_id"]), {**run_work(j4), "report_id": "y"})],
                                    "w1", 0)
        assert [x["status"] for x in results] == ["lease_lost", "ok"]
        assert "report_id" in results[0]["error"]
        assert c.get(f"/api/executions/{j4['execution_id']}").json()["status"] == "COMPLETED"


def test_fail_retries_then_release_does_not_count_an_attempt(qapi: Running) -> None:
    with qapi.client() as c:
        eid = start(c)
        (job,) = lease(c, "w1")
        r = c.post(f"/api/queue/{job['job_id']}/fail", json={
            "worker_id": "w1", "report_id": "f-1",
            "error": {"message": "boom", "type": "RuntimeError"}})
        assert r.json()["status"] == "ok"
        (again,) = lease(c, "w1", wait_seconds=5)
        assert again["job_id"] == job["job_id"] and again["attempt"] == 2
        assert metric(c, "noetl_retries_total") == 1
        rel = c.post(f"/api/queue/{again['job_id']}/release", json={"worker_id": "w1"})
        assert rel.json()["status"] == "ok"
        assert c.get("/api/queue/size").json()["count"] == 1
        (third,) = lease(c, "w2")
        assert third["attempt"] == 2  # the released lease was not an attempt
        c.post(f"/api/queue/{third['job_id']}/complete",
               json={**run_work(third), "worker_id": "w2", "report_id": "x"})
        desc = c.get(f"/api/executions/{eid}").json()
        assert desc["status"] == "COMPLETED" and desc["steps"]["start"]["attempts"] == 2
        types = [e["event_type"] for e in
                 c.get(f"/api/executions/{eid}/events").json()["items"]]
        assert types.count("action_failed") == 1 and types.count("action_retry") == 1


def test_lease_expiry_reruns_on_another_worker(qapi: Running) -> None:
    # w1 takes a short lease and dies; w2 takes a long one (the server's reaper would take
    # back a short one of w2's too, as it sends no heartbeats here)
    with qapi.client() as c, HttpBackend(qapi.url, lease_seconds=0.3, wait_seconds=3) as _b, \
            HttpBackend(qapi.url, lease_seconds=60, wait_seconds=3) as _b2:
        eid = start(c)
        (job,) = _b.lease("w1")
        (rerun,) = _b2.lease("w2")  # blocks until w1's lease expires
        assert rerun["job_id"] == job["job_id"] and rerun["attempt"] == 2
        with pytest.raises(LeaseLost):
            _b.report(int(job["job_id"]), "w1", {**run_work(job), "report_id": "a"})
        with pytest.raises(LeaseLost, match="unknown to the server"):
            _b.report(987654321, "w1", {**run_work(job), "report_id": "c"})
        assert _b.report(int(rerun["job_id"]), "w2",
                         {**run_work(rerun), "report_id": "b"}) == "ok"
        evs = c.get(f"/api/executions/{eid}/events").json()["items"]
        retry = [e for e in evs if e["event_type"] == "action_retry"]
        assert len(retry) == 1 and retry[0]["context"]["reason"] == "lease_expired"
        started = [e for e in evs if e["event_type"] == "action_started"]
        assert [(e["worker_id"], e["attempt"]) for e in started] == [("w1", 1), ("w2", 2)]
        assert metric(c, "noetl_lease_expiries_total") == 1
        assert metric(c, "noetl_retries_total") == 0
        assert c.get(f"/api/executions/{eid}").json()["status"] == "COMPLETED"


def test_a_worker_falls_back_to_single_reports_on_a_server_without_the_batch_route(
        serve: Callable[..., Running], sqlite_url: str, noetl_home: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A newer worker against an older server (no POST /api/queue/report): the batch is sent
    report by report, and later batches go that way at once."""
    import noetl.api.app as app_mod

    real = app_mod.create_app

    def older(*args: Any, **kw: Any) -> Any:
        app = real(*args, **kw)
        inner = app.build_middleware_stack

        def without_batch_route() -> Any:
            stack = inner()

            async def asgi(scope: Any, receive: Any, send: Any) -> None:
                if scope["type"] == "http" and scope["path"] == "/api/queue/report":
                    await JSONResponse({"detail": "Not Found"}, 404)(scope, receive, send)
                    return
                await stack(scope, receive, send)
            return asgi

        app.build_middleware_stack = without_batch_route  # type: ignore[method-assign]
        return app

    monkeypatch.setattr(app_mod, "create_app", older)
    api = serve(sqlite_url)
    with api.client() as c, HttpBackend(api.url, wait_seconds=1) as b:
        assert c.post("/api/queue/report", json={"reports": []}).status_code in (404, 405)
        start(c), start(c)
        j1, j2 = lease(c, "w1", limit=2)
        results, _ = b.report_batch([(int(j1["job_id"]), {**run_work(j1), "report_id": "1"}),
                                     (int(j2["job_id"]), {**run_work(j2), "report_id": "2"})],
                                    "w1", 0)
        assert [r["status"] for r in results] == ["ok", "ok"] and b.batch_route is False
        for j in (j1, j2):
            assert c.get(f"/api/executions/{j['execution_id']}").json()["status"] == "COMPLETED"
