"""Scratch stores: a SQLite file in a temp dir, or a PostgreSQL database created for the run
and dropped afterwards (from ``NOETL_TEST_POSTGRES_URL``, like ``tests/conftest.py``)."""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PG_BASE = os.environ.get("NOETL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def sqlite_url(directory: Path, name: str = "bench") -> str:
    return f"sqlite:///{directory / (name + '.db')}"


def _with_db(url: str, db: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + db, parts.query, parts.fragment))


def postgres_problem() -> str | None:
    """Why PostgreSQL benchmarks cannot run here, or None when they can."""
    try:
        import psycopg
    except ImportError as exc:
        return f"psycopg not installed ({exc})"
    try:
        import noetl.store.postgres  # noqa: F401
    except ImportError as exc:
        return f"noetl.store.postgres not available yet ({exc})"
    try:
        with psycopg.connect(PG_BASE, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL unreachable at {PG_BASE}: {exc}"
    return None


@contextmanager
def scratch_postgres() -> Iterator[str]:
    """A fresh database ``noetl_bench_<hex>``; dropped on exit."""
    import psycopg

    db = f"noetl_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        yield _with_db(PG_BASE, db)
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def versions() -> dict[str, str]:
    out = {"sqlite": sqlite3.sqlite_version}
    try:
        import psycopg

        with psycopg.connect(PG_BASE, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            out["postgresql"] = str(row[0]) if row else "?"
    except Exception as exc:
        out["postgresql"] = f"unavailable ({type(exc).__name__})"
    return out
