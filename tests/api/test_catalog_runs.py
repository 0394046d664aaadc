"""Catalog and executions over real HTTP, run by a worker pool that talks to the server only
through HttpBackend."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from noetl.client import Client
from noetl.errors import NotFound, PlaybookError
from noetl.worker.http_backend import HttpBackend
from noetl.worker.pool import WorkerPool
from tests.api.conftest import Running
from tests.helpers import TERMINAL_EVENTS

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "noetl"
HELLO = (FIX / "hello_world" / "hello_world.yaml").read_text()
FLOW = (FIX / "control_flow_workbook" / "control_flow_workbook.yaml").read_text()

BAD = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata:
  name: bad
  path: tests/bad
workflow:
  - step: start
    next:
      - step: nowhere
"""


def pool_for(api: Running, concurrency: int = 2) -> WorkerPool:
    backend = HttpBackend(api.url, wait_seconds=1.0)
    return WorkerPool(backend, concurrency, backend.services(), worker_id="w-test")


def test_register_list_resource_versions(api: Running) -> None:
    with api.client() as c:
        r = c.post("/api/catalog/register", json={"content": HELLO})
        assert r.status_code == 200, r.text
        first = r.json()
        assert first["status"] == "success" and first["version"] == 1
        assert first["path"] == "tests/fixtures/playbooks/hello_world"
        assert first["kind"] == "Playbook" and first["catalog_id"].isdigit()
        r = c.post("/api/catalog/register",
                   json={"content_base64": base64.b64encode(HELLO.encode()).decode()})
        assert r.json()["version"] == 2
        entries = c.post("/api/catalog/list", json={}).json()["entries"]
        assert [e["version"] for e in entries if e["path"] == first["path"]] == [2, 1]
        assert all("content" not in e for e in entries)
        one = c.post("/api/catalog/resource", json={"path": first["path"], "version": 1}).json()
        assert one["content"] == HELLO and one["catalog_id"] == first["catalog_id"]
        by_id = c.post("/api/catalog/resource", json={"catalog_id": first["catalog_id"]}).json()
        assert by_id["version"] == 1
        latest = c.post("/api/catalog/resource", json={"path": first["path"]}).json()
        assert latest["version"] == 2
        vers = c.get(f"/api/catalog/{first['path']}").json()
        assert [v["version"] for v in vers["versions"]] == [2, 1]
        assert c.get("/api/catalog/no/such/path").status_code == 404
        assert c.post("/api/catalog/resource",
                      json={"path": first["path"], "version": 9}).status_code == 404


def test_invalid_playbook_reports_problems_with_lines(api: Running) -> None:
    with api.client() as c:
        r = c.post("/api/catalog/register", json={"content": BAD})
        assert r.status_code == 422
        body = r.json()
        assert "nowhere" in body["detail"]
        assert any(p["line"] == 9 and "nowhere" in p["message"] for p in body["problems"]), body
        assert c.post("/api/catalog/list", json={}).json()["entries"] == []
    with Client(api.url) as cl, pytest.raises(PlaybookError) as ei:
        cl.register(BAD)
    assert ei.value.problems and ei.value.problems[0].line == 9


def test_register_returns_the_warnings_it_did_not_refuse(api: Running) -> None:
    """An ignored key is not silently dropped: the register answer lists it with its line and
    the near key (the UI shows these after a register)."""
    typo = BAD.replace("step: nowhere", "step: end") + "  - step: end\n    descripton: the end\n"
    with api.client() as c:
        r = c.post("/api/catalog/register", json={"content": typo})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["version"] == 1
        assert body["warnings"] == [{
            "where": "step 'end'", "line": 11, "severity": "warning",
            "message": "unknown key 'descripton' (did you mean 'description'?) (ignored)"}]
        clean = c.post("/api/catalog/register", json={"content": HELLO}).json()
        assert clean["warnings"] == []


def test_run_fixtures_over_http(api: Running) -> None:
    with Client(api.url) as cl, pool_for(api):
        cl.register(HELLO)
        cl.register(FLOW)
        started = cl.run("tests/fixtures/playbooks/hello_world")
        assert started["type"] == "playbook" and started["name"] == "hello_world"
        assert started["version"] == "1" and started["status"] in ("RUNNING", "PENDING")
        assert started["timestamp"].endswith("Z") and started["start_time"] > 0
        desc = cl.wait(started["execution_id"], 20)
        assert desc["status"] == "COMPLETED", desc["error"]
        assert desc["steps"]["test_step"]["result"] == {"message": "Hello World"}
        flow_path = next(e["path"] for e in cl.catalog_list() if "control" in e["path"])
        cold = cl.wait(cl.run(flow_path, args={"temperature_c": 10})["execution_id"], 20)
        assert cold["status"] == "COMPLETED"
        assert cold["steps"]["cold_task"]["result"] == {"who": "C"}
        assert cold["steps"]["hot_task_a"]["status"] == "SKIPPED"
        hot = cl.wait(cl.run(flow_path)["execution_id"], 20)
        assert hot["steps"]["hot_task_b"]["result"] == {"who": "B"}
        evs = cl.events(desc["execution_id"])
        assert [e["seq"] for e in evs] == sorted(e["seq"] for e in evs)
        assert sum(e["event_type"] in TERMINAL_EVENTS for e in evs) == 1
        listing = cl.executions(status="completed", limit=2)
        assert listing["total"] == 3 and len(listing["items"]) == 2
        assert listing["counts"]["COMPLETED"] == 3
        assert cl.executions(path=flow_path)["total"] == 2
        with pytest.raises(NotFound, match="no/such"):
            cl.run("no/such")


def test_events_incremental_and_cancel(api: Running) -> None:
    with Client(api.url) as cl:
        cl.register(HELLO)
        started = cl.run("tests/fixtures/playbooks/hello_world")
        eid = started["execution_id"]  # no worker: it waits in the queue
        with api.client() as c:
            page = c.get(f"/api/executions/{eid}/events").json()
            assert page["items"] and page["items"][0]["event_type"] == "execution_started"
            again = c.get(f"/api/executions/{eid}/events",
                          params={"since_event_id": page["last_event_id"]}).json()
            assert again["items"] == []
            assert c.get("/api/queue/size").json()["count"] == 1
            out = c.post(f"/api/executions/{eid}/cancel").json()
            assert out["status"] == "CANCELLED"
            newer = c.get(f"/api/executions/{eid}/events",
                          params={"since_event_id": page["last_event_id"]}).json()["items"]
            assert newer and newer[-1]["event_type"] == "execution_cancelled"
            assert all(e["seq"] > page["last_seq"] for e in newer)
            assert c.get("/api/queue/size").json()["count"] == 0
            # cancelling again changes nothing
            assert c.post(f"/api/executions/{eid}/cancel").json()["status"] == "CANCELLED"
            assert len(c.get(f"/api/executions/{eid}/events").json()["items"]) == \
                len(page["items"]) + len(newer)
