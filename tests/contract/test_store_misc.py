"""Store contract: credentials, migrations, transactions (every backend)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from noetl.store import Store, open_store
from noetl.store.migrate import migrations
from tests.contract.conftest import BACKENDS
from tests.contract.rows import make_exec


def test_credentials_put_get_list_delete(store: Store) -> None:
    with store.transaction() as tx:
        tx.put_credential("pg", "postgres", "ENC1", "main db", ["a", "b"])
        tx.put_credential("api", "http", "ENC2", None, [])
        assert tx.get_credential("nope") is None
    with store.read() as tx:
        got = tx.get_credential("pg")
        assert got is not None
        cred, blob = got
        assert (cred.name, cred.type, cred.description, cred.tags, blob) == (
            "pg", "postgres", "main db", ["a", "b"], "ENC1")
        assert cred.data == {}  # the store never sees plaintext
        assert [c.name for c in tx.list_credentials()] == ["api", "pg"]
        assert [c.name for c in tx.list_credentials("http")] == ["api"]
        created = cred.created_at
    with store.transaction() as tx:  # put again: replaced in place
        tx.put_credential("pg", "postgres", "ENC3", "rotated", ["c"])
    with store.read() as tx:
        got = tx.get_credential("pg")
        assert got is not None
        assert (got[1], got[0].description, got[0].tags) == ("ENC3", "rotated", ["c"])
        assert got[0].updated_at >= created
        assert len(tx.list_credentials()) == 2
    with store.transaction() as tx:
        assert tx.delete_credential("pg") is True
        assert tx.delete_credential("pg") is False
    with store.read() as tx:
        assert tx.get_credential("pg") is None
        assert [c.name for c in tx.list_credentials()] == ["api"]


def test_nested_transaction_joins_the_outer_one(store: Store) -> None:
    ex = make_exec()
    with pytest.raises(RuntimeError), store.transaction() as outer:
        outer.insert_execution(ex)
        with store.transaction() as inner:  # same unit of work: sees the outer's rows
            assert inner.get_execution(ex.execution_id) is not None
        with store.read() as r:
            assert r.get_execution(ex.execution_id) is not None
        raise RuntimeError("roll back both")
    with store.read() as tx:
        assert tx.get_execution(ex.execution_id) is None


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A store URL with nothing in it yet (not even the schema)."""
    yield str(request.getfixturevalue("sqlite_url" if request.param == "sqlite"
                                      else "fresh_pg_url"))


def test_migrations_are_versioned_and_idempotent(empty_url: str) -> None:
    latest = max(v for v, _, _ in migrations("sqlite"))
    assert latest == max(v for v, _, _ in migrations("postgres"))  # dialects move together
    s1 = open_store(empty_url)
    try:
        assert s1.schema_version() == latest
        with s1.transaction() as tx:
            entry = tx.register("keep/me", "c", {"k": 1})
    finally:
        s1.close()
    s2 = open_store(empty_url)  # second open: nothing re-applied, nothing lost
    try:
        assert s2.schema_version() == latest
        with s2.read() as tx:
            got = tx.get_catalog("keep/me")
            assert got is not None and got.catalog_id == entry.catalog_id
        with s2.transaction() as tx:
            assert tx.register("keep/me", "c2", {}).version == 2
    finally:
        s2.close()


def test_node_ids_are_unique_per_claim(store_url: str) -> None:
    """Every process opening the store takes a node id nobody else on that database holds."""
    import threading

    stores = [open_store(store_url) for _ in range(2)]
    got: list[int] = []
    lock = threading.Lock()

    def take(s: Store) -> None:
        for _ in range(10):
            with s.transaction() as tx:
                n = tx.next_node_id()
            with lock:
                got.append(n)

    try:
        threads = [threading.Thread(target=take, args=(s,)) for s in stores for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        for s in stores:
            s.close()
    assert len(got) == 40 and len(set(got)) == 40


def test_batched_writes_land_together(store: Store) -> None:
    ex = make_exec()
    with store.transaction() as tx:
        tx.insert_execution(ex)
    with store.transaction() as tx, tx.batch():
        ex.status = "COMPLETED"
        tx.update_execution(ex)
        tx.put_credential("b", "t", "E", None, [])
        tx.notify_in_tx()
    with store.read() as tx:
        got = tx.get_execution(ex.execution_id)
        assert got is not None and got.status == "COMPLETED"
        assert tx.get_credential("b") is not None


def test_unreachable_postgres_fails_at_once_with_a_clear_error() -> None:
    import socket
    import time

    import psycopg

    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(psycopg.OperationalError) as err:
        open_store(f"postgresql://postgres@127.0.0.1:{port}/nowhere")
    assert time.monotonic() - t0 < 5
    assert str(port) in str(err.value)


def test_sqlite_binds_named_parameters_by_position() -> None:
    """SQLite statements go to sqlite3 with numbered ``?N`` parameters and a tuple: a name
    used twice is one number, a ``::`` is no parameter, extra keys are ignored."""
    import sqlite3

    from noetl.store.sqlite import positional

    text, values = positional("SELECT :a, :b, :a, 'x::y', CAST(:b AS TEXT), :c_1")
    assert text == "SELECT ?1, ?2, ?1, 'x::y', CAST(?2 AS TEXT), ?3"
    conn = sqlite3.connect(":memory:")
    params = {"c_1": "é", "b": None, "a": 7, "unused": 1}
    assert conn.execute(text, values(params)).fetchone() == (7, None, 7, "x::y", None, "é")
    one, value = positional("SELECT :only + 1")
    assert conn.execute(one, value({"only": 41})).fetchone() == (42,)
    none, empty = positional("SELECT 1")
    assert (none, empty({})) == ("SELECT 1", ())
