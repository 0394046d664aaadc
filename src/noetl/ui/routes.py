"""JSON routes the UI needs beyond the API: the step graph of one execution."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from noetl.errors import NotFound

GRAPH_PATH = "/api/executions/{execution_id}/graph"
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


@router.get(GRAPH_PATH)
def execution_graph(execution_id: str, request: Request) -> dict[str, Any]:
    from noetl.engine.status import graph

    try:
        eid = int(execution_id)
    except ValueError:
        raise HTTPException(status_code=404, detail=f"execution {execution_id} not found") from None
    store = store_of(request)
    try:
        with store.read() as tx:
            return graph(tx, eid)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
