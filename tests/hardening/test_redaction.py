"""Redaction covers the encodings of a secret (base64 of user:password, URL-encoded) and the
worker's API token (issue 13, item 4): a step that echoes them stores none of them."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from noetl.credentials import put_credential
from noetl.dsl import parse_playbook
from noetl.local import LocalRunner

PB = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: r, path: t/r}
workflow:
  - step: start
    type: secrets
    secret_name: basic
    next: [{step: echo}]
  - step: echo
    type: python
    args: {b: "%s", u: "%s", t: "%s", p: "%s"}
    code: |
      def main(b, u, t, p):
          return {"b64": b, "url": u, "token": t, "plain": p}
"""


def test_encoded_secrets_and_the_token_are_redacted(sqlite_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    user, pw, token = "alice", "pa ss/wörd&1", "tok-0123456789abcdef"
    monkeypatch.setenv("NOETL_API_TOKEN", token)
    b64 = base64.b64encode(f"{user}:{pw}".encode()).decode()
    with LocalRunner(sqlite_url, concurrency=1) as runner:
        put_credential(runner.store, "basic", "httpBasicAuth", {"user": user, "password": pw},
                       None, [])
        d = runner.run(parse_playbook(PB % (b64, quote(pw, safe=""), token, pw), "<t>"),
                       timeout=30)
        assert d["status"] == "COMPLETED", d["error"]
        with runner.store.read() as tx:
            events = tx.get_events(int(d["execution_id"]), 0, 10000)
        text = json.dumps(d) + json.dumps([e.__dict__ for e in events], default=str)
    for s in (b64, quote(pw, safe=""), token, pw):
        assert s not in text
    assert d["result"]["b64"] == "***"



def test_the_processs_own_secrets_are_redacted(tmp_path: Path) -> None:
    """A step that reads the real environment of the process running it (a worker, a server
    running steps itself, `noetl run`: /proc/self/environ, round the scrubbed os.environ)
    records neither the credential key nor a store URL's password."""
    key, pw = "key-0123456789abcdef", "dbpw-0123456789"
    pb = tmp_path / "env.yaml"
    pb.write_text(PB.split("workflow:")[0].replace("t/r", "t/env") + """workflow:
  - step: start
    type: python
    code: |
      def main():
          return {"env": open("/proc/self/environ", "rb").read().decode("utf-8", "replace")}
""")
    env = {**os.environ, "NOETL_HOME": str(tmp_path), "NOETL_ENCRYPTION_KEY": key,
           "NOETL_STORE_URL": f"postgresql://u:{pw}@db.internal/noetl"}
    r = subprocess.run([sys.executable, "-m", "noetl", "run", str(pb), "--json", "--store",
                        f"sqlite:///{tmp_path / 'x.db'}"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads(r.stdout)
    assert "NOETL_ENCRYPTION_KEY=***" in d["result"]["env"]
    assert "postgresql://u:***@db.internal" in d["result"]["env"]
    assert key not in r.stdout + r.stderr and pw not in r.stdout + r.stderr
