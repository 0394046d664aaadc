"""One store contract, run unchanged on every backend.

``store_url`` / ``store`` are parametrized over SQLite (a fresh file per test) and PostgreSQL
(one database per session, migrated once; every table of schema ``noetl`` truncated before each
test, which is much faster than a database per test).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from noetl.store import Store, open_store

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
DATA_TABLES = ("catalog", "execution", "step_state", "event", "queue", "credential")


@pytest.fixture(scope="session")
def pg_contract_url(pg_url: str) -> str:
    """The session database with the schema applied once."""
    open_store(pg_url).close()
    return pg_url


def truncate_pg(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE " + ", ".join(f"noetl.{t}" for t in DATA_TABLES))


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(request.getfixturevalue("sqlite_url"))
        return
    url = str(request.getfixturevalue("pg_contract_url"))
    truncate_pg(url)
    yield url
    truncate_pg(url)  # the session database is shared: leave no queued job to later tests


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()

