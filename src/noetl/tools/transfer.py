"""``type: transfer``: HTTP → PostgreSQL (reference §1.3).

``source: {type: http, url|endpoint, method (GET), headers, params, data, auth, data_path}``:
one request; ``data_path`` (dotted, e.g. ``result.items``) picks the list of records in the
JSON response (default: the response itself; a single object is one record).
``target: {type: postgres, table, auth (or db_* fields), mapping {column: json_field},
mode insert|upsert, key}``; without ``mapping`` each record's keys are the columns.
``mapping`` values are dotted paths into the record. ``chunk_size`` (1000) records per
transaction. Result: ``{rows_transferred, chunks, source_status_code}``. A non-2xx source
response or a failed chunk fails the step (chunks already written stay committed).
"""

from __future__ import annotations

from typing import Any

from noetl.errors import ToolError
from noetl.tools.auth import auth_of, resolve_auth
from noetl.tools.base import ToolCall


def pick(obj: Any, path: str | None) -> Any:
    if not path:
        return obj
    for part in str(path).split("."):
        if isinstance(obj, dict):
            obj = obj.get(part)
        elif isinstance(obj, list) and part.lstrip("-").isdigit():
            idx = int(part)
            obj = obj[idx] if -len(obj) <= idx < len(obj) else None
        else:
            return None
    return obj


def fetch(source: dict[str, Any], call: ToolCall) -> tuple[list[dict[str, Any]], int]:
    from noetl.tools.http import _request_parts, auth_headers, request

    url = source.get("url") or source.get("endpoint")
    if not url:
        raise ToolError("transfer: source needs 'url'", "ValueError")
    method = str(source.get("method") or "GET").upper()
    headers = dict(source.get("headers") or {})
    res = resolve_auth(auth_of(source, {}), call.services)
    if isinstance(res, dict):
        res = next(iter(res.values()), None)
    extra, basic = auth_headers(res)
    headers.update(extra)
    parts = _request_parts(source, {}, method)
    resp, result = request(str(url), method, headers, float(call.timeout or 30),
                           services=call.services, basic=basic, **parts)
    if not resp.is_success:
        raise ToolError(f"transfer: source HTTP {resp.status_code} {resp.reason_phrase} from "
                        f"{method} {result['url']}", "HTTPStatusError", data=result)
    body = pick(result["data"], source.get("data_path"))
    if body is None:
        return [], resp.status_code
    records = body if isinstance(body, list) else [body]
    bad = [r for r in records if not isinstance(r, dict)]
    if bad:
        raise ToolError(f"transfer: source records must be JSON objects, got "
                        f"{type(bad[0]).__name__}", "ValueError")
    return records, resp.status_code


def run(call: ToolCall) -> Any:
    from noetl.tools.save_storage import save_postgres

    a = call.action
    source = dict(a.get("source") or {})
    target = dict(a.get("target") or {})
    if str(source.get("type") or "http").lower() != "http":
        raise ToolError(f"transfer: source type '{source.get('type')}' is not supported "
                        "(http)", "ValueError")
    if str(target.get("type") or "postgres").lower() not in ("postgres", "postgresql"):
        raise ToolError(f"transfer: target type '{target.get('type')}' is not supported "
                        "(postgres)", "ValueError")
    if not target.get("table"):
        raise ToolError("transfer: target needs 'table'", "ValueError")
    mapping = target.get("mapping") or a.get("mapping")
    if "mode" not in target and a.get("mode"):
        target["mode"] = a["mode"]
    records, code = fetch(source, call)
    if mapping:
        records = [{col: pick(r, str(path)) for col, path in mapping.items()} for r in records]
    size = max(1, int(a.get("chunk_size") or target.get("chunk_size") or 1000))
    cfg = {k: v for k, v in target.items() if k not in ("type", "mapping", "chunk_size")}
    work = {"execution_id": call.execution_id, "step": call.step}
    total = chunks = 0
    for i in range(0, len(records), size):
        chunk = records[i:i + size]
        out = save_postgres(cfg, chunk, call.services, work)
        total += int(out.get("rows") or 0)
        chunks += 1
    return {"rows_transferred": total, "chunks": chunks, "source_status_code": code,
            "table": target["table"]}
