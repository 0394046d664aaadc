"""Credentials: encrypted at rest, managed by ``noetl credential``, and never leaked: a run that
uses a credential whose password is a unique marker leaves the marker nowhere (events, every
table, step results, CLI output)."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from noetl.credentials import get_credential, put_credential
from noetl.local import LocalRunner
from noetl.store import open_store
from tests.tools.pgutil import pg_fields, run_text, unique


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PLAYBOOK = """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: secret_use}
workload: {cred: pg_secret}
workflow:
  - step: start
    next: [{step: who}]
  - step: who
    type: postgres
    auth: "{{ workload.cred }}"
    command: SELECT current_user AS u, 1 + 1 AS two
    next: [{step: check}]
  - step: check
    type: secrets
    secret_name: "{{ workload.cred }}"
    next: [{step: end}]
  - step: end
"""


def sqlite_dump(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(repr(conn.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables)
    finally:
        conn.close()


@pytest.fixture
def cli(tmp_path: Path) -> Any:
    env = {**os.environ, "NOETL_HOME": str(tmp_path / "home")}
    for k in ("NOETL_STORE_URL", "NOETL_SERVER_URL", "NOETL_ENCRYPTION_KEY"):
        env.pop(k, None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "noetl", *args], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=60)

    return run


def test_cli_credentials_and_a_run_leak_nothing(cli: Any, tmp_path: Path, pg_url: str) -> None:
    marker = unique("SECRETMARK")
    store = f"sqlite:///{tmp_path / 'noetl.db'}"
    (tmp_path / "good.json").write_text(json.dumps(pg_fields(pg_url, marker)))
    (tmp_path / "bad.json").write_text(json.dumps({**pg_fields(pg_url, marker),
                                                  "port": closed_port()}))
    (tmp_path / "pb.yaml").write_text(textwrap.dedent(PLAYBOOK))
    outputs: list[str] = []

    def ok(*args: str, code: int = 0) -> str:
        p = cli(*args)
        outputs.extend([p.stdout, p.stderr])
        assert p.returncode == code, (args, p.stdout, p.stderr)
        return p.stdout

    key = ok("credential", "keygen").strip()
    from cryptography.fernet import Fernet

    Fernet(key.encode())  # a valid key
    out = ok("credential", "add", "pg_secret", "--type", "postgres", "--data",
             f"@{tmp_path / 'good.json'}", "--description", "local pg", "--store", store)
    assert "pg_secret" in out and "password" in out  # field names only
    ok("credential", "add", "pg_bad", "--type", "postgres", "--data",
       f"@{tmp_path / 'bad.json'}", "--store", store)
    listed = json.loads(ok("credential", "list", "--json", "--store", store))
    assert {c["name"]: c["type"] for c in listed} == {"pg_secret": "postgres",
                                                     "pg_bad": "postgres"}
    good = json.loads(ok("run", str(tmp_path / "pb.yaml"), "--json", "--store", store))
    assert good["status"] == "COMPLETED", good["error"]
    assert good["steps"]["who"]["result"]["command_0"]["rows"] == [{"u": "postgres", "two": 2}]
    check = good["steps"]["check"]["result"]
    assert check["secret_value"] == "***" and check["available"] is True
    assert check["type"] == "postgres" and "password" in check["fields"]
    bad = json.loads(ok("run", str(tmp_path / "pb.yaml"), "--json", "--store", store,
                        "--set", "cred=pg_bad", code=1))
    assert bad["status"] == "FAILED" and "cannot connect" in bad["error"]["message"]
    for eid in (good["execution_id"], bad["execution_id"]):
        ok("events", str(eid), "--json", "--store", store)
        ok("status", str(eid), "--json", "--store", store)
    ok("credential", "delete", "pg_bad", "--store", store)
    ok("credential", "delete", "pg_bad", "--store", store, code=1)
    assert [c["name"] for c in json.loads(ok("credential", "list", "--json", "--store",
                                              store))] == ["pg_secret"]

    everything = "\n".join(outputs) + sqlite_dump(tmp_path / "noetl.db")
    assert "action_completed" in everything and "pg_secret" in everything  # we looked
    assert marker not in everything
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("noetl.db*"))
    assert marker.encode() not in raw  # not even in free pages or the WAL


def test_encrypted_at_rest_on_postgres_and_no_leak_in_events(
        fresh_pg_url: str, pg_url: str, monkeypatch: Any) -> None:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("NOETL_ENCRYPTION_KEY", Fernet.generate_key().decode())
    marker = unique("PGMARK")
    import psycopg

    with LocalRunner(fresh_pg_url) as runner:
        put_credential(runner.store, "pg_secret", "postgres", pg_fields(pg_url, marker))
        assert get_credential(runner.store, "pg_secret")["data"]["password"] == marker
        desc, _ = run_text(PLAYBOOK, runner)
        assert desc["status"] == "COMPLETED", desc["error"]
        step_results = json.dumps(desc)
    with psycopg.connect(fresh_pg_url) as conn:
        events = conn.execute("SELECT e::text FROM noetl.event e").fetchall()
        creds = conn.execute("SELECT c::text FROM noetl.credential c").fetchall()
        steps = conn.execute("SELECT s::text FROM noetl.step_state s").fetchall()
    assert len(events) > 5 and len(creds) == 1 and len(steps) >= 3
    for rows in (events, creds, steps):
        assert not any(marker in r[0] for r in rows)
    assert marker not in step_results


def test_wrong_key_cannot_decrypt(sqlite_url: str, noetl_home: Any, monkeypatch: Any) -> None:
    from cryptography.fernet import Fernet

    from noetl.credentials import CredentialKeyError

    monkeypatch.setenv("NOETL_ENCRYPTION_KEY", Fernet.generate_key().decode())
    store = open_store(sqlite_url)
    try:
        put_credential(store, "c", "bearer", {"token": "t0ken-value"})
    finally:
        store.close()
    monkeypatch.setenv("NOETL_ENCRYPTION_KEY", Fernet.generate_key().decode())
    store = open_store(sqlite_url)  # a process started with another key
    try:
        with pytest.raises(CredentialKeyError, match="cannot be decrypted"):
            get_credential(store, "c")
    finally:
        store.close()


def test_secrets_step_env_provider_and_missing(sqlite_url: str, noetl_home: Any,
                                               monkeypatch: Any) -> None:
    marker = unique("ENVMARK")
    monkeypatch.setenv("MY_TOKEN_VAR", marker)
    with LocalRunner(sqlite_url) as runner:
        desc, events = run_text("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: env_secret}
        workflow:
          - step: start
            next: [{step: a}]
          - step: a
            type: secrets
            provider: env
            secret_name: MY_TOKEN_VAR
            next: [{step: b}]
          - step: b
            type: secrets
            secret_name: not_stored
            next: [{step: end}]
          - step: end
        """, runner)
    assert desc["steps"]["a"]["result"] == {"name": "MY_TOKEN_VAR", "provider": "env",
                                            "type": "env", "available": True,
                                            "secret_value": "***"}
    assert desc["status"] == "FAILED" and desc["error"]["step"] == "b"
    assert desc["error"]["type"] == "SecretNotFound"
    assert marker not in json.dumps(desc) + repr([e.to_dict() for e in events])


def test_cli_credentials_through_a_server(cli: Any, tmp_path: Path, sqlite_url: str,
                                          noetl_home: Any) -> None:
    from tests.api.conftest import start_server

    marker = unique("SRVMARK")
    (tmp_path / "c.json").write_text(json.dumps({"token": marker}))
    api = start_server(sqlite_url)
    try:
        outputs = []
        for args in (["add", "api_tok", "--type", "bearer", "--data", f"@{tmp_path / 'c.json'}",
                      "--server", api.url],
                     ["list", "--json", "--server", api.url],
                     ["delete", "api_tok", "--server", api.url]):
            p = cli("credential", *args)
            assert p.returncode == 0, (args, p.stderr)
            outputs.append(p.stdout + p.stderr)
        assert [c["name"] for c in json.loads(outputs[1])] == ["api_tok"]
        assert "deleted" in outputs[2]
        p = cli("credential", "delete", "api_tok", "--server", api.url)
        assert p.returncode == 1 and "not found" in p.stderr
        assert marker not in "".join(outputs) + p.stdout + p.stderr
    finally:
        api.stop()
    store = open_store(sqlite_url)
    try:
        with store.read() as tx:
            assert tx.list_credentials() == []
    finally:
        store.close()
