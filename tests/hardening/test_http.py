"""HTTP hardening (issue 13, item 5): NUL and unencodable text get 400, not 500, and the
keep-alive connection goes on serving."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest


def test_nul_and_lone_surrogates_are_400(fresh_pg_url: str, serve: Callable[..., Any],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("NOETL_ENCRYPTION_KEY", Fernet.generate_key().decode())
    api = serve(fresh_pg_url)
    with httpx.Client(base_url=api.url, timeout=30) as c:
        bodies = [
            ("/api/credentials", '{"name": "a\\u0000b", "type": "x", "data": {"k": "v"}}'),
            ("/api/credentials", '{"name": "s", "type": "x", "data": {"k": "\\ud800"}}'),
            ("/api/catalog/register", '{"content": "apiVersion: noetl.io/v1\\nkind: Playbook'
                                      '\\nmetadata: {name: n, path: t/n\\u0000}\\nworkflow:'
                                      '\\n  - step: start\\n    type: noop\\n"}'),
        ]
        for path, body in bodies:
            r = c.post(path, content=body, headers={"Content-Type": "application/json"})
            assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
        assert c.get("/health").status_code == 200  # the same connection
        assert c.get("/api/credentials/s").status_code == 404  # nothing half-stored


def test_register_has_the_validators_limits(sqlite_url: str, noetl_home: object,
                                            serve: Callable[..., Any],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`POST /api/catalog/register` refuses, with a 4xx naming the limit and at once, a body
    over the size limit, a workflow over the step limit, YAML nested too deeply and an alias
    bomb; nothing is registered."""
    from noetl.dsl import loader
    from noetl.dsl.yamlsrc import MAX_BYTES

    monkeypatch.setattr(loader, "MAX_STEPS", 50)  # the limit's mechanism, on a small playbook
    api = serve(sqlite_url)
    head = "apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: big, path: t/big}\n"
    steps = "".join(f"  - step: s{i}\n" for i in range(51))
    bomb = "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 20) + "]\n"
                   for i in range(1, 9))
    cases = [
        ("x" * (MAX_BYTES + 1), f"larger than {MAX_BYTES:,} bytes"),
        (head + "workflow:\n  - step: start\n" + steps, "more than 50 steps"),
        (head + "workload: {v: " + "[" * 300 + "]" * 300 + "}\nworkflow:\n  - step: start\n",
         "nested more than"),
        (head + "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + bomb
         + "workflow:\n  - step: start\n", "alias bomb"),
    ]
    with httpx.Client(base_url=api.url, timeout=60) as c:
        for content, message in cases:
            t0 = time.monotonic()
            r = c.post("/api/catalog/register", json={"content": content})
            assert 400 <= r.status_code < 500 and message in r.text, (message, r.text[:500])
            assert time.monotonic() - t0 < 5, message
        assert c.post("/api/catalog/list", json={}).json()["entries"] == []
