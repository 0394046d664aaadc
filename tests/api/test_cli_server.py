"""The CLI against a server (``--server``): register, list, execute, status, events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from noetl.worker.http_backend import HttpBackend
from noetl.worker.pool import WorkerPool
from tests.api.conftest import Running

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "noetl"


def noetl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOETL_")}
    env["NOETL_HOME"] = str(cwd)
    return subprocess.run([sys.executable, "-m", "noetl", *args], capture_output=True,
                          text=True, timeout=60, env=env, cwd=cwd)


def test_cli_commands_with_server(api: Running, tmp_path: Path) -> None:
    s = ["--server", api.url]
    hello = str(FIX / "hello_world" / "hello_world.yaml")
    r = noetl("catalog", "register", hello, *s, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    reg = json.loads(r.stdout)
    assert reg["version"] == 1 and reg["path"] == "tests/fixtures/playbooks/hello_world"
    r = noetl("catalog", "list", *s, "--json", cwd=tmp_path)
    assert [e["path"] for e in json.loads(r.stdout)] == [reg["path"]]
    with HttpBackend(api.url, wait_seconds=1) as b, WorkerPool(b, 2, b.services()):
        r = noetl("execute", reg["path"], *s, "--json", "--timeout", "30", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "COMPLETED" and out["result"] == {"message": "Hello World"}
    eid = out["execution_id"]
    r = noetl("status", eid, *s, "--json", cwd=tmp_path)
    assert json.loads(r.stdout)["steps"]["test_step"]["status"] == "COMPLETED"
    r = noetl("events", eid, *s, "--json", cwd=tmp_path)
    evs = json.loads(r.stdout)
    assert evs[0]["event_type"] == "execution_started"
    assert evs[-1]["event_type"] == "execution_completed"
    r = noetl("events", eid, *s, "--json", "--since", str(evs[-2]["seq"]), cwd=tmp_path)
    assert [e["event_type"] for e in json.loads(r.stdout)] == ["execution_completed"]
    r = noetl("status", "12345", *s, cwd=tmp_path)
    assert r.returncode == 1 and "12345 not found" in r.stderr
    r = noetl("execute", "no/such", *s, "--no-wait", cwd=tmp_path)
    assert r.returncode == 1 and "error: playbook 'no/such' not found" in r.stderr
    r = noetl("catalog", "list", "--server", "http://127.0.0.1:9", cwd=tmp_path)
    assert r.returncode == 1 and "cannot reach the NoETL server" in r.stderr


def test_openapi_docs_served(api: Running) -> None:
    with api.client() as c:
        assert "swagger" in c.get("/docs").text.lower()
        paths = c.get("/openapi.json").json()["paths"]
        for p in ("/api/catalog/register", "/api/run/playbook", "/api/executions/{execution_id}",
                  "/api/queue/lease", "/api/credentials/{name}", "/health", "/metrics"):
            assert p in paths
        assert c.post("/api/catalog/list").json() == {"entries": []}
