"""The OpenAPI document, made to say what the routes really answer: FastAPI documents 200 and
its own 422 shape; the handlers in :mod:`noetl.api.app` answer errors as ``{"detail": TEXT,
...}`` with 400, 401, 403, 404, 409, 422 and 503. Checked by schemathesis
(tests/api/test_schemathesis.py: status codes and response schemas of every operation)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from noetl.api.deps import protected

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "What is wrong, in words."},
        "error": {"type": "string", "description": "A machine-readable kind, when there is one "
                  "(invalid_playbook, template, conflict, lease_lost, invalid_text, "
                  "unavailable, credential_key)."},
        "errors": {"type": "array", "description": "Request validation: one entry per field.",
                   "items": {"type": "object", "properties": {
                       "loc": {"type": "string"}, "message": {"type": "string"},
                       "type": {"type": "string"}}}},
        "problems": {"type": "array", "description": "An invalid playbook: its problems.",
                     "items": {"type": "object", "properties": {
                         "where": {"type": "string"}, "message": {"type": "string"},
                         "line": {"type": ["integer", "null"]},
                         "severity": {"type": "string"}}}},
    },
}
WHY = {
    "400": "Bad input: text the store cannot hold (a NUL, a lone surrogate), a value out of "
           "range, a request the engine refuses.",
    "401": "Missing or wrong bearer token (only when the server has NOETL_API_TOKEN).",
    "403": "Credential data refused to this client (see docs/security.md).",
    "404": "No such object.",
    "409": "Conflict with stored state (a lease lost or held by another worker, an id taken).",
    "422": "The request or the playbook is invalid: `errors` (fields) or `problems` (playbook).",
    "503": "The database is unavailable (or the credential key missing); retry after "
           "`Retry-After` seconds.",
}
NOT_FOUND_ALSO = ("/api/catalog/resource", "/api/run/", "/api/context/render", "/api/events",
                  "/api/queue/")
LISTS_BY_ID = ("/api/queue", "/api/executions")  # filters by id: an impossible one is a 404
CONFLICT = ("/api/queue/", "/api/events", "/api/executions/{execution_id}/cancel")


def _codes(path: str, method: str) -> list[str]:
    if path == "/ready":
        return ["503"]
    if path in ("/health", "/api/health", "/api/schema"):
        return ["401"] if protected(path) else []
    codes = ["400", "422", "503"]
    if protected(path, method.upper()) or path.startswith("/api/hooks/"):  # a hook: its secret
        codes.append("401")
    if "{" in path or path.startswith(NOT_FOUND_ALSO) or path in LISTS_BY_ID:
        codes.append("404")
    if path.startswith(CONFLICT) and method != "get":
        codes.append("409")
    if path == "/api/credentials/{name}" and method == "get":
        codes.append("403")
    return codes


def build(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = ERROR_SCHEMA
    _add_body_models(doc, schemas)
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            for code in _codes(path, method):
                responses[code] = {"description": WHY[code], **ref}
            if code_503 := responses.get("503"):
                code_503["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                       "description": "Seconds."}}
    metrics = doc.get("paths", {}).get("/metrics", {}).get("get")
    if metrics:
        metrics["responses"]["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    return doc


def _add_body_models(doc: dict[str, Any], schemas: dict[str, Any]) -> None:
    """The request models the lean queue routes name in their ``openapi_extra`` (they read
    their bodies themselves, so FastAPI did not collect them), from :mod:`noetl.api.schemas`."""
    from noetl.api import schemas as models

    for ops in doc.get("paths", {}).values():
        for op in ops.values():
            ref = op.get("requestBody", {}).get("content", {}).get("application/json", {}) \
                .get("schema", {}).get("$ref", "")
            name = ref.rpartition("/")[2]
            if not ref.startswith("#/components/schemas/") or name in schemas:
                continue
            schema = getattr(models, name).model_json_schema(
                ref_template="#/components/schemas/{model}")
            for sub, sub_schema in schema.pop("$defs", {}).items():
                schemas.setdefault(sub, sub_schema)
            schemas[name] = schema


def install(app: FastAPI) -> None:
    """Serve :func:`build`'s document at /openapi.json (built once)."""
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not cache:
            cache.update(build(app))
        return cache

    app.openapi = openapi  # type: ignore[method-assign]
