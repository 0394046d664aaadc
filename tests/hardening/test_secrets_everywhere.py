"""A secret, raw, as the base64 of ``user:password`` (what ``Authorization: Basic`` carries) and
URL-encoded, and the API token appear nowhere after runs that echo them back (issue 13
acceptance): not in API responses, not in the server's or the worker's log (at debug level),
not in the event log, not in the database's bytes (the SQLite files; every PostgreSQL table).

The runs go through a real ``noetl server start`` and ``noetl worker start`` with a token (on
PostgreSQL the worker runs the steps; on SQLite the server's own pool may run them, where the
process environment also holds the credential key). An
HTTP service on loopback echoes the credential a step sent it, in all three forms; a python
step reads the worker's real environment from ``/proc/self/environ`` (round the scrubbed
``os.environ``) and returns it, then raises it in an error."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, quote

import pytest
from cryptography.fernet import Fernet

from noetl.client import Client
from tests.distributed.conftest import Cluster
from tests.httpstub import StubHandler, serving

TOKEN = "tok-" + secrets.token_hex(12)
USER = "alice"
PASSWORD = "pw/" + secrets.token_hex(6) + " &ü"  # characters that URL-encoding changes
USER_PASS_B64 = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
KEY = Fernet.generate_key().decode()  # the server's credential key
FORMS = {"password": PASSWORD, "base64 user:pass": USER_PASS_B64,
         "url-encoded": quote(PASSWORD, safe=""), "token": TOKEN, "encryption key": KEY}

PLAYBOOK = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: echo_secrets, path: t/echo_secrets}
workload: {echo: ""}
workflow:
  - step: start
    type: secrets
    secret_name: basic
    next: [{step: call}]
  - step: call
    type: http
    method: GET
    url: "{{ workload.echo }}/echo"
    auth: basic
    next: [{step: environ}]
  - step: environ
    type: python
    code: |
      def main():
          print("printing", open("/proc/self/environ", "rb").read())
          with open("/proc/self/environ", "rb") as f:
              return {"environ": f.read().decode("utf-8", "replace")}
    next: [{step: fail}]
  - step: fail
    type: python
    args: {echoed: "{{ call }}"}
    code: |
      def main(echoed):
          raise ValueError("leaking " + open("/proc/self/environ").read() + repr(echoed))
"""


class Echo(StubHandler):
    """An API that echoes the credential it was sent: the header, decoded, URL-encoded."""

    def route(self, parts: SplitResult, query: dict[str, str], body: Any) -> None:
        header = self.headers.get("Authorization", "")
        pair = base64.b64decode(header.removeprefix("Basic ")).decode() if header else ""
        password = pair.partition(":")[2]
        self.send(200, {"authorization": header, "pair": pair, "password": password,
                        "url_encoded": quote(password, safe=""), "token": TOKEN})


def _cluster_run(store_url: str, home: Path) -> tuple[Cluster, list[str], dict[str, Any]]:
    cluster = Cluster(store_url, home)
    outputs: list[str] = []
    with serving(Echo) as echo:
        url = cluster.server("s", token=TOKEN,
                             env_extra={"NOETL_ENCRYPTION_KEY": KEY})
        cluster.worker("w", "s", token=TOKEN, concurrency=1, log_level="debug")
        with Client(url, token=TOKEN) as client:
            client.put_credential("basic", "basic", {"user": USER, "password": PASSWORD})
            client.register(PLAYBOOK)
            eid = client.run("t/echo_secrets", args={"echo": echo})["execution_id"]
            d = client.wait(eid, 90)
            for path in (f"/api/executions/{eid}", f"/api/executions/{eid}/events",
                         "/api/executions", "/api/credentials", "/api/credentials/basic",
                         "/metrics", "/api/queue/size"):
                outputs.append(client.http.get(path).text)
            outputs.append(client.http.post("/api/catalog/list", json={}).text)
            for step in ("call", "environ", "fail"):
                outputs.append(client.http.post("/api/context/render", json={
                    "execution_id": eid, "template": "{{ " + step + " }}"}).text)
    return cluster, outputs, d


def _assert_found_nowhere(texts: dict[str, str]) -> None:
    leaks = [(where, form) for where, text in texts.items() for form, value in FORMS.items()
             if value in text]
    assert not leaks, leaks


def _check_run(d: dict[str, Any]) -> None:
    """The runs did echo everything back (else the test proves nothing)."""
    assert d["status"] == "FAILED", d
    assert d["steps"]["call"]["status"] == "COMPLETED", d["steps"]["call"]
    echoed = d["steps"]["call"]["result"]
    body = echoed.get("data", echoed)
    assert body["password"] == "***" and body["token"] == "***", echoed
    assert "NOETL_API_TOKEN=***" in d["steps"]["environ"]["result"]["environ"]
    assert "leaking" in d["error"]["message"] and "NOETL_API_TOKEN=***" in d["error"]["message"]


def _run_and_collect(store_url: str, home: Path) -> tuple[Cluster, dict[str, str]]:
    """Run, check the run echoed everything, stop both processes; the API responses and both
    logs, by name."""
    cluster, outputs, d = _cluster_run(store_url, home)
    _check_run(d)
    cluster.stop_all()
    texts = {f"response {i}": t for i, t in enumerate(outputs)}
    for name in ("s", "w"):
        texts[f"log {name}"] = (home / f"{name}.log").read_text(errors="replace")
    return cluster, texts


@pytest.mark.postgres
def test_found_nowhere_postgres(fresh_pg_url: str, tmp_path: Path) -> None:
    import psycopg

    cluster, texts = _run_and_collect(fresh_pg_url, tmp_path)
    try:
        with psycopg.connect(fresh_pg_url) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'noetl'")]
            assert {"event", "step_state", "queue", "execution", "credential",
                    "catalog"} <= set(tables)
            for t in tables:
                rows = conn.execute(f"SELECT t::text FROM noetl.{t} t").fetchall()
                texts[f"table {t}"] = "\n".join(r[0] for r in rows)
        assert "echo_secrets" in texts["table event"]  # the dump holds the runs' events
        _assert_found_nowhere(texts)
    finally:
        cluster.stop_all()


def test_found_nowhere_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "store" / "noetl.db"
    cluster, texts = _run_and_collect(f"sqlite:///{db}", tmp_path)
    try:
        files = [p for p in db.parent.iterdir() if p.name.startswith("noetl.db")]
        for p in files:  # the database file, its WAL and shared memory: every byte
            raw = p.read_bytes()
            texts[f"file {p.name}"] = raw.decode("latin-1")
            texts[f"file {p.name} (utf-8)"] = raw.decode("utf-8", "replace")
        assert "echo_secrets" in "".join(texts[f"file {p.name} (utf-8)"] for p in files)
        _assert_found_nowhere(texts)
    finally:
        cluster.stop_all()
