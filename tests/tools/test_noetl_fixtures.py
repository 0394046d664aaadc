"""NoETL's own data fixtures (tests/fixtures/noetl) run unchanged: PostgreSQL is a fresh
database on the local server (credentials ``pg_local`` and ``pg_k8s``), and public URLs
are rewritten to a local HTTP server with ``NOETL_HTTP_REWRITE``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from noetl.credentials import put_credential
from noetl.dsl import load_playbook
from noetl.local import LocalRunner
from tests.helpers import assert_one_terminal
from tests.tools.pgutil import pg_fields, query

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "noetl"


@pytest.fixture
def runner(fresh_pg_url: str, sqlite_url: str, noetl_home: Any, stub: Any,
           monkeypatch: Any) -> Any:
    monkeypatch.setenv("NOETL_HTTP_REWRITE",
                       f"https://httpbin.org={stub.url},"
                       f"https://jsonplaceholder.typicode.com={stub.url}")
    with LocalRunner(sqlite_url) as r:
        for name in ("pg_local", "pg_k8s"):
            put_credential(r.store, name, "postgres", pg_fields(fresh_pg_url))
        yield r


def run_fixture(runner: LocalRunner, rel: str) -> tuple[dict[str, Any], list[Any]]:
    desc = runner.run(load_playbook(FIX / rel), timeout=60)
    with runner.store.read() as tx:
        events = tx.get_events(int(desc["execution_id"]), 0, 100000)
    assert_one_terminal(events)
    return desc, events


def test_save_edge_cases_fixture(runner: Any, fresh_pg_url: str, stub: Any) -> None:
    import psycopg

    with psycopg.connect(fresh_pg_url, autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE test_mixed_types (string_field text, integer_field int,
              float_field double precision, boolean_field boolean, null_field text,
              datetime_field timestamp, list_field jsonb, dict_field jsonb,
              decimal_field numeric);
            CREATE TABLE test_special_chars (quotes text, unicode text, sql_injection text,
              newlines text, backslashes text, json_string text);
        """)
    desc, events = run_fixture(runner, "save_storage_test/save_edge_cases.yaml")
    assert desc["status"] == "COMPLETED", desc["error"]
    assert query(fresh_pg_url, "SELECT quotes, unicode, sql_injection, newlines, backslashes, "
                               "json_string FROM test_special_chars") == [(
        "This has 'single' and \"double\" quotes", "Unicode: αβγδε, 中文, 🚀🌟",
        "'; DROP TABLE test; --", "Line 1\nLine 2\r\nLine 3", "C:\\path\\to\\file",
        '{"embedded": "json", "value": 123}')]
    mixed = query(fresh_pg_url, "SELECT integer_field, boolean_field, null_field, list_field, "
                                "dict_field, decimal_field FROM test_mixed_types")
    assert [tuple(str(x) for x in r) for r in mixed] == [
        ("12345", "True", "None", "[1, 2, 3, 'mixed', True]",
         "{'count': 42, 'nested': 'value'}", "99.99")]
    assert [r["method"] for r in stub.requests] == ["POST"]
    assert stub.requests[0]["path"] == "/status/200"
    assert stub.requests[0]["body"]["valid_field"] == "this should work"
    large = next(e.result["meta"]["save"] for e in events
                 if e.event_type == "action_completed" and e.node_name == "test_large_payload")
    assert large["results"]["command_2"]["row_count"] == 2


def test_save_simple_fixture_fails_loudly_on_its_own_schema_bug(runner: Any,
                                                                fresh_pg_url: str) -> None:
    """The fixture saves columns (test_value, execution_id, ...) that create_tables.yaml does
    not create. NoETL hid that (meta.save_error, step still succeeded); a failed save fails the
    step here, naming the column."""
    desc, _ = run_fixture(runner, "save_storage_test/create_tables.yaml")
    assert desc["status"] == "COMPLETED", desc["error"]
    desc, _ = run_fixture(runner, "save_storage_test/save_simple_test.yaml")
    assert desc["status"] == "FAILED"
    assert desc["error"]["step"] == "postgres_nested_test"
    assert 'column "test_value" of relation "simple_test_nested" does not exist' in \
        desc["error"]["message"]
    assert query(fresh_pg_url, "SELECT test_id, test_name, test_value FROM simple_test_flat"
                 ) == [("100", "Postgres flat structure test", 42)]


def test_http_to_postgres_transfer_fixture(runner: Any, fresh_pg_url: str) -> None:
    from tests.tools.conftest import POSTS

    desc, _ = run_fixture(runner, "data_transfer/http_to_postgres_transfer.yaml")
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["steps"]["transfer_http_to_pg"]["result"]["rows_transferred"] == len(POSTS)
    assert desc["steps"]["show_count"]["result"]["command_0"]["rows"] == [
        {"records": len(POSTS)}]
    assert query(fresh_pg_url, "SELECT title FROM http_posts ORDER BY post_id LIMIT 1") == [
        (POSTS[0]["title"],)]


def test_http_retry_status_code_fixture(runner: Any, stub: Any) -> None:
    desc, events = run_fixture(runner, "retry_test/http_retry_status_code.yaml")
    assert desc["status"] == "FAILED"
    assert [r["path"] for r in stub.requests] == ["/status/503"] * 3
    assert len([e for e in events if e.event_type == "action_retry"]) == 2

