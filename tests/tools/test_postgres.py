"""The postgres tool on a real database: statements, types, transactions, auth forms."""

from __future__ import annotations

from typing import Any

import pytest

from noetl.credentials import put_credential, store_credentials
from noetl.errors import ToolError
from noetl.local import LocalRunner
from noetl.store import open_store
from noetl.tools import postgres
from noetl.tools.base import Services, ToolCall
from tests.tools.pgutil import pg_fields, query, run_text, unique


@pytest.fixture
def services(pg_url: str, sqlite_url: str, noetl_home: Any) -> Any:
    store = open_store(sqlite_url)
    put_credential(store, "pg", "postgres", pg_fields(pg_url))
    put_credential(store, "pg_wrongdb", "postgres",
                   {**pg_fields(pg_url), "database": "no_such_db_x"})
    put_credential(store, "pg_dsn", "postgres", {"dsn": pg_url})
    yield Services(credentials=store_credentials(store))
    store.close()


def run(action: dict[str, Any], services: Services, args: dict[str, Any] | None = None) -> Any:
    return postgres.run(ToolCall(action=action, args=args or {}, ctx={}, execution_id="1",
                                 step="s", services=services))


def test_statements_types_and_results(services: Services) -> None:
    t = unique("pgt")
    out = run({"auth": "pg", "commands": f"""
        CREATE TABLE {t} (id int PRIMARY KEY, n numeric, ts timestamptz, d date,
                          u uuid, b bytea, i interval, j jsonb, s text);
        INSERT INTO {t} VALUES
          (1, 12.50, '2024-01-02T03:04:05+00', '2024-02-29',
           'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x0001ff', '1 day 2 hours',
           '{{"k": [1, 2]}}', 'semi;colon ''q'''),
          (2, 7, NULL, NULL, NULL, NULL, NULL, NULL, $$dollar; quoted$$);
        -- a comment; with a semicolon
        SELECT * FROM {t} ORDER BY id;
        UPDATE {t} SET s = s WHERE id > 0;
    """}, services)
    assert list(out) == ["command_0", "command_1", "command_2", "command_3"]
    assert out["command_0"] == {"status": "success", "row_count": -1, "message": "CREATE TABLE"}
    assert out["command_1"]["row_count"] == 2 and out["command_1"]["message"] == "INSERT 0 2"
    sel = out["command_2"]
    assert sel["columns"] == ["id", "n", "ts", "d", "u", "b", "i", "j", "s"]
    assert sel["row_count"] == 2
    assert sel["rows"][0] == {"id": 1, "n": 12.5, "ts": "2024-01-02T03:04:05+00:00",
                              "d": "2024-02-29", "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                              "b": "AAH/", "i": 93600.0, "j": {"k": [1, 2]},
                              "s": "semi;colon 'q'"}
    assert sel["rows"][1]["n"] == 7 and sel["rows"][1]["s"] == "dollar; quoted"
    assert out["command_3"]["message"] == "UPDATE 2"
    import json

    json.dumps(out)  # everything is plain JSON


def test_each_statement_commits_on_its_own(services: Services, pg_url: str) -> None:
    t = unique("pgtx")
    with pytest.raises(ToolError) as exc:
        run({"auth": "pg", "command": f"CREATE TABLE {t} (a int); INSERT INTO {t} VALUES (1);"
                                      f"INSERT INTO {t} VALUES ('not a number')"}, services)
    assert "statement 2 failed" in str(exc.value)
    assert "invalid input syntax for type integer" in str(exc.value)
    assert exc.value.error_type == "InvalidTextRepresentation"
    assert query(pg_url, f"SELECT a FROM {t}") == [(1,)]


def test_call_runs_in_autocommit(services: Services, pg_url: str) -> None:
    t, p = unique("pgc"), unique("proc")
    out = run({"auth": {"source": "credential", "key": "pg"}, "commands": f"""
        CREATE TABLE {t} (a int);
        CREATE PROCEDURE {p}() LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO {t} VALUES (1); COMMIT; INSERT INTO {t} VALUES (2); END $$;
        CALL {p}();
    """}, services)
    assert out["command_2"]["message"] == "CALL"
    assert query(pg_url, f"SELECT a FROM {t} ORDER BY a") == [(1,), (2,)]


@pytest.mark.parametrize("auth", ["pg", {"source": "credential", "key": "pg"},
                                  {"type": "postgres", "credential": "pg"},
                                  {"source": "credential", "name": "pg_dsn"},
                                  {"pg_db": {"source": "credential", "key": "pg"}}])
def test_auth_forms(services: Services, auth: Any) -> None:
    out = run({"auth": auth, "query": "SELECT current_database() AS db"}, services)
    assert out["command_0"]["rows"][0]["db"].startswith("noetl_t_")


