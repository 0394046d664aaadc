"""A credential's secret, after runs that used it through a server and a remote worker, is
found nowhere: not in API responses, not in the server's or worker's logs, not in any engine
table (issue 4 acceptance, distributed half; the embedded half is in tests/tools)."""

from __future__ import annotations

import json
import secrets
import textwrap
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet

from noetl.client import Client
from tests.distributed.conftest import Cluster
from tests.tools.pgutil import pg_fields
from tests.tools.test_credentials import closed_port

pytestmark = pytest.mark.postgres

PLAYBOOK = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: uses_secret, path: tests/dist/uses_secret}
workload: {cred: pg_marker}
workflow:
  - step: start
    type: postgres
    auth: "{{ workload.cred }}"
    command: "SELECT current_user AS u, 2 AS two"
"""


def test_secret_found_nowhere_after_distributed_runs(fresh_pg_url: str, tmp_path: Path) -> None:
    marker = f"MARK{secrets.token_hex(8)}"
    cluster = Cluster(fresh_pg_url, tmp_path)
    try:
        url = cluster.server("s", env_extra={"NOETL_ENCRYPTION_KEY": Fernet.generate_key().decode()})
        cluster.worker("w", "s", log_level="debug")
        client = Client(url)
        client.put_credential("pg_marker", "postgres", pg_fields(fresh_pg_url, marker))
        bad = {**pg_fields(fresh_pg_url, marker), "port": closed_port()}
        client.put_credential("pg_marker_bad", "postgres", bad)
        client.register(textwrap.dedent(PLAYBOOK))
        good = client.wait(client.run(path="tests/dist/uses_secret", version="latest", args={},
                                      merge=False)["execution_id"], 60)
        failed = client.wait(client.run(path="tests/dist/uses_secret", version="latest",
                                        args={"cred": "pg_marker_bad"}, merge=False)
                             ["execution_id"], 60)
        assert good["status"] == "COMPLETED", good["error"]
        assert good["steps"]["start"]["result"]["command_0"]["rows"][0]["two"] == 2
        assert failed["status"] == "FAILED"
        assert "cannot connect" in failed["error"]["message"]  # the error path was exercised
        # API output: descriptions, events, listings, the credential without its data
        outputs = [json.dumps(good), json.dumps(failed)]
        for d in (good, failed):
            outputs.append(json.dumps(client.events(d["execution_id"], 0, 10000)))
        outputs.append(json.dumps(client.request("GET", "/api/credentials")))
        outputs.append(json.dumps(client.request("GET", "/api/executions")))
        for text in outputs:
            assert marker not in text
        # logs of both processes (the worker at debug level)
        cluster.stop_all()
        for name in ("s", "w"):
            assert marker not in (tmp_path / f"{name}.log").read_text(errors="replace")
        # every engine table, whole rows as text (credential data is encrypted at rest)
        with psycopg.connect(fresh_pg_url) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'noetl'")]
            assert {"event", "step_state", "queue", "execution", "credential"} <= set(tables)
            for t in tables:
                rows = conn.execute(f"SELECT t::text FROM noetl.{t} t").fetchall()
                assert not any(marker in r[0] for r in rows), t
    finally:
        cluster.stop_all()
