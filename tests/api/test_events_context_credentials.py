"""Posted events (idempotent), context rendering, credentials (encrypted, data gated), token
auth, and the server refusing to start without the key that protects stored credentials."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.requests import Request

from noetl.api.deps import allowed_hosts, secrets_refusal
from noetl.client import ApiError, Client
from noetl.errors import NotFound
from noetl.worker.http_backend import HttpBackend
from noetl.worker.pool import WorkerPool
from tests.api.conftest import Running
from tests.api.test_queue import Q, lease, start


def test_posted_events_are_stored_once(api: Running) -> None:
    with api.client() as c:
        eid = start(c)
        before = len(c.get(f"/api/executions/{eid}/events").json()["items"])
        ev = {"execution_id": eid, "event_id": "123456789", "event_type": "info",
              "node_name": "probe", "context": {"note": "from outside"}}
        first = c.post("/api/events", json=ev).json()
        assert first["status"] == "emitted" and first["event_id"] == "123456789"
        again = c.post("/api/events", json=ev).json()
        assert again["status"] == "duplicate"
        items = c.get(f"/api/executions/{eid}/events").json()["items"]
        assert len(items) == before + 1
        assert items[-1]["event_type"] == "info" and items[-1]["context"] == {"note": "from outside"}
        auto = c.post("/api/events", json={"execution_id": eid, "event_type": "warning"}).json()
        assert auto["status"] == "emitted" and auto["event_id"].isdigit()
        other = start(c)
        taken = c.post("/api/events", json={**ev, "execution_id": other})
        assert taken.status_code == 409 and "another execution" in taken.json()["detail"]
        assert len(c.get(f"/api/executions/{other}/events").json()["items"]) == before
        forged = c.post("/api/events", json={"execution_id": eid,
                                             "event_type": "execution_completed"})
        assert forged.status_code == 422 and "engine" in forged.json()["detail"]
        assert c.get(f"/api/executions/{eid}").json()["status"] != "COMPLETED"


def test_context_render_sees_workload_and_results_not_env(api: Running) -> None:
    with api.client() as c:
        eid = start(c)
        (job,) = lease(c, "w")
        from noetl.worker.runner import run_work

        c.post(f"/api/queue/{job['job_id']}/complete",
               json={**run_work(job), "worker_id": "w", "report_id": "r"})
        r = c.post("/api/context/render", json={
            "execution_id": eid,
            "template": {"n": "{{ workload.n }}", "d": "{{ start.double }}",
                         "s": "n={{ workload.n }} x={{ x }}", "plain": 5},
            "extra_context": {"x": "X"}})
        assert r.status_code == 200, r.text
        assert r.json()["rendered"] == {"n": 21, "d": 42, "s": "n=21 x=X", "plain": 5}
        env = c.post("/api/context/render", json={"execution_id": eid,
                                                  "template": "{{ env.HOME }}"})
        assert env.status_code == 422 and "env" in env.json()["detail"]
        bad = c.post("/api/context/render", json={"execution_id": eid,
                                                  "template": "{{ workload.n + }}"})
        assert bad.status_code == 422


def test_credentials_encrypted_and_gated(api: Running, sqlite_url: str) -> None:
    with Client(api.url) as cl:
        out = cl.put_credential("pg_local", "postgres", {"user": "u", "password": "s3cret"},
                                "test db", ["db"])
        assert out["name"] == "pg_local" and "data" not in out
        listed = cl.credentials()
        assert [x["name"] for x in listed] == ["pg_local"] and "data" not in listed[0]
        assert "data" not in cl.credential("pg_local")
        # loopback client, no token configured: data is served
        assert cl.credential("pg_local", include_data=True)["data"]["password"] == "s3cret"
        cl.put_credential("pg_local", "postgres", {"user": "u", "password": "new"})
        assert cl.credential("pg_local", include_data=True)["data"]["password"] == "new"
    import sqlite3

    raw = sqlite3.connect(sqlite_url[len("sqlite:///"):]).execute(
        "SELECT data_encrypted FROM credential").fetchone()[0]
    assert "new" not in raw and "password" not in raw
    # a worker resolves credentials through the server
    with HttpBackend(api.url) as b:
        assert b.services().credentials("pg_local")["data"]["user"] == "u"
    with Client(api.url) as cl:
        cl.delete_credential("pg_local")
        with pytest.raises(NotFound):
            cl.credential("pg_local")


def _request(host: str, token: str | None, auth: str | None = None) -> Request:
    from types import SimpleNamespace

    headers = [(b"authorization", auth.encode())] if auth else []
    headers.append((b"host", b"127.0.0.1:8082"))
    app = SimpleNamespace(state=SimpleNamespace(noetl=SimpleNamespace(
        token=token, hosts=allowed_hosts(token, ""))))
    return Request({"type": "http", "client": (host, 5000), "headers": headers, "app": app})


def test_who_may_read_credential_data() -> None:
    def may(req: Request) -> bool:
        return secrets_refusal(req) is None

    assert may(_request("127.0.0.1", None))
    assert may(_request("::1", None))
    assert not may(_request("10.1.2.3", None))
    assert not may(_request("127.0.0.1", "tok"))
    assert may(_request("10.1.2.3", "tok", "Bearer tok"))
    assert not may(_request("10.1.2.3", "tok", "Bearer nope"))


def test_token_required_and_nothing_changes_without_it(
        serve: Callable[..., Running], sqlite_url: str, noetl_home: Path) -> None:
    api = serve(sqlite_url, token="t0ken")
    with api.client() as anon, api.client("wrong") as bad, api.client("t0ken") as good:
        assert anon.get("/health").json() == {"status": "ok"}
        for c in (anon, bad):
            assert c.post("/api/catalog/register", json={"content": Q}).status_code == 401
            assert c.post("/api/run/playbook", json={"path": "tests/q"}).status_code == 401
            assert c.get("/api/executions").status_code == 401
            assert c.post("/api/credentials", json={"name": "x", "data": {}}).status_code == 401
            assert c.get("/metrics").status_code == 401
            assert c.get("/openapi.json").status_code == 401
        assert good.post("/api/catalog/list", json={}).json()["entries"] == []
        assert good.get("/api/credentials").json()["items"] == []
        assert good.get("/api/executions").json()["total"] == 0
        eid = start(good)
        assert good.get(f"/api/executions/{eid}").json()["execution_id"] == eid
        assert anon.post(f"/api/executions/{eid}/cancel").status_code == 401
        assert good.get(f"/api/executions/{eid}").json()["status"] != "CANCELLED"
        assert good.get("/openapi.json").json()["paths"]["/api/queue/lease"]
    with Client(api.url, token="wrong") as cl, pytest.raises(ApiError) as ei:
        cl.catalog_list()
    assert ei.value.status_code == 401
    # a worker with the token runs the execution
    with HttpBackend(api.url, token="t0ken", wait_seconds=1) as b, \
            WorkerPool(b, 1, b.services()), Client(api.url, token="t0ken") as cl:
        assert cl.wait(eid, 20)["status"] == "COMPLETED"


def test_server_refuses_start_without_key_for_stored_credentials(
        pg_url: str, tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    from noetl.credentials import put_credential
    from noetl.store import open_store

    key = Fernet.generate_key().decode()
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOETL_ENCRYPTION_KEY", "NOETL_API_TOKEN")}
    os.environ["NOETL_ENCRYPTION_KEY"] = key
    try:
        store = open_store(pg_url)
        put_credential(store, "k_test", "generic", {"a": 1})
        store.close()
    finally:
        del os.environ["NOETL_ENCRYPTION_KEY"]
    from tests.api.conftest import free_port

    proc = subprocess.run([sys.executable, "-m", "noetl", "server", "start", "--store", pg_url,
                           "--port", str(free_port())], env=env, capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode != 0
    assert "NOETL_ENCRYPTION_KEY" in proc.stderr and "refusing to start" in proc.stderr
    store = open_store(pg_url)
    with store.transaction() as tx:
        tx.delete_credential("k_test")
    store.close()

