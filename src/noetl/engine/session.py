"""The orchestration rules of docs/semantics.md, applied to one execution inside one
transaction (the unit of work, :class:`noetl.engine.unit.Unit`, holds the rows and buffers)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from noetl.domain.lifecycle import JOB_UNFINISHED, ExecutionStatus, JobKind, JobStatus, StepStatus, move
from noetl.domain.records import ExecutionRow, Job, error_info, exc_info, now
from noetl.dsl.model import Edge
from noetl.engine import children, events, loops
from noetl.engine.triggers import enqueue_notifications
from noetl.engine.unit import Unit
from noetl.errors import USER_KEYS, NoetlError, TemplateError
from noetl.ids import new_id
from noetl.plan import Plan, PlanStep
from noetl.templates import envelope_view, evaluate, render

PRIORITY_START = 100
PRIORITY_FIRST = 90
PRIORITY_STEP = 50
MAX_ROUTER_DEPTH = 200
MAX_RETRY_DELAY = 7 * 86400  # seconds; a longer (or NaN, infinite) delay fails the step


def _retry_delay(policy: Any, attempts: int) -> float:
    try:
        return float(policy.delay(attempts, random.uniform(0.5, 1.5)))
    except (OverflowError, ValueError, TypeError):
        return float("inf")


class Session(Unit):
    def open(self, ex: ExecutionRow, plan: Plan | None = None) -> Session:
        return Session(self.tx, ex, plan, self.settings)

    # -- starting ------------------------------------------------------------------------
    def begin(self, inputs: dict[str, Any] | None = None,
              then: Callable[[Session], None] | None = None) -> None:
        """Emit the opening events (``inputs``: more of what ``execution_started`` records:
        the caller's args, lineage, what triggered it) and activate ``start``, or instead call
        ``then`` (a resume: see :mod:`noetl.engine.resume`)."""
        self.emit(events.execution_started(self.eid, self.plan.path, self.ex.version,
                                           self.ex.workload, self.ex.parent_execution_id,
                                           inputs))
        n_edges = sum(len(s.edges) for s in self.plan.steps.values())
        self.emit(events.workflow_initialized(self.eid, len(self.plan.steps), n_edges))
        move(self.ex, ExecutionStatus.RUNNING)
        start_error = self.ex.state.pop("start_error", None)
        if start_error is not None:  # e.g. a workload template that cannot render
            self.fail_execution(start_error)
            return
        try:
            if then is not None:
                then(self)
            else:
                start = self.plan.step(self.plan.start)
                self.activate(start.name, {}, priority=PRIORITY_START if start.actionable
                              else PRIORITY_FIRST)
            self.settle()
        except NoetlError as exc:
            self.fail_execution(exc_info(exc, step=self.plan.start))

    # -- activation ------------------------------------------------------------------------
    def activate(self, name: str, args: dict[str, Any], priority: int = PRIORITY_STEP,
                 depth: int = 0) -> None:
        if self.ex.terminal:
            return
        if depth > MAX_ROUTER_DEPTH:
            raise NoetlError(f"step '{name}': routers loop without an actionable step "
                             f"(more than {MAX_ROUTER_DEPTH} hops)")
        ps = self.plan.step(name)
        r = self.row(name)
        r.runs += 1
        r.input = args or None
        r.started_at = now()
        r.ended_at = None
        self.touch(r)
        if not ps.actionable:
            # a cycle of routers would route for ever inside this transaction (a join in the
            # cycle starts each round at depth 0): the hops of one session are capped
            self.router_hops += 1
            if self.router_hops > self.max_router_hops:
                raise NoetlError(f"step '{name}': routers cycle without an action step "
                                 f"({self.router_hops - 1} router steps in one go); add an "
                                 "action step to the loop or a condition that ends it")
            move(r, StepStatus.COMPLETED)
            r.ended_at = r.started_at
            self.emit(events.step_completed(self.eid, name, "router"))
            self.route(ps, None, None, passthrough=args,
                       depth=depth + 1, priority=priority if name == self.plan.start else None)
            return
        move(r, StepStatus.QUEUED)
        r.active += 1
        self.active_inc(name)
        self.emit(events.step_started(self.eid, name, ps.type, args or None, r.runs))
        if ps.type in ("iterator", "playbook"):
            try:
                if ps.type == "iterator":
                    loops.start_loop(self, ps, r, args)
                else:
                    children.start_child(self, ps, r, args, index=None, item_ctx=None)
            except NoetlError as exc:
                self.step_failed(ps, exc_info(exc, step=name), 0)
        else:
            self.jobs.append(Job(queue_id=new_id(), execution_id=self.eid, step=name, run=r.runs,
                                 kind=JobKind.STEP, payload={"args": args}, priority=priority,
                                 max_attempts=ps.retry.max_attempts if ps.retry else 1,
                                 available_at=now()))

    # -- routing ---------------------------------------------------------------------------
    def route(self, ps: PlanStep, result: Any, envelope: Any, error: dict[str, Any] | None = None,
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
        ctx = self.ctx(ps.edge_refs, extra)
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
            self.arrive(e.target, args, depth, priority or PRIORITY_STEP)
        return fired

    def arrive(self, target: str, args: dict[str, Any], depth: int, priority: int) -> None:
        ps = self.plan.step(target)
        if ps.is_join:
            r = self.row(target)
            r.arrivals = (r.arrivals or []) + [args]
            self.touch(r)
            joins = self.ex.state["joins"]
            if target not in joins:
                joins.append(target)
            return
        self.activate(target, args, priority, depth)

    def settle(self) -> None:
        """Fire joins no running branch can still reach; detect completion."""
        try:
            self._settle()
        except NoetlError as exc:  # e.g. routers cycling with no action step
            self.fail_execution(exc_info(exc))

    def _settle(self) -> None:
        st = self.ex.state
        while st["joins"] and not self.ex.terminal:
            busy = set(st["active"]) | set(st["joins"])
            ready = [j for j in st["joins"]
                     if not (busy - {j}) & self.plan.step(j).ancestors]
            if not ready and not st["active"]:
                order = {n: i for i, n in enumerate(self.plan.order)}
                ready = [min(st["joins"], key=lambda n: order[n])]  # joins blocking each other
            if not ready:
                break
            for j in ready:
                st["joins"].remove(j)
                r = self.row(j)
                merged: dict[str, Any] = {}
                for a in r.arrivals or []:
                    merged.update(a)
                r.arrivals = None
                self.touch(r)
                self.activate(j, merged)
        if not st["active"] and not st["joins"] and not self.ex.terminal:
            self.complete_execution()

    # -- job outcomes ------------------------------------------------------------------------
    def job_succeeded(self, job: Job, outcome: dict[str, Any]) -> None:
        data = outcome.get("data")
        move(job, JobStatus.DONE)
        job.lease_until = None
        job.result = data if job.kind == JobKind.ITEM else None
        self.update_job(job)
        ps = self.plan.step(job.step)
        self.prefetch({ps.name} | {e.target for e in ps.edges})
        self.emit(events.action_completed(self.eid, job, ps.type, outcome,
                                          outcome.get("envelope", data), outcome.get("meta")))
        if job.kind == JobKind.ITEM:
            loops.item_done(self, ps, job)
            return
        if outcome.get("input") is not None:
            self.row(ps.name).input = outcome["input"]
        self.step_done(ps, job.run, data, outcome.get("envelope", data), job.attempts)

    def step_done(self, ps: PlanStep, run: int, data: Any, envelope: Any, attempts: int) -> None:
        r = self.row(ps.name)
        move(r, StepStatus.COMPLETED)
        r.result = data
        r.has_result = True
        r.error = None
        r.attempts = attempts
        r.active = max(0, r.active - 1)
        r.ended_at = now()
        self.touch(r)
        self.active_inc(ps.name, -1)
        self.emit(events.step_result(self.eid, ps.name, ps.type, data))
        self.emit(events.step_completed(self.eid, ps.name, ps.type,
                                        (r.ended_at - r.started_at) if r.started_at else None))
        if self.ex.terminal:
            return
        if data is not None:
            self.ex.state["last"] = ps.name  # the execution's result: the last step with one
        try:
            self.route(ps, data, envelope)
        except NoetlError as exc:
            self.fail_execution(exc_info(exc, step=ps.name))
            return
        self.settle()

    def job_failed(self, job: Job, outcome: dict[str, Any]) -> None:
        ps = self.plan.step(job.step)
        err = outcome.get("error") or {}
        message = str(err.get("message") or "step failed")
        self.emit(events.action_failed(self.eid, job, ps.type, outcome, outcome.get("meta")))
        policy = ps.item_retry if job.kind == JobKind.ITEM else ps.retry
        if not self.ex.terminal and policy and job.attempts < policy.max_attempts \
                and not outcome.get("final"):
            delay = _retry_delay(policy, job.attempts) \
                if self.should_retry(ps, policy, job, outcome, message) else None
            if delay is not None and not 0 <= delay <= MAX_RETRY_DELAY:  # nan, inf, 1e300
                message += (f" (not retried: the retry delay {delay!r} is not a number of "
                            f"seconds between 0 and {MAX_RETRY_DELAY})")
                err = {**err, "message": message}
                delay = None
            if delay is not None:
                move(job, JobStatus.QUEUED)
                job.available_at = now() + delay
                job.lease_until = None
                job.worker_id = None
                self.update_job(job)
                self.emit(events.action_retry(self.eid, job, ps.type, job.attempts, {
                    "attempt": job.attempts, "next_attempt": job.attempts + 1,
                    "max_attempts": policy.max_attempts, "delay": delay, "error": message}))
                return
        move(job, JobStatus.DEAD)
        job.lease_until = None
        self.update_job(job)
        if job.kind == JobKind.STEP and outcome.get("input") is not None:
            self.row(ps.name).input = outcome["input"]
        info = error_info(message, str(err.get("type") or "Error"), err.get("traceback"), job.step)
        info.update({k: err[k] for k in USER_KEYS if err.get(k)})  # field, template, …
        if job.index is not None:
            info["index"] = job.index
        self.step_failed(ps, info, job.attempts, outcome.get("envelope"))

    def record_late(self, job: Job, outcome: dict[str, Any]) -> None:
        """The outcome of a job that ran on after its execution ended: recorded, nothing more."""
        ps = self.plan.step(job.step)
        meta = {**(outcome.get("meta") or {}), "late": True, "execution_status": str(self.ex.status)}
        if outcome.get("status") == "ok":
            self.emit(events.action_completed(self.eid, job, ps.type, outcome,
                                              outcome.get("envelope"), meta))
        else:
            self.emit(events.action_failed(self.eid, job, ps.type, outcome, meta))

    def should_retry(self, ps: PlanStep, policy: Any, job: Job, outcome: dict[str, Any],
                     message: str) -> bool:
        envelope = outcome.get("envelope") or {}
        data = outcome.get("data")
        status_code = None
        if isinstance(data, dict):
            status_code = data.get("status_code")
        if status_code is None and isinstance(envelope, dict):
            d = envelope.get("data")
            status_code = d.get("status_code") if isinstance(d, dict) else None
        extra = {"result": envelope, "this": envelope, "attempt": job.attempts + 1,
                 "error": message, "status_code": status_code, "success": False, "data": data}
        ctx = self.ctx(ps.refs, extra)
        where = f"step '{ps.name}' → retry"
        try:
            if policy.stop_when and evaluate(policy.stop_when, ctx, where + " → stop_when"):
                return False
            if policy.retry_when:
                return evaluate(policy.retry_when, ctx, where + " → retry_when")
        except TemplateError as exc:
            self.emit(events.warning(self.eid, ps.name, ps.type, str(exc), "TemplateError"))
            return False
        return True

    def step_failed(self, ps: PlanStep, info: dict[str, Any], attempts: int,
                    envelope: Any = None) -> None:
        r = self.row(ps.name)
        was_active = r.active > 0
        move(r, StepStatus.FAILED)
        r.error = info
        r.attempts = attempts
        r.active = max(0, r.active - 1)
        r.ended_at = now()
        self.touch(r)
        if was_active:
            self.active_inc(ps.name, -1)
        self.emit(events.step_failed(self.eid, ps.name, ps.type, info))
        if self.ex.terminal:
            return
        if ps.type == "iterator":
            loops.abort_loop(self, ps, r)
        if ps.error_edges:
            try:
                fired = self.route(ps, envelope, envelope, error=info)
            except NoetlError as exc:
                self.fail_execution(exc_info(exc, step=ps.name))
                return
            if fired:
                self.settle()
                return
        self.fail_execution(info)

    # -- endings ---------------------------------------------------------------------------
    def final_result(self) -> Any:
        last = self.ex.state.get("last")
        if not last:
            return None
        return self.results({last}).get(last)

    def complete_execution(self) -> None:
        result = self.final_result()
        self.emit(events.workflow_completed(self.eid))
        self.emit(events.execution_completed(self.eid, self.plan.path, result))
        move(self.ex, ExecutionStatus.COMPLETED)
        self.ex.result = result
        self.ex.ended_at = now()
        self._notify_parent()

    def fail_execution(self, info: dict[str, Any]) -> None:
        if self.ex.terminal:
            return
        self._stop_work()
        self.emit(events.workflow_failed(self.eid, info["message"]))
        self.emit(events.execution_failed(self.eid, self.plan.path, info))
        move(self.ex, ExecutionStatus.FAILED)
        self.ex.error = info
        self.ex.ended_at = now()
        self._notify_parent()

    def cancel_execution(self, reason: str = "cancelled on request") -> None:
        if self.ex.terminal:
            return
        self._stop_work()
        self.emit(events.execution_cancelled(self.eid, self.plan.path, reason))
        move(self.ex, ExecutionStatus.CANCELLED)
        self.ex.error = error_info(reason, "Cancelled")
        self.ex.ended_at = now()
        self._notify_parent()

    def _stop_work(self) -> None:
        active = self.ex.state.get("active") or {}
        if active:  # steps with work in flight end CANCELLED, not RUNNING forever
            self.prefetch(set(active))
            t = now()
            for name in list(active):
                r = self.rows[name]
                if r.status not in (StepStatus.COMPLETED, StepStatus.FAILED):
                    move(r, StepStatus.CANCELLED)
                    r.ended_at = t
                r.active = 0
                self.touch(r)
            active.clear()
        for job in self.tx.cancel_jobs(self.eid):
            pending = self.job_updates.get(job.queue_id)
            if pending is not None and pending.status in (JobStatus.DONE, JobStatus.DEAD):
                continue  # the job whose outcome ends the execution keeps it (written below)
            self.job_updates.pop(job.queue_id, None)
        for j in self.jobs:  # not written yet; one that already ended keeps its end
            if j.status in JOB_UNFINISHED:
                move(j, JobStatus.CANCELLED)
        for pending in list(self.job_updates.values()):
            if pending.status in (JobStatus.QUEUED, JobStatus.WAITING, JobStatus.CHILD):
                move(pending, JobStatus.CANCELLED)
        for child in self.tx.children(self.eid):
            if child.terminal:
                continue
            full = self.tx.get_execution(child.execution_id, lock=True)
            if full is None or full.terminal:
                continue
            cs = self.open(full)
            cs.parent_session = self
            cs.cancel_execution("parent execution ended")
            self.after.append(cs)

    def _notify_parent(self) -> None:
        """The execution has just ended: its notifications to the outbox, then its parent."""
        enqueue_notifications(self)
        children.notify_parent(self)
