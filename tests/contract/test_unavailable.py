"""``Store.unavailable``: the errors that mean "the database cannot be reached now, send it
again" (a report batch then fails whole, answered 503, instead of refusing each report)."""

from __future__ import annotations

import sqlite3

import pytest

from noetl.store import Store


def _unreachable_error(store: Store) -> Exception:
    """A real error of the store's driver when its database cannot be reached."""
    if store.capabilities.name == "SQLite":
        try:
            sqlite3.connect("file:/nonexistent/dir/noetl.db?mode=rw", uri=True)
        except sqlite3.OperationalError as exc:
            return exc
    else:
        import psycopg

        try:
            psycopg.connect("postgresql://postgres@127.0.0.1:1/none", connect_timeout=2)
        except psycopg.OperationalError as exc:
            return exc
    pytest.fail("connecting did not fail")


def test_unreachable_is_unavailable_and_a_bad_request_is_not(store: Store) -> None:
    assert store.unavailable(_unreachable_error(store))
    assert not store.unavailable(ValueError("a wrong request"))
    assert not store.unavailable(KeyError("job_id"))
