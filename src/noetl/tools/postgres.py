"""``type: postgres``: run SQL on PostgreSQL (psycopg 3).

* SQL from ``command`` / ``commands`` (``query`` and ``sql`` are accepted as aliases;
  ``command_b64`` / ``commands_b64`` are base64). Several statements are split safely
  (:mod:`noetl.tools.sqlsplit`) and each runs in its own transaction; ``CALL`` runs in
  autocommit. A failing statement fails the step; statements before it stay committed.
* Result: ``{command_<n>: {status, rows, row_count, columns}}`` for statements returning rows,
  ``{status, row_count, message}`` for the others. Values are made JSON-safe
  (:mod:`noetl.tools.rows`).
* Connection: ``auth`` (credential name, ``{source: credential, key: X}``, or
  ``{type: postgres, credential: X}`` — NoETL documented the last form but could not resolve it;
  here it works), then ``db_host``/``db_port``/``db_user``/``db_password``/``db_name``/
  ``db_conn_string`` on the step or in ``args`` (explicit values win over the credential).
* Passwords never appear in results or error messages (messages are scrubbed).
* The step ``timeout`` bounds the whole step on the server: each statement runs with a
  ``statement_timeout`` of the time left, so PostgreSQL cancels a query that runs past it (a
  timed-out step leaves no query running, nor the locks it holds); the step then fails with
  ``TimeoutError``.
"""

from __future__ import annotations

import base64
import math
import re
import time
from collections.abc import Callable
from typing import Any

from noetl.errors import ToolError
from noetl.tools.auth import auth_of, postgres_fields, remember, resolve_auth, scrub
from noetl.tools.base import Services, ToolCall
from noetl.tools.rows import rows_result
from noetl.tools.sqlsplit import first_keyword, map_code, split_sql

DB_KEYS = ("db_host", "db_port", "db_user", "db_password", "db_name", "db_conn_string")


def sql_text(action: dict[str, Any], args: dict[str, Any] | None = None) -> str:
    for key in ("commands", "command", "query", "sql"):
        v = action.get(key)
        if isinstance(v, list):
            return ";\n".join(str(x) for x in v)
        if isinstance(v, str) and v.strip():
            return v
    for key in ("commands_b64", "command_b64"):
        if action.get(key):
            return base64.b64decode(action[key]).decode()
    raise ToolError("no SQL: set 'command' or 'commands'", "ValueError")


def conn_fields(auth: Any, explicit: list[dict[str, Any]], services: Services) -> dict[str, Any]:
    """``db_*`` fields from the auth credential, overridden by explicit values."""
    fields: dict[str, Any] = {}
    if auth is not None:
        res = resolve_auth(auth, services)
        if isinstance(res, dict):  # alias map: take the (first) postgres alias
            pg = [r for r in res.values() if (r.type or "postgres").lower() in
                  ("postgres", "postgresql", "pg")]
            if not pg:
                raise ToolError("auth: no postgres credential in the auth map", "AuthError")
            res = pg[0]
        if res is not None:
            fields.update(postgres_fields(res.data))
    for src in explicit:
        for k in DB_KEYS:
            if src.get(k) not in (None, ""):
                fields[k] = src[k]
    remember({"password": fields.get("db_password"), "dsn": fields.get("db_conn_string")},
             services)
    if not fields:
        raise ToolError("no database connection: set 'auth' (a credential) or db_host/db_user/"
                        "db_name (or db_conn_string)", "ValueError")
    return fields


def connect(fields: dict[str, Any], services: Services, timeout: float | None = None) -> Any:
    import psycopg

    wait = 10 if not timeout else max(1, min(10, math.ceil(timeout)))  # libpq: whole seconds
    kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": wait}
    conninfo = ""
    if fields.get("db_conn_string"):
        conninfo = str(fields["db_conn_string"])
    mapping = {"db_host": "host", "db_port": "port", "db_user": "user",
               "db_password": "password", "db_name": "dbname"}
    for k, name in mapping.items():
        if fields.get(k) not in (None, ""):
            kwargs[name] = str(fields[k])
    try:
        return psycopg.connect(conninfo, **kwargs)
    except Exception as exc:
        msg = scrub(str(exc), services, [str(fields.get("db_password") or ""), conninfo])
        raise ToolError(f"cannot connect to PostgreSQL: {msg}", type(exc).__name__) from None


