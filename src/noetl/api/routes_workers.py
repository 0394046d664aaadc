"""The worker registry: workers register and heartbeat here; the UI's Workers page and
``noetl_workers`` read it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from noetl.api.deps import engine
from noetl.api.schemas import _Body
from noetl.errors import NotFound

router = APIRouter(prefix="/api/workers", tags=["workers"])


class WorkerBeat(_Body):
    worker_id: str = Field(..., min_length=1, max_length=256)
    session: str = Field(..., min_length=1, max_length=128,
                         description="Random per process: a new one restarts the row.")
    mode: str = Field("remote", max_length=16, pattern=r"^[a-z]+$")
    hostname: str | None = Field(None, max_length=256)
    pid: int | None = Field(None, ge=0, le=2**31)
    concurrency: int = Field(0, ge=0, le=100000)
    running: int = Field(0, ge=0, le=100000)
    jobs_done: int = Field(0, ge=0, le=2**62)
    lease_seconds: float = Field(..., gt=0, le=86400,
                                 description="Its heartbeats come every third of this; "
                                             "silent for longer, it is no longer alive.")
    meta: dict[str, Any] | None = None


class WorkerStop(_Body):
    forget: bool = False


@router.get("", summary="Registered workers, alive or not")
def list_workers(request: Request) -> dict[str, Any]:
    """→ `{items:[{worker_id, mode ("remote" | "direct" | "server" | "local"), state ("alive" | "lost" |
    "stopped"), hostname, pid, concurrency, running (threads busy), jobs_done,
    lease_seconds, started_at, last_seen, seen_ago, stopped_at, meta, jobs:[{job_id,
    execution_id, step, index, attempt, lease_until}]}], counts:{alive, lost, stopped},
    now}`. A worker is alive while its last heartbeat is younger than its lease time."""
    from noetl.engine.workers import workers_view

    with engine(request).store.read() as tx:
        return {"status": "ok", **workers_view(tx)}


@router.post("/heartbeat", summary="Register a worker, or say it is alive")
def heartbeat(body: WorkerBeat, request: Request) -> dict[str, Any]:
    """Body `{worker_id, session, mode, hostname, pid, concurrency, running, jobs_done,
    lease_seconds, meta}` (an upsert: the first one registers the worker)."""
    from noetl.engine.workers import beat

    beat(engine(request).store, body.model_dump())
    return {"status": "ok", "worker_id": body.worker_id}


@router.post("/{worker_id:path}/stop", summary="A worker stopped cleanly")
def stop(worker_id: str, body: WorkerStop, request: Request) -> dict[str, Any]:
    """Marks it `stopped` (`forget: true` deletes its row). 404 for an unknown worker."""
    from noetl.engine.workers import stopped

    if not stopped(engine(request).store, worker_id, body.forget):
        raise NotFound(f"worker {worker_id!r} not found")
    return {"status": "ok", "worker_id": worker_id}
