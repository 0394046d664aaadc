"""What keeps the PostgreSQL store's cost per step down: the pool hands out the connection
returned last (LIFO), a statement is prepared from its second execution, an event row
maintains two indexes."""

from __future__ import annotations

import pytest

from noetl.store.pg_pool import Pool

pytestmark = pytest.mark.postgres


def test_the_connection_returned_last_is_handed_out_first(pg_url: str) -> None:
    with Pool(pg_url, min_size=3, max_size=3, kwargs={"autocommit": True}, open=False) as pool:
        pool.open(wait=True, timeout=15.0)
        a, b, c = pool.getconn(), pool.getconn(), pool.getconn()
        pids = {x: x.info.backend_pid for x in (a, b, c)}
        for x in (b, a, c):  # returned in this order: c last, b first
            pool.putconn(x)
        first = pool.getconn()
        second = pool.getconn()
        assert (first.info.backend_pid, second.info.backend_pid) == (pids[c], pids[a])
        pool.putconn(first)
        # one connection in use at a time: always the same one (psycopg_pool's own order, the
        # oldest first, would go round all three)
        seen = set()
        for _ in range(4):
            with pool.connection() as conn:
                seen.add(conn.info.backend_pid)
        assert seen == {pids[c]}
        pool.putconn(second)


def test_a_statement_run_twice_on_a_connection_is_prepared(pg_url: str) -> None:
    from noetl.store.postgres import PostgresStore

    store = PostgresStore(pg_url, pool_size=1, listen=False)
    try:
        for _ in range(2):
            with store.read() as tx:
                assert tx.get_execution(1) is None
        with store.pool.conn() as conn:
            rows = conn.execute("SELECT statement FROM pg_prepared_statements").fetchall()
        assert any("FROM execution WHERE execution_id = $1" in r[0] for r in rows), rows
    finally:
        store.close()


def test_an_event_maintains_two_indexes(pg_url: str) -> None:
    from noetl.store.postgres import PostgresStore

    PostgresStore(pg_url, pool_size=1, listen=False).close()  # migrated
    import psycopg

    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'noetl' AND tablename = 'event' "
            "ORDER BY indexname").fetchall()
        unique = conn.execute(
            "SELECT i.indisunique, i.indisreplident FROM pg_index i JOIN pg_class c ON "
            "c.oid = i.indexrelid WHERE c.relname = 'event_event_id_key'").fetchone()
    assert [r[0].split(" USING ")[1] for r in rows] == ["btree (event_id)",
                                                        "btree (execution_id, seq)"]
    assert unique == (True, True)  # event_id: unique, and the replica identity
