"""Shared fixtures.

PostgreSQL: ``NOETL_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
Each test session creates its own database (``noetl_t_<random>``) and drops it at the end, so
parallel runs never see each other's rows. When PostgreSQL is unreachable, tests that need it
are skipped with a loud reason, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
PG_BASE = os.environ.get("NOETL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _with_db(url: str, db: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + db, parts.query, parts.fragment))


def _pg_unavailable(reason: str) -> None:
    msg = f"PostgreSQL unavailable at {PG_BASE}: {reason}"
    if IN_CI:
        pytest.fail(msg + " (CI=true: PostgreSQL tests must run)", pytrace=False)
    pytest.skip("!!! SKIPPED: " + msg)


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        _pg_unavailable(f"psycopg not installed ({exc})")
    try:
        with psycopg.connect(PG_BASE, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        _pg_unavailable(str(exc))
    return PG_BASE


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards."""
    import psycopg

    db = f"noetl_t_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        yield _with_db(admin_url, db)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database for this test session."""
    with scratch_database(pg_admin_url) as url:
        yield url


@pytest.fixture
def fresh_pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database for one test (for tests that need an empty store)."""
    with scratch_database(pg_admin_url) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'noetl.db'}"


@pytest.fixture
def noetl_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("NOETL_HOME", str(home))
    monkeypatch.delenv("NOETL_STORE_URL", raising=False)
    return home


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """The read-only NoETL corpus beside the repo (copied into tests/fixtures when used)."""
    return REPO.parent / "shared" / "noetl-fixtures"


def copy_fixture(rel: str, dest: Path) -> Path:
    src = FIXTURES / "noetl" / rel
    out = dest / Path(rel).name
    shutil.copy(src, out)
    return out
