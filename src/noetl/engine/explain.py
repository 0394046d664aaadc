"""Why a step of a running execution is not done yet: the one explainer every surface (API,
``noetl status``, the UI) shows, through :func:`noetl.engine.status.describe`.

Read from the step's unfinished queue rows (grouped in one query), the execution's join
state and the worker registry; nothing is replayed from the event log. Each explanation is
``{reason, message, stuck, until?, worker_id?}``; ``stuck`` means the step cannot go on until
something changes outside the engine (a worker starts, a lost one is replaced). Reasons:

- ``lease_expired``: the worker that held it stopped heartbeating (re-queued, or about to be
  by a server's reaper; with only embedded runs alive nothing re-queues it, and the message
  says so: ``noetl resume <id>`` carries on an execution whose ``noetl run`` stopped);
- ``worker_lost``: leased by a worker that has stopped heartbeating, lease not yet run out;
- ``no_worker``: ready, but no live worker ("no worker has polled for 40 s");
- ``busy``: ready, every live worker's threads are busy;
- ``retry``: "waiting for retry until 12:03:05";
- ``leased``: "leased by w-2 until 12:02:11" (running);
- ``queued``: ready, a live worker has a free thread (it is about to be taken);
- ``loop``: items held back by the loop's concurrency;
- ``child``: waiting for a sub-playbook execution;
- ``join``: "waiting for join: b, c" (the branches still running that can reach it).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from noetl.domain.records import ExecutionRow, now
from noetl.engine.workers import ALIVE, LOCAL, liveness, state_of

if TYPE_CHECKING:
    from noetl.plan import Plan
    from noetl.store.base import Tx

# the most telling reason of a step with several kinds of jobs (a loop) comes first
RANK = ("lease_expired", "worker_lost", "no_worker", "busy", "retry", "leased", "queued",
        "loop", "child", "join")


def clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def _items(n: int, loop: bool) -> str:
    return (f"{n} items " if n != 1 else "1 item ") if loop else ""


def explain(tx: Tx, ex: ExecutionRow, plan: Plan, children: list[ExecutionRow] | None = None,
            t: float | None = None) -> dict[str, dict[str, Any]]:
    """``{step: explanation}`` for the steps of a running execution that wait for something;
    empty once the execution has ended."""
    if ex.terminal:
        return {}
    t = now() if t is None else t
    by_step: dict[str, dict[str, dict[str, Any]]] = {}
    for g in tx.job_summary(ex.execution_id):
        by_step.setdefault(g["step"], {})[g["status"]] = g
    live = liveness(tx, t) if by_step else None
    kids = {c.parent_job_id: c for c in children or []}
    out: dict[str, dict[str, Any]] = {}
    for step, groups in by_step.items():
        ps = plan.steps.get(step)
        loop = ps is not None and ps.type == "iterator"
        parts = [p for p in (_leased(groups.get("leased"), loop, live, t, ex.execution_id),
                             _queued(groups.get("queued"), loop, live, t, ex.execution_id),
                             _waiting(groups.get("waiting"), loop),
                             _child(groups.get("child"), kids)) if p]
        if parts:
            parts.sort(key=lambda p: RANK.index(p["reason"]))
            first = dict(parts[0])
            first["message"] = "; ".join(p["message"] for p in parts)
            first["stuck"] = any(p.get("stuck") for p in parts)
            out[step] = first
    active = set((ex.state or {}).get("active") or {})
    joins = list((ex.state or {}).get("joins") or [])
    for j in joins:
        ps = plan.steps.get(j)
        if ps is None:
            continue
        blockers = [n for n in plan.order if n != j and n in (active | set(joins))
                    and n in ps.ancestors]
        out[j] = {"reason": "join", "stuck": False, "steps": blockers,
                  "message": f"waiting for join: {', '.join(blockers)}" if blockers
                  else "join ready: about to run"}
    return out


def _embedded(live: dict[str, Any]) -> bool:
    """Whether only embedded runs (``noetl run``: each leases its own executions' jobs, and
    re-queues nothing) are alive: no server (whose reaper re-queues expired leases), no
    worker that takes any job."""
    return all(w.get("mode") == LOCAL for w in live["alive"])


def _carry_on(eid: int) -> str:
    return (f"nothing else runs it without a server: if its noetl run has stopped, "
            f"`noetl resume {eid}` carries it on")


def _who(live: dict[str, Any] | None, t: float, eid: int) -> tuple[str, str]:
    """(reason, message) for a job that is ready now."""
    assert live is not None
    if not live["alive"]:
        if live["last_seen"] is None:
            return ("no_worker", "no worker has polled yet (start one: noetl worker start; "
                    "noetl server start runs its own by default on SQLite, on PostgreSQL "
                    "with --workers)")
        last = max(live["by_id"].values(), key=lambda w: float(w["last_seen"]))
        hint = f"; {_carry_on(eid)}" if last.get("mode") == LOCAL else ""
        return ("no_worker", f"no worker has polled for {t - live['last_seen']:.0f} s (last: "
                f"{last['worker_id']}, {state_of(last, t)}){hint}")
    n = len(live["alive"])
    if live["threads"] and live["busy"] >= live["threads"]:
        return ("busy", f"all {n} live worker{'s' if n != 1 else ''} busy "
                f"({live['busy']} of {live['threads']} threads)")
    if _embedded(live):
        return "queued", f"ready for its noetl run's workers; {_carry_on(eid)}"
    return "queued", f"ready for a worker ({n} alive)"


def _leased(g: dict[str, Any] | None, loop: bool, live: dict[str, Any] | None,
            t: float, eid: int) -> dict[str, Any] | None:
    if not g:
        return None
    assert live is not None
    w, n = g["worker_id"], int(g["n"])
    who = w if w == g["worker_max"] else f"{w} … {g['worker_max']}"
    first = g["lease_until"]
    if first is not None and first < t:
        then = _carry_on(eid) if _embedded(live) else "about to be re-queued"
        return {"reason": "lease_expired", "worker_id": w, "until": first, "stuck": True,
                "message": f"{_items(n, loop)}the lease of {who} expired at {clock(first)} "
                           f"(worker stopped heartbeating); {then}"}
    until = g["lease_until_max"] if n > 1 else first
    msg = f"{_items(n, loop)}leased by {who} until {clock(until or t)}"
    row = live["by_id"].get(w)
    if row is not None and state_of(row, t) != ALIVE and w == g["worker_max"]:
        return {"reason": "worker_lost", "worker_id": w, "until": until, "stuck": True,
                "message": f"{msg}; {w} has not been heard from for "
                           f"{t - float(row['last_seen']):.0f} s"
                           + (f" (its noetl run stopped?): `noetl resume {eid}` carries it on"
                              if row.get("mode") == LOCAL and _embedded(live) else "")}
    return {"reason": "leased", "worker_id": w, "until": until, "message": msg}


def _queued(g: dict[str, Any] | None, loop: bool, live: dict[str, Any] | None,
            t: float, eid: int) -> dict[str, Any] | None:
    if not g:
        return None
    n = int(g["n"])
    if g["available_at"] > t:
        return {"reason": "retry", "until": g["available_at"],
                "message": f"{_items(n, loop)}waiting for retry until {clock(g['available_at'])}"}
    reason, who = _who(live, t, eid)
    stuck = reason == "no_worker"
    if g["lease_until"] is not None and g["worker_id"]:  # re-queued by the reaper
        return {"reason": "lease_expired", "worker_id": g["worker_id"], "until": g["lease_until"],
                "stuck": stuck,
                "message": f"{_items(n, loop)}the lease of {g['worker_id']} expired at "
                           f"{clock(g['lease_until'])} (worker stopped heartbeating); "
                           f"re-queued: {who}"}
    return {"reason": reason, "stuck": stuck,
            "message": f"{_items(n, loop)}queued: {who}" if loop else who}


def _waiting(g: dict[str, Any] | None, loop: bool) -> dict[str, Any] | None:
    if not g:
        return None
    n = int(g["n"])
    return {"reason": "loop", "message": f"{_items(n, True)}waiting for a free slot "
                                         "(the loop's concurrency)"}


def _child(g: dict[str, Any] | None, kids: dict[int | None, ExecutionRow]
           ) -> dict[str, Any] | None:
    if not g:
        return None
    c = kids.get(g["first_job"])
    if c is None:
        return {"reason": "child", "message": "waiting for its sub-playbook execution"}
    return {"reason": "child", "execution_id": str(c.execution_id),
            "message": f"waiting for sub-playbook execution {c.execution_id} ({c.status})"}
