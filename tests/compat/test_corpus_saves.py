"""NoETL corpus: the save_storage_test set, in order (create_tables first), on one fresh
PostgreSQL target database; httpbin.org is the local ``Api``."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.compat.conftest import Compat, events_of

pytestmark = pytest.mark.postgres


def saves(events: list[Any]) -> dict[str, Any]:
    return {e.node_name: e.result["meta"]["save"] for e in events
            if e.event_type == "action_completed" and "save" in (e.result.get("meta") or {})}


@pytest.fixture(scope="module")
def tables(compat: Compat) -> Compat:
    desc, _ = compat.run("save_storage_test/create_tables.yaml")
    assert desc["status"] == "COMPLETED", desc["error"]
    return compat


def test_create_tables(tables: Compat) -> None:
    found = tables.query("SELECT table_name FROM information_schema.tables "
                         "WHERE table_schema = 'public' ORDER BY table_name")
    assert {"simple_test_flat", "simple_test_nested", "test_summary"} <= {r[0] for r in found}
    desc, _ = tables.run("save_storage_test/create_tables.yaml")  # IF NOT EXISTS: re-runnable
    assert desc["status"] == "COMPLETED", desc["error"]


def test_save_simple(tables: Compat) -> None:
    # unchanged: its nested save names columns the table lacks -> the step fails, naming one
    desc, events = tables.run("save_storage_test/save_simple_test.yaml")
    assert desc["status"] == "FAILED"
    assert desc["error"]["step"] == "postgres_nested_test"
    assert 'column "test_value" of relation "simple_test_nested" does not exist' in \
        desc["error"]["message"]
    assert saves(events)["start"]["data"] == {"step": "event_log_test",
                                              "message": "Testing event log storage",
                                              "test_id": "evt_001"}
    assert tables.query("SELECT test_id, test_name, test_value FROM simple_test_flat "
                        "WHERE test_id = '100'") == [("100", "Postgres flat structure test", 42)]
    # the fixture inserts the fixed key '100' (mode insert): clear it before the corrected copy
    tables.execute("DELETE FROM simple_test_flat WHERE test_id = '100'")
    desc, events = tables.run("copy:save_simple_test.yaml")
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"] == {"message": "All save storage tests completed successfully"}
    assert saves(events)["postgres_nested_test"] == {
        "storage": "postgres", "table": "simple_test_nested", "rows": 1, "mode": "upsert"}
    assert tables.query("SELECT test_name, test_data, test_execution FROM simple_test_nested "
                        "WHERE test_id = '200'") == [
        ("nested_structure_test", {"value": 42.5, "nested_indicator": True},
         str(desc["execution_id"]))]


def test_save_delegation(tables: Compat) -> None:
    tables.api.clear()
    desc, events = tables.run("save_storage_test/save_delegation_test.yaml")
    assert desc["status"] == "COMPLETED", desc["error"]
    s = saves(events)
    assert s["event_test"]["data"] == {"test": "event_storage",
                                       "message": "Event storage delegation working"}
    assert tables.query("SELECT test_name, test_value FROM simple_test_flat "
                        "WHERE test_id = 'delegation_test'") == [("postgres_storage", 123)]
    duck = s["duckdb_test"]
    assert duck["results"]["command_1"]["rows"] == [{"test_type": "delegation_test",
                                                     "status": "duckdb_working"}]
    assert os.path.exists(duck["database"])
    posted = [r for r in tables.api.requests if r["path"] == "/post"]
    assert len(posted) == 1 and posted[0]["method"] == "POST"
    assert posted[0]["body"] == {"test": "http_storage",
                                 "message": "HTTP storage delegation working"}
    assert s["http_test"]["status_code"] == 200


def test_save_all_storage_types(tables: Compat) -> None:
    tables.api.clear()
    desc, events = tables.run("copy:save_all_storage_types.yaml")
    try:
        assert desc["status"] == "COMPLETED", desc["error"]
    finally:  # the fixture's python save writes this file
        if os.path.exists("/tmp/noetl_test_unknown.json"):
            os.unlink("/tmp/noetl_test_unknown.json")
    eid = str(desc["execution_id"])
    s = saves(events)
    assert s["initialize_test_data"]["data"]["execution_id"] == eid
    assert len(s["initialize_test_data"]["data"]["sample_records"]) == 3
    assert tables.query("SELECT test_name, test_value, storage_type FROM simple_test_flat "
                        "WHERE test_id = %s", (eid,)) == [
        ("Test Employee Flat", 55000, "flat_structure")]
    assert tables.query("SELECT test_data, test_execution FROM simple_test_nested "
                        "WHERE test_id = %s", (eid + "_nested",)) == [
        ({"value": 58000, "type": "nested_structure", "meta": {"test_phase": "save_test"}}, eid)]
    # the statement save ran; its WHERE uses data.execution_id, which the step's own code
    # sets to 'unknown' (its input has no execution_id), so it counts 0 rows: fixture logic
    assert s["test_postgres_statement_save"] == {"storage": "postgres", "statement": True,
                                                 "rows": 1}
    assert tables.query("SELECT summary_type, total_records, test_execution FROM test_summary"
                        ) == [("department_stats", 0, "unknown")]
    py = s["test_python_save"]["result"]["data"]
    assert py["file_written"] is True and py["processed_data"]["processed_records"] == 3
    duck = s["test_duckdb_save"]["results"]
    assert [r["specific_analysis"] for r in duck["command_2"]["rows"]] == [
        "department_summary", "execution_summary"]
    assert all(r["test_execution"] == eid for r in duck["command_2"]["rows"])
    posted = [r for r in tables.api.requests if r["path"] == "/post"]
    assert len(posted) == 1
    assert posted[0]["headers"]["x-test-suite"] == "noetl-save-storage"
    assert posted[0]["headers"]["x-execution-id"] == eid
    body = posted[0]["body"]
    assert body["execution_summary"]["execution_id"] == eid
    assert body["execution_summary"]["timestamp"].startswith("20")  # now() is defined here
    assert len(body["storage_tests_completed"]) == 7
    assert desc["result"]["total_save_operations"] == 7


def test_save_edge_cases(tables: Compat) -> None:
    """Unchanged. Its credential `pg_k8s` (in-cluster host upstream) is registered here for the
    local database, and the two tables it writes, which no fixture creates, are created first."""
    tables.execute("""
        CREATE TABLE IF NOT EXISTS test_mixed_types (string_field text, integer_field int,
          float_field double precision, boolean_field boolean, null_field text,
          datetime_field timestamp, list_field jsonb, dict_field jsonb, decimal_field numeric);
        CREATE TABLE IF NOT EXISTS test_special_chars (quotes text, unicode text,
          sql_injection text, newlines text, backslashes text, json_string text)""")
    tables.api.clear()
    desc, events = tables.run("save_storage_test/save_edge_cases.yaml")
    assert desc["status"] == "COMPLETED", desc["error"]
    assert tables.query("SELECT quotes, unicode, sql_injection, newlines, backslashes, "
                        "json_string FROM test_special_chars") == [(
        "This has 'single' and \"double\" quotes", "Unicode: αβγδε, 中文, 🚀🌟",
        "'; DROP TABLE test; --", "Line 1\nLine 2\r\nLine 3", "C:\\path\\to\\file",
        '{"embedded": "json", "value": 123}')]
    mixed = tables.query("SELECT integer_field, boolean_field, null_field, decimal_field "
                         "FROM test_mixed_types")
    assert [tuple(str(x) for x in r) for r in mixed] == [("12345", "True", "None", "99.99")]
    assert [r["path"] for r in tables.api.requests] == ["/status/200"]
    large = saves(events)["test_large_payload"]
    assert large["results"]["command_2"]["row_count"] == 2
    summary = events_of(events, "test_completion_summary", "action_completed")[0]
    assert json.dumps(summary.result["meta"]["save"]["data"])  # the event-log save is stored
