"""``type: duckdb``: run SQL on a DuckDB database file.

* SQL from ``command`` / ``commands`` (also ``query``, ``sql``, ``*_b64``), split like postgres;
  results ``{command_<n>: {status, rows, row_count, columns}}`` (or ``{status, row_count,
  message}`` for statements that change things), plus
  ``database`` (the file path).
* ``database``: a file path; default ``<data_dir>/duckdb/<execution_id>.duckdb``, so steps of
  one execution share a database. ``:memory:`` is allowed.
* ``auth`` alias map: for every alias whose credential is a postgres one, the tool creates a
  DuckDB secret named after the alias and ``ATTACH``es the database as the alias (unless the
  SQL attaches that alias itself). That needs DuckDB's ``postgres`` extension. Extensions are
  never downloaded implicitly (``autoinstall_known_extensions`` is off; set
  ``NOETL_DUCKDB_AUTOINSTALL=1`` to allow it). ``INSTALL``/``LOAD`` statements that fail are
  tolerated and reported in their ``command_<n>`` result; when a later statement fails, the
  error says which extension could not be loaded.
* ``params``: a mapping of values bound by DuckDB to ``:name``, ``%(name)s`` or ``$name``
  placeholders in every statement (each statement gets the values it names).
* The step ``timeout`` bounds the step (the wait for the file's lock included): past it the
  running query is interrupted (``DuckDBPyConnection.interrupt``) and the step fails with
  ``TimeoutError``; nothing keeps running.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

from noetl.errors import ToolError
from noetl.tools.auth import Resolved, auth_of, postgres_fields, resolve_auth, scrub
from noetl.tools.base import Services, ToolCall
from noetl.tools.postgres import bound_params, placeholders, sql_text
from noetl.tools.rows import rows_result
from noetl.tools.sqlsplit import first_keyword, map_code, split_sql

QUERY_KEYWORDS = frozenset({"SELECT", "WITH", "FROM", "VALUES", "SHOW", "DESCRIBE", "PRAGMA",
                            "EXPLAIN", "SUMMARIZE", "TABLE", "CALL"})
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def database_path(call: ToolCall) -> str:
    db = call.action.get("database") or call.args.get("database")
    if db:
        db = str(db)
        if db != ":memory:":
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return db
    d = Path(call.services.data_dir) / "duckdb"
    d.mkdir(parents=True, exist_ok=True)
    return str(d / f"{call.execution_id}.duckdb")


def connect(path: str, services: Services | None = None) -> Any:
    """A DuckDB connection; extensions are installed on demand only with
    NOETL_DUCKDB_AUTOINSTALL (``services.config``)."""
    import duckdb

    auto = services is not None and services.config.duckdb_autoinstall
    config: dict[str, Any] = {"autoinstall_known_extensions": auto,
                              "autoload_known_extensions": True}
    return duckdb.connect(path, config=config)


def _q(v: Any) -> str:
    return "'" + str(v).replace("'", "''") + "'"


def _pg_secret_sql(alias: str, res: Resolved) -> str:
    f = postgres_fields(res.data)
    if f.get("db_conn_string"):
        from psycopg.conninfo import conninfo_to_dict

        d = conninfo_to_dict(str(f["db_conn_string"]))
        f = {**postgres_fields({k: v for k, v in d.items() if v is not None}),
             **{k: v for k, v in f.items() if k != "db_conn_string"}}
    opts = ["TYPE postgres"]
    for key, name in (("db_host", "HOST"), ("db_port", "PORT"), ("db_name", "DATABASE"),
                      ("db_user", "USER"), ("db_password", "PASSWORD")):
        if f.get(key) not in (None, ""):
            opts.append(f"{name} {_q(f[key])}")
    return f'CREATE OR REPLACE SECRET "{alias}" ({", ".join(opts)})'


def setup_aliases(conn: Any, auth: Any, sql: str, services: Services) -> dict[str, Any]:
    """Secrets (and attachments) for postgres aliases in an auth map; returns a report."""
    res = resolve_auth(auth, services)
    if res is None:
        return {}
    aliases = res if isinstance(res, dict) else {"pg_db": res}
    report: dict[str, Any] = {}
    for alias, r in aliases.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", alias):
            raise ToolError(f"auth alias '{alias}' is not a valid identifier", "AuthError")
        if (r.type or "").lower() not in ("postgres", "postgresql", "pg"):
            report[alias] = {"status": "skipped", "type": r.type,
                             "message": "only postgres aliases are supported"}
            continue
        try:
            conn.execute("LOAD postgres")
            conn.execute(_pg_secret_sql(alias, r))
            attaches_itself = re.search(rf"\bATTACH\b[^;]*\bAS\s+\"?{alias}\b", sql,
                                        re.IGNORECASE)
            if not attaches_itself:
                conn.execute(f"ATTACH '' AS \"{alias}\" (TYPE postgres, SECRET \"{alias}\")")
            report[alias] = {"status": "attached" if not attaches_itself else "secret",
                             "type": "postgres"}
        except Exception as exc:
            msg = scrub(str(exc).strip().splitlines()[0], services)
            raise ToolError(f"auth alias '{alias}': cannot attach the postgres database "
                            f"(DuckDB postgres extension needed): {msg}",
                            type(exc).__name__) from None
    return report


def bind(stmt: str, params: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """The statement with its placeholders in DuckDB's ``$name`` form, and the values it
    names (DuckDB refuses values a statement does not use)."""
    used: set[str] = set()

    def dollar(name: str) -> str:
        used.add(name)
        return "$" + name

    text = placeholders(stmt, params, dollar)
    native = re.compile(r"\$(\w+)")

    def scan(code: str) -> str:
        used.update(n for n in native.findall(code) if n in params)
        return code

    map_code(text, scan)
    return text, ({n: params[n] for n in params if n in used} or None)


def run_statements(conn: Any, statements: list[str], services: Services,
                   params: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    failed_ext: list[str] = []
    for i, stmt in enumerate(statements):
        kw = first_keyword(stmt)
        values = None
        if params:
            stmt, values = bind(stmt, params)
        try:
            cur = conn.execute(stmt, values) if values else conn.execute(stmt)
            cols = [d[0] for d in cur.description or []]
            if cols == ["Count"] and kw not in QUERY_KEYWORDS:  # DDL/DML: a change count
                found = cur.fetchall()
                out[f"command_{i}"] = {"status": "success", "message": kw,
                                       "row_count": int(found[0][0]) if found else -1}
            elif cols:
                out[f"command_{i}"] = rows_result(cols, cur.fetchall())
            else:
                out[f"command_{i}"] = {"status": "success", "message": kw, "row_count": -1}
        except Exception as exc:
            msg = scrub(str(exc).strip(), services)
            if kw in ("INSTALL", "LOAD", "FORCE"):
                failed_ext.append(stmt.split()[-1])
                out[f"command_{i}"] = {"status": "skipped", "message": msg.splitlines()[0]}
                continue
            hint = (f" (extensions that could not be installed/loaded: "
                    f"{', '.join(failed_ext)})") if failed_ext else ""
            raise ToolError(f"statement {i} failed: {msg}{hint}", type(exc).__name__,
                            data=out) from None
    return out


def _timed_out(call: ToolCall, what: str) -> ToolError:
    return ToolError(f"duckdb: step timed out after {call.timeout:g} s ({what})", "TimeoutError")


def run(call: ToolCall) -> Any:
    sql = sql_text(call.action, call.args)
    statements = split_sql(sql)
    if not statements:
        raise ToolError("no SQL statements to run", "ValueError")
    bound = bound_params(call.action, "duckdb")
    path = database_path(call)
    lock = _lock_for(path)  # one writer per file in this process
    deadline = time.monotonic() + call.timeout if call.timeout else None
    if not lock.acquire(timeout=-1 if call.timeout is None else call.timeout):
        raise _timed_out(call, f"waiting for {path}")
    try:
        conn = connect(path, call.services)
        timer = None
        if deadline is not None:  # interrupt whatever runs at the deadline
            timer = threading.Timer(max(0.0, deadline - time.monotonic()), conn.interrupt)
            timer.daemon = True
            timer.start()
        try:
            aliases = setup_aliases(conn, auth_of(call.action, call.args), sql, call.services)
            out = run_statements(conn, statements, call.services, bound)
        except ToolError as exc:
            if deadline is not None and time.monotonic() >= deadline and \
                    exc.error_type == "InterruptException":
                done = exc.data if isinstance(exc.data, dict) else {}  # one per statement before
                raise _timed_out(call, f"statement {len(done)} interrupted") from None
            raise
        finally:
            if timer is not None:
                timer.cancel()
            conn.close()
    finally:
        lock.release()
    out["database"] = path
    if aliases:
        out["auth"] = aliases
    return out
