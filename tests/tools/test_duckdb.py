"""The duckdb tool and the duckdb save on real database files under tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb as duckdb_lib
import pytest

from noetl.credentials import put_credential, store_credentials
from noetl.errors import ToolError
from noetl.local import LocalRunner
from noetl.store import open_store
from noetl.tools import duckdb
from noetl.tools.base import Services, ToolCall
from tests.tools.pgutil import pg_fields, run_text, unique


def run(action: dict[str, Any], services: Services, eid: str = "7") -> Any:
    return duckdb.run(ToolCall(action=action, args={}, ctx={}, execution_id=eid, step="s",
                               services=services))


def postgres_extension_loads() -> str | None:
    """None when DuckDB's postgres extension loads here without a download, else why not."""
    try:
        duckdb.connect(":memory:").execute("LOAD postgres")
    except Exception as exc:
        return str(exc).splitlines()[0]
    return None


def test_statements_on_a_file(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "my.duckdb"
    out = run({"database": str(db), "commands": """
        CREATE TABLE t (id INTEGER, price DECIMAL(10, 2), d DATE, tags VARCHAR[],
                        s STRUCT(a INTEGER, b VARCHAR), txt VARCHAR);
        INSERT INTO t VALUES (1, 9.99, DATE '2024-03-01', ['x', 'y'], {'a': 1, 'b': 'q'},
                              'semi; ''colon''');
        -- comment; here
        SELECT * FROM t;
    """}, Services())
    assert out["database"] == str(db) and db.exists()
    assert out["command_0"] == {"status": "success", "message": "CREATE", "row_count": -1}
    assert out["command_1"] == {"status": "success", "message": "INSERT", "row_count": 1}
    sel = out["command_2"]
    assert sel["columns"] == ["id", "price", "d", "tags", "s", "txt"]
    assert sel["rows"] == [{"id": 1, "price": 9.99, "d": "2024-03-01", "tags": ["x", "y"],
                            "s": {"a": 1, "b": "q"}, "txt": "semi; 'colon'"}]
    with duckdb_lib.connect(str(db), read_only=True) as conn:  # really on disk
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_default_database_is_per_execution(tmp_path: Path) -> None:
    services = Services(data_dir=str(tmp_path / "data"))
    run({"command": "CREATE TABLE kept AS SELECT 42 AS v"}, services, eid="11")
    out = run({"command": "SELECT v FROM kept"}, services, eid="11")
    assert out["command_0"]["rows"] == [{"v": 42}]
    assert out["database"] == str(tmp_path / "data" / "duckdb" / "11.duckdb")
    with pytest.raises(ToolError, match="kept"):
        run({"command": "SELECT v FROM kept"}, services, eid="12")


def test_failed_extension_load_is_tolerated_and_named(tmp_path: Path) -> None:
    reason = postgres_extension_loads()
    if reason is None:
        pytest.skip("the postgres extension loads here; the offline path is not reachable")
    db = str(tmp_path / "x.duckdb")
    out = run({"database": db, "commands": "LOAD postgres; SELECT 1 AS one"}, Services())
    assert out["command_0"]["status"] == "skipped"
    assert "postgres" in out["command_0"]["message"]
    assert out["command_1"]["rows"] == [{"one": 1}]
    with pytest.raises(ToolError) as exc:
        run({"database": db, "commands": "LOAD postgres; SELECT * FROM postgres_scan('', 'a', "
                                         "'b')"}, Services())
    assert "extensions that could not be installed/loaded: postgres" in str(exc.value)


def test_postgres_alias_attach(tmp_path: Path, pg_url: str, sqlite_url: str,
                               noetl_home: Any) -> None:
    store = open_store(sqlite_url)
    marker = unique("PWMARK")
    put_credential(store, "pg_local", "postgres", pg_fields(pg_url, marker))
    services = Services(credentials=store_credentials(store))
    action = {"database": str(tmp_path / "a.duckdb"),
              "auth": {"pg_db": {"source": "credential", "type": "postgres",
                                 "key": "pg_local"}},
              "commands": "SELECT count(*) AS n FROM pg_db.information_schema.tables"}
    reason = postgres_extension_loads()
    try:
        if reason is not None:
            # offline: DuckDB's postgres extension is not installed and is never downloaded
            with pytest.raises(ToolError) as exc:
                run(action, services)
            msg = str(exc.value)
            assert "auth alias 'pg_db'" in msg and "postgres extension needed" in msg
            assert marker not in msg and marker in services.secrets
            pytest.skip(f"ATTACH not exercised: DuckDB postgres extension unavailable "
                        f"offline ({reason}); the clear error was checked")
        out = run(action, services)
        assert out["auth"] == {"pg_db": {"status": "attached", "type": "postgres"}}
        assert out["command_0"]["rows"][0]["n"] > 0
        assert marker not in str(out)
    finally:
        store.close()


DUCK_SAVE = """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: duck_save}
workflow:
  - step: start
    next: [{step: a}]
  - step: a
    type: python
    code: |
      def main():
          return [{"id": 1, "name": "x'y"}, {"id": 2, "name": "✓"}]
    save: {storage: duckdb, database: "{{ workload.db }}", table: items}
    next: [{step: b}]
  - step: b
    type: python
    code: |
      def main():
          return [{"id": 3, "name": "z"}]
    save:
      storage:
        type: duckdb
        database: "{{ workload.db }}"
        commands: |
          INSERT INTO items SELECT id * 10, name || '{{ execution_id }}' FROM data;
          SELECT count(*) AS n FROM items;
    next: [{step: end}]
  - step: end
"""


def test_duckdb_save(tmp_path: Path, sqlite_url: str, noetl_home: Any) -> None:
    db = str(tmp_path / "save.duckdb")
    with LocalRunner(sqlite_url) as runner:
        desc, events = run_text(DUCK_SAVE, runner, {"db": db})
    assert desc["status"] == "COMPLETED", desc["error"]
    eid = desc["execution_id"]
    with duckdb_lib.connect(db, read_only=True) as conn:
        rows = conn.execute("SELECT id, name FROM items ORDER BY id").fetchall()
    assert rows == [(1, "x'y"), (2, "✓"), (30, f"z{eid}")]
    save_b = next(e.result["meta"]["save"] for e in events
                  if e.event_type == "action_completed" and e.node_name == "b")
    assert save_b["results"]["command_1"]["rows"] == [{"n": 3}]


EVIL = "x'); DROP TABLE victim; --"
DUCK_PARAMS = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: duck_params, path: tests/duck_params}
workload: {db: "", v: ""}
workflow:
  - step: start
    type: duckdb
    database: "{{ workload.db }}"
    params: {v: "{{ workload.v }}", n: 7}
    command: |
      CREATE TABLE victim (a INTEGER);
      CREATE TABLE t (v VARCHAR, n INTEGER, lit VARCHAR);
      INSERT INTO t VALUES (:v, %(n)s, ':v is text here');
      INSERT INTO t VALUES ($v, :n + 1, '50%');
      SELECT v, n, lit FROM t ORDER BY n
