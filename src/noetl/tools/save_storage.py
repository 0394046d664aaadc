"""Save storages: ``postgres``, ``duckdb``, ``http``, ``python`` (called by
:mod:`noetl.tools.save` with the rendered config and data). A failure raises, which fails the
step.

* ``postgres``: ``table`` + ``data`` (a mapping or a list of mappings) → ``INSERT``;
  ``mode: upsert`` + ``key`` (a name, a list, or ``"a,b"``) → ``ON CONFLICT (key) DO UPDATE SET``
  the other columns (``DO NOTHING`` when every column is a key). Or a custom ``statement`` with
  ``:name`` placeholders bound from ``data`` (``:params.name`` too; a list of mappings runs the
  statement once per item); NoETL's ``{{ params.name }}`` is the same bound value (quoted,
  ``'{{ params.name }}'``, it is bound as text). Values are always bound parameters and
  identifiers are quoted, so
  quotes, unicode and SQL-looking text are stored verbatim. Mappings and lists are stored as JSON
  text. Jinja in ``statement`` is rendered first (use it for names, never for values).
* ``duckdb``: ``commands`` (``sql``/``statement``) run with the data loaded as a temporary table
  ``data``; without commands the data is inserted into ``table`` (default ``save_data``,
  created from the data's columns when missing). ``database`` as for the duckdb step.
* ``http``: ``method`` (POST) to ``endpoint``/``url`` with ``headers`` and ``auth``; the data
  is the JSON body. A non-2xx response fails the save.
* ``python``: ``code`` defining ``main(data)``; its return value is the save result.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import traceback
from typing import Any

from noetl.errors import ToolError
from noetl.templates import json_default, render
from noetl.tools.auth import auth_of, scrub
from noetl.tools.base import Services
from noetl.tools.sqlsplit import _tokens

_PLACEHOLDER = re.compile(r"(?<![:\w]):(?:params\.)?([A-Za-z_][A-Za-z0-9_]*)")


def _records(data: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list) and all(isinstance(x, dict) for x in data):
        return data
    raise ToolError(f"{where}: data must be a mapping or a list of mappings, got "
                    f"{type(data).__name__}", "SaveError")


def _param(v: Any) -> Any:
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, default=json_default, ensure_ascii=False)
    return v


def _keys(cfg: dict[str, Any]) -> list[str]:
    key = cfg.get("key", cfg.get("keys"))
    if key is None:
        return []
    if isinstance(key, str):
        return [k.strip() for k in key.split(",") if k.strip()]
    return [str(k) for k in key]


def _ident(name: str) -> Any:
    from psycopg import sql

    return sql.Identifier(*[p.strip().strip('"') for p in str(name).split(".")])


# `{{ params.x }}` in a save statement is the save's data, bound, never pasted into the SQL:
# `'{{ params.x }}'` (a quoted literal) becomes a text parameter, `{{ params.x }}` a parameter.
_PARAMS_QUOTED = re.compile(r"'\{\{\s*params\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}'")
_PARAMS_BARE = re.compile(r"\{\{\s*params\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_TEXT = "__text_"


def params_to_placeholders(statement: str) -> str:
    """NoETL's ``{{ params.x }}`` → ``:x`` placeholders (``'{{ params.x }}'`` → a text one)."""
    text = _PARAMS_QUOTED.sub(lambda m: f":{_TEXT}{m.group(1)}", statement)
    return _PARAMS_BARE.sub(lambda m: f":{m.group(1)}", text)


def _bound(rec: dict[str, Any], name: str) -> Any:
    if name.startswith(_TEXT):
        v = rec.get(name[len(_TEXT):])
        return None if v is None else str(_param(v))
    return _param(rec.get(name))


def bind_statement(statement: str) -> tuple[str, list[str]]:
    """``:name`` placeholders (outside quotes and comments) → psycopg ``%(name)s``."""
    names: list[str] = []
    out: list[str] = []
    for kind, text in _tokens(statement):
        text = text.replace("%", "%%")
        if kind == "code":
            def sub(m: re.Match[str]) -> str:
                names.append(m.group(1))
                return f"%({m.group(1)})s"
            text = _PLACEHOLDER.sub(sub, text)
        out.append(text)
    return "".join(out), names


def insert_sql(table: str, columns: list[str], mode: str, keys: list[str]) -> Any:
    from psycopg import sql

    q = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        _ident(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        sql.SQL(", ").join(sql.Placeholder(f"c{i}") for i in range(len(columns))))
    if mode == "upsert":
        if not keys:
            raise ToolError("postgres save: mode upsert needs 'key'", "SaveError")
        others = [c for c in columns if c not in keys]
        conflict = sql.SQL(", ").join(sql.Identifier(k) for k in keys)
        if others:
            sets = sql.SQL(", ").join(sql.SQL("{} = EXCLUDED.{}").format(
                sql.Identifier(c), sql.Identifier(c)) for c in others)
            q = sql.SQL("{} ON CONFLICT ({}) DO UPDATE SET {}").format(q, conflict, sets)
        else:
            q = sql.SQL("{} ON CONFLICT ({}) DO NOTHING").format(q, conflict)
    return q