def test_explicit_fields_win_over_credential(services: Services, pg_url: str) -> None:
    db = pg_fields(pg_url)["database"]
    with pytest.raises(ToolError, match='database "no_such_db_x" does not exist'):
        run({"auth": "pg_wrongdb", "sql": "SELECT 1"}, services)
    out = run({"auth": "pg_wrongdb", "sql": "SELECT current_database() AS db"}, services,
              args={"db_name": db})
    assert out["command_0"]["rows"] == [{"db": db}]
    out = run({"command_b64": "U0VMRUNUIDIgQVMgdHdv", "db_conn_string": pg_url}, services)
    assert out["command_0"]["rows"] == [{"two": 2}]


def test_errors_never_show_the_password(services: Services, pg_url: str) -> None:
    marker = "pw-" + unique("MARK")
    store_services = services
    with pytest.raises(ToolError) as exc:
        run({"db_conn_string": pg_url, "db_password": marker,
             "command": f"SELECT '{marker}'::int"}, store_services)
    assert marker not in str(exc.value) and "***" in str(exc.value)
    with pytest.raises(ToolError) as exc:
        run({"db_conn_string": f"host=127.0.0.1 port=bad password={marker}",
             "command": "SELECT 1"}, store_services)
    assert marker not in str(exc.value)


def test_no_connection_and_no_sql(services: Services) -> None:
    with pytest.raises(ToolError, match="no database connection"):
        run({"command": "SELECT 1"}, services)
    with pytest.raises(ToolError, match="no SQL"):
        run({"auth": "pg"}, services)
    with pytest.raises(ToolError, match="credential 'missing' not found"):
        run({"auth": "missing", "command": "SELECT 1"}, services)


def test_params_are_bound_by_the_driver(services: Services, pg_url: str) -> None:
    """Issue 13: a value through `params:` is data, never SQL text."""
    victim, t = unique("victim"), unique("pgp")
    evil = "x'); DROP TABLE " + victim + "; --"
    run({"auth": "pg", "command": f"CREATE TABLE {victim} (a int); CREATE TABLE {t} (v text, n int)"},
        services)
    run({"auth": "pg", "params": {"v": evil, "n": 7},
         "command": f"INSERT INTO {t} VALUES (:v, %(n)s); SELECT '50%' AS pct, :n::int AS n"},
        services)
    assert query(pg_url, f"SELECT v, n FROM {t}") == [(evil, 7)]
    assert query(pg_url, f"SELECT count(*) FROM {victim}") == [(0,)]  # not dropped


def test_params_in_a_playbook_store_the_injection_value_verbatim(pg_url: str, sqlite_url: str,
                                                                 noetl_home: Any) -> None:
    """Issue 13 acceptance: `x'); DROP TABLE victim; --` from the workload, through `params:`,
    is stored verbatim and drops nothing; a `:name` inside quoted text stays text."""
    from noetl.local import LocalRunner
    from tests.tools.pgutil import run_text

    victim, t = unique("victim"), unique("pgpb")
    evil = f"x'); DROP TABLE {victim}; --"
    text = f"""\
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {{name: pg_params, path: tests/pg_params}}
    workload: {{v: ""}}
    workflow:
      - step: start
        type: postgres
        auth: pg
        params: {{v: "{{{{ workload.v }}}}"}}
        command: |
          CREATE TABLE {victim} (a int);
          CREATE TABLE {t} (v text, lit text);
          INSERT INTO {t} VALUES (:v, ':v stays text -- 100%');
          SELECT v, lit FROM {t}
    """
    with LocalRunner(sqlite_url) as runner:
        put_credential(runner.store, "pg", "postgres", pg_fields(pg_url))
        desc, _ = run_text(text, runner, {"v": evil})
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"]["command_3"]["rows"] == [{"v": evil, "lit": ":v stays text -- 100%"}]
    assert query(pg_url, f"SELECT v FROM {t}") == [(evil,)]
    assert query(pg_url, f"SELECT count(*) FROM {victim}") == [(0,)]


def test_step_timeout_cancels_the_query_on_the_server(pg_url: str, sqlite_url: str,
                                                      noetl_home: Any) -> None:
    """A postgres step past its ``timeout`` fails with TimeoutError, and PostgreSQL has
    cancelled its statement: no backend still runs it (it would hold its locks for as long),
    and the statements before it stay committed."""
    t, marker = unique("pgto"), unique("sleep_marker")
    text = f"""\
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {{name: pg_timeout, path: tests/pg_timeout}}
    workflow:
      - step: start
        type: postgres
        auth: pg
        timeout: 1
        command: |
          CREATE TABLE {t} (a int);
          SELECT pg_sleep(30) AS {marker}
    """
    with LocalRunner(sqlite_url) as runner:
        put_credential(runner.store, "pg", "postgres", pg_fields(pg_url))
        desc, _ = run_text(text, runner)
    assert desc["status"] == "FAILED"
    assert desc["error"]["type"] == "TimeoutError", desc["error"]
    assert "timed out after 1 s (statement 1 cancelled)" in desc["error"]["message"]
    running = query(pg_url, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s "
                            "AND pid <> pg_backend_pid()", [f"%{marker}%"])
    assert running == [(0,)]
    assert query(pg_url, f"SELECT count(*) FROM {t}") == [(0,)]
