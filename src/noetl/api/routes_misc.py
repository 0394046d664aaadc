"""Health, metrics, context rendering and credentials."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from noetl.api.deps import RETRY_AFTER, engine, parse_id, secrets_refusal, state
from noetl.api.schemas import CredentialIn, RenderRequest
from noetl.errors import NotFound

router = APIRouter()


@router.get("/health", tags=["misc"], summary="Liveness (no token needed)")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", tags=["misc"],
            summary="Readiness: 200 when the database answers, else 503 (no token needed)")
def ready(request: Request) -> JSONResponse:
    st = state(request)
    try:
        st.store.schema_version()
    except Exception as exc:
        if not st.store.unavailable(exc):
            raise
        return JSONResponse({"status": "unavailable", "detail": "the database is unavailable"},
                            status_code=503, headers={"Retry-After": str(RETRY_AFTER)})
    return JSONResponse({"status": "ready"})


@router.get("/api/health", tags=["misc"], summary="Liveness, under /api")
def api_health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/api/schema", tags=["misc"], summary="The playbook DSL as JSON Schema")
def playbook_schema() -> dict[str, Any]:
    from noetl.dsl.schema import playbook_schema as build

    return build()


@router.get("/metrics", tags=["misc"], summary="Prometheus metrics")
def metrics(request: Request) -> Response:
    st = state(request)
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(st.metrics.render(st.store), media_type=CONTENT_TYPE_LATEST)


@router.post("/api/context/render", tags=["context"],
             summary="Render a template against an execution's workload and step results")
def render_context(body: RenderRequest, request: Request) -> JSONResponse:
    """Body `{execution_id, template (any JSON), extra_context?}` → `{status:"ok", rendered,
    context_keys}`. The context holds the workload (`workload`/`work`), `execution_id`, the
    results of the steps the template names and `extra_context`; never the environment. An
    undefined name → 422 naming it."""
    from noetl.templates import context, dumps, names_in, render

    eid = int(body.execution_id)
    names = set(names_in(body.template)) - {"workload", "work", "execution_id"}
    with engine(request).store.read() as tx:
        ex = tx.get_execution(eid)
        if ex is None:
            raise NotFound(f"execution {eid} not found")
        results = tx.step_results(eid, names) if names else {}
    ctx = context({"workload": ex.workload or {}, "execution_id": str(eid)}, results,
                  body.extra_context or {})
    rendered = render(body.template, ctx, "context/render")
    return JSONResponse({"status": "ok", "rendered": json.loads(dumps(rendered)),
                         "context_keys": sorted(ctx)})


@router.post("/api/credentials", tags=["credentials"], summary="Create or replace a credential")
def put_credential(body: CredentialIn, request: Request) -> dict[str, Any]:
    """Body `{name, type, data (object), description?, tags?}`; `data` is encrypted at rest and
    never returned here. → the credential without `data`."""
    from noetl.credentials import put_credential as put

    store = engine(request).store
    put(store, body.name, body.type, body.data, body.description, body.tag_list())
    with store.read() as tx:
        found = tx.get_credential(body.name)
    assert found is not None
    return {"status": "ok", **found[0].public()}


@router.get("/api/credentials", tags=["credentials"], summary="List credentials (never data)")
def list_credentials(request: Request, type: str | None = None) -> dict[str, Any]:
    with engine(request).store.read() as tx:
        items = tx.list_credentials(type)
    return {"items": [c.public() for c in items], "filter": {"type": type}}


@router.get("/api/credentials/{name}", tags=["credentials"], summary="One credential")
def get_credential(name: str, request: Request,
                   include_data: bool = Query(False)) -> dict[str, Any]:
    """`include_data=true` returns the decrypted `data` to the API token holder or, when no
    token is configured, only to a client on loopback, addressed by an allowed host name
    (`NOETL_ALLOWED_HOSTS`; by default the loopback names without a token) and, from a browser,
    from an allowed `Origin`; otherwise 403."""
    store = engine(request).store
    if include_data:
        refusal = secrets_refusal(request)
        if refusal:
            raise HTTPException(403, refusal)
        from noetl.credentials import get_credential as get

        return get(store, name)
    with store.read() as tx:
        found = tx.get_credential(name)
    if found is None:
        raise NotFound(f"credential '{name}' not found")
    return found[0].public()


@router.delete("/api/credentials/{name}", tags=["credentials"], summary="Delete a credential")
def delete_credential(name: str, request: Request) -> dict[str, Any]:
    with engine(request).store.transaction() as tx:
        deleted = tx.delete_credential(name)
    if not deleted:
        raise NotFound(f"credential '{name}' not found")
    return {"status": "ok", "name": name}


__all__ = ["parse_id", "router"]