class _Deadline:
    """The step's timeout across its statements: each gets ``statement_timeout`` = time left."""

    def __init__(self, timeout: float) -> None:
        self.timeout, self.at = timeout, time.monotonic() + timeout

    def expired(self, i: int, data: dict[str, Any]) -> ToolError:
        return ToolError(f"postgres: step timed out after {self.timeout:g} s (statement {i} "
                         "cancelled)", "TimeoutError", data=data)

    def arm(self, conn: Any, i: int, data: dict[str, Any]) -> None:
        left_ms = int((self.at - time.monotonic()) * 1000)
        if left_ms < 1:
            raise self.expired(i, data)
        conn.execute("SELECT set_config('statement_timeout', %s, false)", [f"{left_ms}ms"])


def run_statements(conn: Any, statements: list[str], services: Services,
                   params: list[Any] | None = None,
                   timeout: float | None = None) -> dict[str, Any]:
    from psycopg.errors import QueryCanceled

    out: dict[str, Any] = {}
    deadline = _Deadline(timeout) if timeout else None
    for i, stmt in enumerate(statements):
        p = params[i] if params else None
        try:
            if deadline is not None:
                deadline.arm(conn, i, out)
            if first_keyword(stmt) == "CALL":
                cur = conn.execute(stmt, p)
                out[f"command_{i}"] = _result(cur)
            else:
                with conn.transaction():
                    cur = conn.execute(stmt, p)
                    out[f"command_{i}"] = _result(cur)
        except ToolError:
            raise
        except QueryCanceled as exc:
            if deadline is not None and "statement timeout" in str(exc):
                raise deadline.expired(i, out) from None
            raise ToolError(f"statement {i} failed: {scrub(str(exc).strip(), services)}",
                            type(exc).__name__, data=out) from None
        except Exception as exc:
            msg = scrub(str(exc).strip(), services)
            raise ToolError(f"statement {i} failed: {msg}", type(exc).__name__,
                            data=out) from None
    return out


def _result(cur: Any) -> dict[str, Any]:
    if cur.description is not None:
        cols = [d.name for d in cur.description]
        return rows_result(cols, cur.fetchall())
    return {"status": "success", "row_count": cur.rowcount, "message": cur.statusmessage}


def run(call: ToolCall) -> Any:
    statements = split_sql(sql_text(call.action, call.args))
    if not statements:
        raise ToolError("no SQL statements to run", "ValueError")
    fields = conn_fields(auth_of(call.action, call.args), [call.action, call.args],
                         call.services)
    bound = bound_params(call.action, "postgres")
    timeout = float(call.timeout) if call.timeout else None
    with connect(fields, call.services, timeout) as conn:
        if bound:
            return run_statements(conn, [bind_named(st, bound) for st in statements],
                                  call.services, [bound] * len(statements), timeout)
        return run_statements(conn, statements, call.services, timeout=timeout)


def bound_params(action: dict[str, Any], tool: str) -> dict[str, Any] | None:
    """The step's ``params:`` (a mapping of names to values), or None."""
    bound = action.get("params")
    if bound is None:
        return None
    if not isinstance(bound, dict) or not all(isinstance(k, str) and k.isidentifier()
                                              for k in bound):
        raise ToolError(f"{tool} 'params' must be a mapping of names (identifiers) to values",
                        "ValueError")
    return bound


def placeholders(stmt: str, params: dict[str, Any], to: Callable[[str], str]) -> str:
    """``:name`` and ``%(name)s`` (names of ``params``) outside quoted text and comments,
    rewritten by ``to(name)``. A ``::type`` cast is left alone."""
    names = "|".join(re.escape(n) for n in sorted(params, key=len, reverse=True))
    if not names:
        return stmt
    pattern = re.compile(rf"(?<![:\w]):({names})\b|%\(({names})\)s")
    return map_code(stmt, lambda code: pattern.sub(lambda m: to(m.group(1) or m.group(2)),
                                                   code))


def bind_named(stmt: str, params: dict[str, Any]) -> str:
    """Placeholders in psycopg's ``%(name)s`` form; every other ``%`` (in quoted text too) is
    doubled: psycopg reads ``%`` as a placeholder wherever it is when values are bound."""
    marked = placeholders(stmt, params, lambda n: f"\0{n}\0")  # SQL text holds no NUL
    return re.sub(r"\0(\w+)\0", r"%(\1)s", marked.replace("%", "%%"))
