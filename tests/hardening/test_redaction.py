"""Redaction covers the encodings of a secret (base64 of user:password, URL-encoded) and the
worker's API token (issue 13, item 4): a step that echoes them stores none of them."""

from __future__ import annotations

import base64
import json
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
