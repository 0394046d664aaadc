"""The worker registry: workers register and heartbeat (``worker`` table); who is alive.

A worker is **alive** while its last heartbeat is younger than its lease time (a pool beats
every third of it, as it extends its jobs' leases), **lost** when it stopped beating without
saying goodbye (killed, host gone), **stopped** when it shut down cleanly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from noetl.domain.records import now

if TYPE_CHECKING:
    from noetl.store.base import Store, Tx

ALIVE, LOST, STOPPED = "alive", "lost", "stopped"
STATES = (ALIVE, LOST, STOPPED)
LOCAL = "local"  # the mode of an embedded run's pool (noetl run): it leases only its own jobs
PRUNE_AFTER = 24 * 3600.0  # rows of workers not heard from for a day are forgotten


def state_of(w: dict[str, Any], t: float) -> str:
    if w.get("status") == "stopped":
        return STOPPED
    return ALIVE if t - float(w["last_seen"]) <= float(w["lease_seconds"]) else LOST


def beat(store: Store, info: dict[str, Any]) -> None:
    """Register a worker or record its heartbeat (``info``: see :mod:`noetl.store.workers`)."""
    if not info.get("worker_id") or not info.get("session"):
        raise ValueError("a worker heartbeat needs worker_id and session")
    with store.transaction() as tx:
        tx.worker_beat(info, now())


def stopped(store: Store, worker_id: str, forget: bool = False) -> bool:
    with store.transaction() as tx:
        return tx.worker_stopped(worker_id, now(), forget)


def prune(store: Store, older_than: float = PRUNE_AFTER) -> int:
    with store.transaction() as tx:
        return tx.prune_workers(now() - older_than)


def workers_view(tx: Tx, with_jobs: bool = True) -> dict[str, Any]:
    """Every registered worker with its ``state`` and ``seen_ago`` (and the jobs it holds),
    plus ``counts`` per state. What ``GET /api/workers``, the UI and the gauge show."""
    t = now()
    rows = tx.list_workers()
    held: dict[str, list[dict[str, Any]]] = {}
    if with_jobs and rows:
        for j in tx.list_jobs(status="leased", limit=1000):
            if j.worker_id:
                held.setdefault(j.worker_id, []).append({
                    "job_id": str(j.queue_id), "execution_id": str(j.execution_id),
                    "step": j.step, "index": j.index, "attempt": j.attempts,
                    "lease_until": j.lease_until})
    counts = dict.fromkeys(STATES, 0)
    items = []
    for w in rows:
        st = state_of(w, t)
        counts[st] += 1
        items.append({**w, "state": st, "seen_ago": max(0.0, t - float(w["last_seen"])),
                      "jobs": held.get(w["worker_id"], [])})
    return {"items": items, "counts": counts, "now": t}


def liveness(tx: Tx, t: float) -> dict[str, Any]:
    """What the explainer needs: the live workers, their busy and total threads, and when
    any worker was last heard from."""
    rows = tx.list_workers()
    alive = [w for w in rows if state_of(w, t) == ALIVE]
    return {"alive": alive, "any": bool(rows),
            "last_seen": max((float(w["last_seen"]) for w in rows), default=None),
            "busy": sum(int(w["running"]) for w in alive),
            "threads": sum(int(w["concurrency"]) for w in alive),
            "by_id": {w["worker_id"]: w for w in rows}}
