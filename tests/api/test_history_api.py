"""Logs, lineage, rerun and resume over real HTTP, with a worker pool that reaches the server
only through HttpBackend (so logs travel with reports and heartbeats)."""

from __future__ import annotations

import time
from pathlib import Path

from noetl.worker.http_backend import HttpBackend
from noetl.worker.pool import WorkerPool
from tests.api.conftest import Running
from tests.steplogs import WRITES, WRITES_PATH


def _pool(api: Running) -> WorkerPool:
    backend = HttpBackend(api.url, wait_seconds=1.0, lease_seconds=0.6)  # heartbeats: 0.2 s
    return WorkerPool(backend, 2, backend.services(), worker_id="w-logs")


def _wait_status(c: object, eid: str, status: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        d = c.get(f"/api/executions/{eid}").json()  # type: ignore[attr-defined]
        if d["status"] == status:
            return dict(d)
        time.sleep(0.05)
    raise AssertionError(f"execution {eid} never became {status}")


def test_logs_follow_a_running_step_then_filter_and_end(api: Running, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with api.client() as c, _pool(api):
        c.post("/api/catalog/register", json={"content": WRITES}).raise_for_status()
        eid = c.post("/api/run/playbook", json={
            "path": WRITES_PATH, "args": {"gate": str(gate), "fail": True}}).json()["execution_id"]
        # long-poll: answers as soon as records are stored, the running step's included
        seen: list[dict] = []
        since = 0
        deadline = time.monotonic() + 30
        while len(seen) < 4 and time.monotonic() < deadline:
            page = c.get(f"/api/executions/{eid}/logs",
                         params={"since": since, "wait": 10}, timeout=40).json()
            seen += page["items"]
            since = page["last_id"]
            assert page["status"] == "RUNNING" and page["done"] is False
        assert [(r["step"], r["stream"], r["level"], r["message"]) for r in seen] == [
            ("start", "stdout", "INFO", "PRINTED-BY-STEP"),
            ("start", "stderr", "WARNING", "STDERR-OF-STEP"),
            ("start", "log", "INFO", "LOGGED-BY-STEP 42"),
            ("hold", "stdout", "INFO", "BEFORE-GATE")]  # hold is still running: a heartbeat's
        assert seen[2]["logger"] == "etl.load" and seen[0]["worker_id"] == "w-logs"
        t0 = time.monotonic()
        empty = c.get(f"/api/executions/{eid}/logs", params={"since": since, "wait": 0.5}).json()
        assert empty["items"] == [] and time.monotonic() - t0 >= 0.45  # waited, then empty
        gate.write_text("open")
        rest: list[dict] = []
        done = False
        while not done and time.monotonic() < deadline:
            page = c.get(f"/api/executions/{eid}/logs",
                         params={"since": since, "wait": 10}, timeout=40).json()
            rest += page["items"]
            since = page["last_id"]
            done = page["done"]
        assert done and page["status"] == "FAILED"
        assert [(r["step"], r["index"], r["message"]) for r in rest] == [
            ("hold", None, "AFTER-GATE"), ("each", 0, "ITEM-1"), ("each", 1, "ITEM-2"),
            ("last", None, "LAST-RUNS")]
        one = c.get(f"/api/executions/{eid}/logs", params={"step": "each", "item": 1}).json()
        assert [r["message"] for r in one["items"]] == ["ITEM-2"]
        assert c.get("/api/executions/123/logs").status_code == 404
        assert c.get(f"/api/executions/{eid}/logs", params={"wait": 31}).status_code == 422


def test_rerun_resume_and_lineage_both_ways(api: Running, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.write_text("open")
    with api.client() as c, _pool(api):
        c.post("/api/catalog/register", json={"content": WRITES}).raise_for_status()
        eid = c.post("/api/run/playbook", json={
            "path": WRITES_PATH, "args": {"gate": str(gate), "fail": True}}).json()["execution_id"]
        _wait_status(c, eid, "FAILED")
        lin = c.get(f"/api/executions/{eid}/lineage").json()
        assert lin["inputs"]["args"] == {"gate": str(gate), "fail": True}
        assert lin["inputs"]["workload"] == {"gate": str(gate), "fail": True}
        assert lin["origin"] is None and lin["derived"] == []

        r = c.post(f"/api/executions/{eid}/resume", json={"args": {"fail": False}})
        assert r.status_code == 200, r.text
        resumed = r.json()
        assert resumed["kind"] == "resume" and resumed["source_execution_id"] == eid
        done = _wait_status(c, resumed["execution_id"], "COMPLETED")
        assert done["result"] == "ok"
        logs = c.get(f"/api/executions/{resumed['execution_id']}/logs").json()["items"]
        assert [r["message"] for r in logs] == ["LAST-RUNS"]  # the others reused
        events = c.get(f"/api/executions/{resumed['execution_id']}/events").json()["items"]
        assert [e["node_name"] for e in events if e["event_type"] == "step_reused"] == [
            "start", "hold", "each"]

        rr = c.post(f"/api/executions/{eid}/rerun")  # no body: the same inputs
        assert rr.status_code == 200, rr.text
        _wait_status(c, rr.json()["execution_id"], "FAILED")

        back = c.get(f"/api/executions/{resumed['execution_id']}/lineage").json()
        assert back["origin"]["kind"] == "resume" and back["origin"]["source_execution_id"] == eid
        assert back["origin"]["source_status"] == "FAILED"
        assert back["origin"]["overrides"] == {"fail": False}
        assert back["origin"]["reused"] == ["start", "hold", "each"]
        assert back["inputs"]["workload"] == {"gate": str(gate), "fail": False}
        fwd = c.get(f"/api/executions/{eid}/lineage").json()
        assert [(d["execution_id"], d["kind"], d["status"]) for d in fwd["derived"]] == [
            (resumed["execution_id"], "resume", "COMPLETED"),
            (rr.json()["execution_id"], "rerun", "FAILED")]

        conflict = c.post(f"/api/executions/{resumed['execution_id']}/resume")
        assert conflict.status_code == 409 and "nothing to resume" in conflict.json()["detail"]
        assert c.post("/api/executions/999/rerun").status_code == 404
        assert c.post(f"/api/executions/{eid}/rerun", json={"args": [1]}).status_code == 422
