"""HTTP hardening (issue 13, item 5): NUL and unencodable text get 400, not 500, and the
keep-alive connection goes on serving."""

from __future__ import annotations

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
