"""JSON routes the UI needs beyond the API: the step graph of one execution, and the
execution with its graph read together (what the execution page polls)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from noetl.errors import NotFound

GRAPH_PATH = "/api/executions/{execution_id}/graph"
SNAPSHOT_PATH = "/api/executions/{execution_id}/snapshot"
router = APIRouter()


def store_of(request: Request) -> Any:
    """The store the API opened, wherever it keeps it on ``app.state``."""
    state = request.app.state
    holder = getattr(state, "noetl", None)  # the API's ApiState(engine, store, ...)
    for obj in (getattr(holder, "store", None), getattr(state, "engine", None),
                getattr(state, "store", None)):
        if obj is None:
            continue
        store = getattr(obj, "store", obj)
        if hasattr(store, "read"):
            return store
    raise HTTPException(status_code=500, detail="no store on app.state")


def _eid(execution_id: str) -> int:
    try:
        return int(execution_id)
    except ValueError:
        raise HTTPException(status_code=404, detail=f"execution {execution_id} not found") from None


@router.get(GRAPH_PATH)
def execution_graph(execution_id: str, request: Request) -> dict[str, Any]:
    from noetl.engine.status import graph

    eid = _eid(execution_id)
    try:
        with store_of(request).read() as tx:
            return graph(tx, eid)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None


@router.get(SNAPSHOT_PATH)
def execution_snapshot(execution_id: str, request: Request) -> dict[str, Any]:
    """`{execution: <GET /api/executions/{id}>, graph: <.../graph>}` from one read of the
    store, so the page never shows a finished status over a graph read before the end (the
    page polls until both say the execution has ended)."""
    from noetl.engine.status import describe, graph

    eid = _eid(execution_id)
    try:
        with store_of(request).read() as tx:
            return {"execution": describe(tx, eid), "graph": graph(tx, eid)}
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