"""


def test_params_are_bound_by_duckdb(tmp_path: Path, sqlite_url: str, noetl_home: Any) -> None:
    """Issue 13: the injection value through `params:` (rendered from the workload) is stored
    verbatim and drops nothing; each statement gets the values it names."""
    db = str(tmp_path / "p.duckdb")
    with LocalRunner(sqlite_url) as runner:
        desc, _ = run_text(DUCK_PARAMS, runner, {"db": db, "v": EVIL})
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"]["command_4"]["rows"] == [
        {"v": EVIL, "n": 7, "lit": ":v is text here"}, {"v": EVIL, "n": 8, "lit": "50%"}]
    with duckdb_lib.connect(db, read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM victim").fetchall() == [(0,)]  # not dropped
    # the same value templated into the command text is SQL (what the docs warn about)
    db2 = str(tmp_path / "q.duckdb")
    text = DUCK_PARAMS.replace("INSERT INTO t VALUES (:v,", "INSERT INTO t VALUES ('{{ workload.v }}',")
    with LocalRunner(sqlite_url) as runner:
        desc, _ = run_text(text, runner, {"db": db2, "v": "x', 1, 'y'); DROP TABLE victim; --"})
    with duckdb_lib.connect(db2, read_only=True) as conn:
        tables = {r[0] for r in conn.execute("SHOW TABLES").fetchall()}
    assert "victim" not in tables


def test_params_must_be_a_mapping(tmp_path: Path) -> None:
    from noetl.dsl import parse_playbook
    from noetl.errors import PlaybookError

    with pytest.raises(PlaybookError, match=r"params.*mapping of names"):
        parse_playbook(DUCK_PARAMS.replace('params: {v: "{{ workload.v }}", n: 7}',
                                           "params: [1, 2]"), "<t>")
    with pytest.raises(ToolError, match="mapping of names"):
        run({"database": str(tmp_path / "x.duckdb"), "params": {"not a name": 1},
             "command": "SELECT 1"}, Services())


def test_step_timeout_interrupts_the_query_and_frees_the_file(tmp_path: Path) -> None:
    """Past the step's ``timeout`` the running query is interrupted (TimeoutError naming the
    statement): nothing keeps running, so the next step on the same file is not blocked."""
    db = str(tmp_path / "slow.duckdb")
    with pytest.raises(ToolError) as err:
        duckdb.run(ToolCall(action={"database": db, "commands": (
            "CREATE TABLE t AS SELECT 1 AS a; "
            "SELECT count(*) FROM range(1000000000000) r, range(1000) s")},
            args={}, ctx={}, execution_id="7", step="s", services=Services(), timeout=0.5))
    assert err.value.error_type == "TimeoutError"
    assert str(err.value) == "duckdb: step timed out after 0.5 s (statement 1 interrupted)"
    out = duckdb.run(ToolCall(action={"database": db, "command": "SELECT a FROM t"},
                              args={}, ctx={}, execution_id="7", step="s2", services=Services(),
                              timeout=5))
    assert out["command_0"]["rows"] == [{"a": 1}]
