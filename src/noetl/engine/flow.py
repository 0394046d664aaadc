"""Flow: activating a step, firing its edges, holding join arrivals, settling joins.

A step's edges fire when it ends (:func:`route`); each target is activated at once
(:func:`activate`: a router is routed on the spot, an action step gets a queue row, a loop or a
sub-playbook starts), except a join, which holds the arrival (:func:`arrive`) until no branch
still running can reach it (:func:`settle`, asking :func:`ready_joins`). Nothing left
running and no join holding arrivals: the execution is complete.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from noetl.domain.lifecycle import JobKind, StepStatus, move
from noetl.domain.records import Job, exc_info, now
from noetl.dsl.model import Edge
from noetl.engine import children, events, loops
from noetl.engine.endings import complete_execution, fail_execution
from noetl.errors import NoetlError
from noetl.ids import new_id
from noetl.plan import Plan, PlanStep
from noetl.templates import envelope_view, evaluate, render

if TYPE_CHECKING:
    from noetl.engine.unit import Unit

PRIORITY_START = 100
PRIORITY_FIRST = 90
PRIORITY_STEP = 50
MAX_ROUTER_DEPTH = 200


def activate(s: Unit, name: str, args: dict[str, Any], priority: int = PRIORITY_STEP,
             depth: int = 0) -> None:
    if s.ex.terminal:
        return
    if depth > MAX_ROUTER_DEPTH:
        raise NoetlError(f"step '{name}': routers loop without an actionable step "
                         f"(more than {MAX_ROUTER_DEPTH} hops)")
    ps = s.plan.step(name)
    r = s.row(name)
    r.runs += 1
    r.input = args or None
    r.started_at = now()
    r.ended_at = None
    s.touch(r)
    if not ps.actionable:
        # a cycle of routers would route for ever inside this transaction (a join in the
        # cycle starts each round at depth 0): the hops of one session are capped
        s.router_hops += 1
        if s.router_hops > s.max_router_hops:
            raise NoetlError(f"step '{name}': routers cycle without an action step "
                             f"({s.router_hops - 1} router steps in one go); add an "
                             "action step to the loop or a condition that ends it")
        move(r, StepStatus.COMPLETED)
        r.ended_at = r.started_at
        s.emit(events.step_completed(s.eid, name, "router"))
        route(s, ps, None, None, passthrough=args,
              depth=depth + 1, priority=priority if name == s.plan.start else None)
        return
    move(r, StepStatus.QUEUED)
    r.active += 1
    s.active_inc(name)
    s.emit(events.step_started(s.eid, name, ps.type, args or None, r.runs))
    if ps.type in ("iterator", "playbook"):
        try:
            if ps.type == "iterator":
                loops.start_loop(s, ps, r, args)
            else:
                children.start_child(s, ps, r, args, index=None, item_ctx=None)
        except NoetlError as exc:
            s.step_failed(ps, exc_info(exc, step=name), 0)
    else:
        s.jobs.append(Job(queue_id=new_id(), execution_id=s.eid, step=name, run=r.runs,
                          kind=JobKind.STEP, payload={"args": args}, priority=priority,
                          max_attempts=ps.retry.max_attempts if ps.retry else 1,
                          available_at=now()))


def route(s: Unit, ps: PlanStep, result: Any, envelope: Any, error: dict[str, Any] | None = None,
          passthrough: dict[str, Any] | None = None, depth: int = 0,
          priority: int | None = None) -> list[Edge]:
    """Fire the edges of ``ps``; return those that fired."""
    if not ps.edges:
        return []
    # `result`: the step's output (for a failure: its error envelope); `this`: the envelope,
    # where names it lacks come from the output
    extra: dict[str, Any] = {"error": error, "result": result,
                             "this": envelope_view(envelope if envelope is not None
                                                   else result)}
    ctx = s.ctx(ps.edge_refs, extra)
    where = f"step '{ps.name}'"
    if error is not None:  # failure routing: only edges whose `when` reads `error`
        fired = [e for e in (ps.edges[i] for i in ps.error_edges)
                 if evaluate(e.when or "", ctx, f"{where} → next '{e.target}' → when")]
    else:
        conditional = [e for e in ps.edges if e.when is not None]
        plain = [e for e in ps.edges if e.when is None and not e.is_else]
        if not conditional:
            fired = plain
        else:
            fired = [e for e in conditional
                     if evaluate(e.when or "", ctx, f"{where} → next '{e.target}' → when")]
            if not fired:
                fired = [e for e in ps.edges if e.is_else] + plain
    for e in fired:
        args = dict(passthrough or {})
        if e.args:
            args.update(render(e.args, ctx, f"{where} → next '{e.target}' → args"))
        arrive(s, e.target, args, depth, priority or PRIORITY_STEP)
    return fired


def arrive(s: Unit, target: str, args: dict[str, Any], depth: int, priority: int) -> None:
    ps = s.plan.step(target)
    if ps.is_join:
        r = s.row(target)
        r.arrivals = (r.arrivals or []) + [args]
        s.touch(r)
        joins = s.ex.state["joins"]
        if target not in joins:
            joins.append(target)
        return
    activate(s, target, args, priority, depth)


def ready_joins(joins: Sequence[str], active: Collection[str], plan: Plan) -> list[str]:
    """Which of the joins holding arrivals (``joins``) fire now: those none of whose ancestors
    (the steps that can reach it, :attr:`PlanStep.ancestors`) has work in flight (``active``)
    or is itself a join holding arrivals. When none can, and nothing is in flight, the joins
    block each other: the first of them in the plan's order fires."""
    busy = set(active) | set(joins)
    ready = [j for j in joins if not (busy - {j}) & plan.step(j).ancestors]
    if not ready and not active and joins:
        order = {n: i for i, n in enumerate(plan.order)}
        ready = [min(joins, key=lambda n: order[n])]
    return ready


def settle(s: Unit) -> None:
    """Fire joins no running branch can still reach; detect completion."""
    try:
        _settle(s)
    except NoetlError as exc:  # e.g. routers cycling with no action step
        fail_execution(s, exc_info(exc))


def _settle(s: Unit) -> None:
    st = s.ex.state
    while st["joins"] and not s.ex.terminal:
        ready = ready_joins(st["joins"], st["active"], s.plan)
        if not ready:
            break
        for j in ready:
            st["joins"].remove(j)
            r = s.row(j)
            merged: dict[str, Any] = {}
            for a in r.arrivals or []:
                merged.update(a)
            r.arrivals = None
            s.touch(r)
            activate(s, j, merged)
    if not st["active"] and not st["joins"] and not s.ex.terminal:
        complete_execution(s)
