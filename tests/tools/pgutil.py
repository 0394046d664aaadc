"""Helpers for tests that use the session PostgreSQL database as a *target* database."""

from __future__ import annotations

import secrets
import textwrap
from typing import Any
from urllib.parse import urlsplit

from noetl.dsl import parse_playbook
from noetl.local import LocalRunner
from tests.helpers import assert_one_terminal


def pg_fields(pg_url: str, password: str = "unused") -> dict[str, Any]:
    """Credential data for ``pg_url`` (the server trusts local users; the password is inert)."""
    u = urlsplit(pg_url)
    return {"host": u.hostname, "port": u.port or 5432, "user": u.username or "postgres",
            "password": password, "database": u.path.lstrip("/")}


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def run_text(text: str, runner: LocalRunner, args: dict[str, Any] | None = None
             ) -> tuple[dict[str, Any], list[Any]]:
    desc = runner.run(parse_playbook(textwrap.dedent(text), "<t>"), args=args, timeout=60)
    with runner.store.read() as tx:
        events = tx.get_events(int(desc["execution_id"]), 0, 100000)
    assert_one_terminal(events)
    return desc, events


def query(pg_url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(pg_url) as conn:
        return list(conn.execute(sql.encode(), params).fetchall())
