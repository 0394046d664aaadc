"""The orchestration rules of docs/semantics.md, applied to one execution inside one
transaction, composed into one class over the unit of work (:class:`noetl.engine.unit.Unit`,
which holds the rows and buffers). Each rule area is a module of functions taking the unit:

- :mod:`noetl.engine.flow`: activating a step, firing its edges, join arrivals, settling joins;
- :mod:`noetl.engine.outcomes`: a job's outcome, a step completed or failed;
- :mod:`noetl.engine.retry`: whether a failed attempt runs again, and when;
- :mod:`noetl.engine.endings`: an execution completed, failed or cancelled;
- :mod:`noetl.engine.loops` and :mod:`noetl.engine.children`: iterator loops, sub-playbooks.

They import one way (``session → outcomes → flow → endings``, ``flow → loops → children →
unit``); a rule reached against that direction (``step_done``, ``step_failed``, …) is a hook of
the unit, which this class provides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from noetl.domain.lifecycle import ExecutionStatus, move
from noetl.domain.records import ExecutionRow, exc_info
from noetl.engine import endings, events, flow, outcomes, retry
from noetl.engine.flow import PRIORITY_FIRST, PRIORITY_START
from noetl.engine.unit import Unit
from noetl.errors import NoetlError
from noetl.plan import Plan


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

    # -- the rules (each a function of the unit, in its module) ---------------------------
    activate = flow.activate
    route = flow.route
    arrive = flow.arrive
    settle = flow.settle

    job_succeeded = outcomes.job_succeeded
    step_done = outcomes.step_done
    job_failed = outcomes.job_failed
    record_late = outcomes.record_late
    should_retry = retry.should_retry
    step_failed = outcomes.step_failed

    final_result = endings.final_result
    complete_execution = endings.complete_execution
    fail_execution = endings.fail_execution
    cancel_execution = endings.cancel_execution