def save_postgres(cfg: dict[str, Any], data: Any, services: Services,
                  work: dict[str, Any]) -> dict[str, Any]:
    from noetl.tools.postgres import conn_fields, connect

    fields = conn_fields(auth_of(cfg, {}), [cfg], services)
    statement = cfg.get("statement") or cfg.get("sql")
    mode = str(cfg.get("mode") or "insert").lower()
    with connect(fields, services) as conn:
        try:
            with conn.transaction():
                if statement:
                    text = render(params_to_placeholders(str(statement)),
                                  work.get("save_ctx") or {},
                                  f"step '{work.get('step')}' → save → statement")
                    query, names = bind_statement(str(text))
                    recs = _records(data if data is not None else {}, "postgres save")
                    n = 0
                    for rec in recs:
                        params = {k: _bound(rec, k) for k in names}
                        cur = conn.execute(query.encode(), params)
                        n += max(cur.rowcount, 0)
                    return {"statement": True, "rows": n}
                table = cfg.get("table")
                if not table:
                    raise ToolError("postgres save needs 'table' or 'statement'", "SaveError")
                recs = _records(data, "postgres save")
                if not recs:
                    return {"table": table, "rows": 0, "mode": mode}
                columns: list[str] = []
                for rec in recs:
                    columns.extend(k for k in rec if k not in columns)
                q = insert_sql(str(table), columns, mode, _keys(cfg))
                with conn.cursor() as cur:
                    cur.executemany(q, [{f"c{i}": _param(rec.get(c))
                                         for i, c in enumerate(columns)} for rec in recs])
                return {"table": table, "rows": len(recs), "mode": mode}
        except ToolError:
            raise
        except Exception as exc:
            raise ToolError(f"postgres save failed: {scrub(str(exc).strip(), services)}",
                            type(exc).__name__) from None


def save_duckdb(cfg: dict[str, Any], data: Any, services: Services,
                work: dict[str, Any]) -> dict[str, Any]:
    from pathlib import Path

    from noetl.tools.duckdb import _lock_for, connect, run_statements
    from noetl.tools.sqlsplit import split_sql

    db = cfg.get("database")
    if not db:
        d = Path(services.data_dir) / "duckdb"
        d.mkdir(parents=True, exist_ok=True)
        db = str(d / f"{work.get('execution_id')}.duckdb")
    commands = cfg.get("commands") or cfg.get("sql") or cfg.get("statement")
    recs = [] if data is None else ([{"value": data}] if not isinstance(data, (dict, list))
                                    else _records(data, "duckdb save"))
    fd, path = tempfile.mkstemp(suffix=".json", prefix="noetl-save-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(recs, fh, default=json_default, ensure_ascii=False)
        with _lock_for(str(db)):
            conn = connect(str(db), services)
            try:
                if recs:
                    conn.execute("CREATE TEMP TABLE data AS SELECT * FROM read_json_auto(?)",
                                 [path])
                else:
                    conn.execute("CREATE TEMP TABLE data (value VARCHAR)")
                if commands:
                    if isinstance(commands, list):
                        commands = ";\n".join(str(c) for c in commands)
                    text = render(commands, work.get("save_ctx") or {},
                                  f"step '{work.get('step')}' → save → commands")
                    out = run_statements(conn, split_sql(str(text)), services)
                    return {"database": str(db), "commands": len(out), "results": out}
                table = str(cfg.get("table") or "save_data")
                ident = ".".join('"' + p.strip('"').replace('"', '""') + '"'
                                 for p in table.split("."))
                exists = conn.execute(
                    "SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                    [table.split(".")[-1].strip('"')]).fetchone()
                if exists and exists[0]:
                    conn.execute(f"INSERT INTO {ident} BY NAME SELECT * FROM data")
                else:
                    conn.execute(f"CREATE TABLE {ident} AS SELECT * FROM data")
                return {"database": str(db), "table": table, "rows": len(recs)}
            finally:
                conn.close()
    finally:
        os.unlink(path)


def save_http(cfg: dict[str, Any], data: Any, services: Services,
              work: dict[str, Any]) -> dict[str, Any]:
    from noetl.tools.auth import resolve_auth
    from noetl.tools.http import auth_headers, request

    url = cfg.get("endpoint") or cfg.get("url")
    if not url:
        raise ToolError("http save needs 'endpoint'", "SaveError")
    method = str(cfg.get("method") or "POST").upper()
    headers = dict(cfg.get("headers") or {})
    res = resolve_auth(auth_of(cfg, {}), services)
    if isinstance(res, dict):
        res = next(iter(res.values()), None)
    extra, basic = auth_headers(res)
    headers.update(extra)
    body = json.loads(json.dumps(data, default=json_default))
    resp, result = request(str(url), method, headers, float(cfg.get("timeout") or 30),
                           services=services, basic=basic, json=body)
    if not resp.is_success:
        raise ToolError(f"http save: HTTP {resp.status_code} {resp.reason_phrase} from "
                        f"{method} {result['url']}", "HTTPStatusError")
    return {"url": result["url"], "status_code": resp.status_code}


def save_python(cfg: dict[str, Any], data: Any, services: Services,
                work: dict[str, Any]) -> dict[str, Any]:
    from noetl.tools.python import _compile, user_traceback

    code = cfg.get("code") or cfg.get("script")
    if not code:
        return {"data": data}
    ns: dict[str, Any] = {"__name__": "__noetl_save__", "json": json}
    try:
        exec(_compile(str(code)), ns)
        main = ns.get("main")
        if not callable(main):
            raise ToolError("python save: code does not define main(data)", "SaveError")
        return {"result": main(data)}
    except ToolError:
        raise
    except Exception as exc:
        raise ToolError(f"python save failed: {type(exc).__name__}: {exc}", type(exc).__name__,
                        traceback.format_exc(), user_traceback=user_traceback(exc, True)) from exc
