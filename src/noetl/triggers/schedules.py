"""One fire of a schedule, exactly once across servers.

:func:`fire_next` claims the enabled schedule due longest ago (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL: a row another server holds is skipped), decides what its nominal time means (run,
skipped for overlap, missed), starts the execution with :meth:`Engine.start_in`, records the
fire in ``schedule_run`` and advances ``next_run_at``, all in one transaction. A server that dies
mid-way rolls everything back, and another server claims the same fire. ``schedule_run``'s key
(schedule, nominal time) refuses a second row for one nominal time whatever happens.

Missed fires: a nominal time more than ``grace`` seconds in the past when it is claimed (every
server was down, or the schedule's row could not be reached) is missed. ``catchup: skip``
records the missed run and moves on; ``catchup: one`` starts one execution for the latest
missed time and records the others as missed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from noetl.domain.records import now
from noetl.dsl.cron import Timing
from noetl.errors import NoetlError

if TYPE_CHECKING:
    from collections.abc import Callable

    from noetl.engine.core import Engine
    from noetl.store.base import Tx
    from noetl.store.trigger_rows import ScheduleRow

log = logging.getLogger("noetl.triggers.schedules")
MISSED_CAP = 10_000  # cron fires counted one by one at most (intervals are counted exactly)


@dataclass
class FirePlan:
    """What one claim of a schedule does: record a run of missed times, start (or skip) one
    nominal time, and the next fire time."""

    next_run_at: float
    run_at: float | None = None  # the nominal time to start
    outcome: str = "started"  # started | caught_up
    missed: int = 0
    missed_first: float | None = None
    missed_last: float | None = None
    capped: bool = False


def plan_fire(timing: Timing, due: float, t: float, grace: float, catchup: str) -> FirePlan:
    """Pure: the schedule's ``next_run_at`` is ``due`` and the time is ``t``."""
    late = t - grace
    if due >= late:
        return FirePlan(next_run_at=timing.next_after(due), run_at=due)
    capped = False
    if timing.interval is not None:  # counted exactly: fires due, due + iv, ... before `late`
        iv = timing.interval
        n = max(1, math.ceil((late - due) / iv - 1e-9))
        last, nxt = due + (n - 1) * iv, due + n * iv
        before = last - iv if n > 1 else None
    else:
        n, before, last, nxt = 1, None, due, timing.next_after(due)
        while nxt < late:
            if n >= MISSED_CAP:
                capped, nxt = True, timing.next_after(late)
                break
            n, before, last, nxt = n + 1, last, nxt, timing.next_after(nxt)
    if catchup == "one":  # the latest missed time runs; those before it are missed
        return FirePlan(next_run_at=nxt, run_at=last, outcome="caught_up", missed=n - 1,
                        missed_first=due if n > 1 else None, missed_last=before, capped=capped)
    return FirePlan(next_run_at=nxt, missed=n, missed_first=due, missed_last=last,
                    capped=capped)


@dataclass
class Fired:
    schedule_id: int
    nominal_at: float | None
    outcome: str  # started | caught_up | skipped | missed | error
    execution_id: int | None = None
    lag: float | None = None
    missed: int = 0
    error: str | None = None
    after: list[Callable[[], None]] = field(default_factory=list)


class _StartFailed(Exception):
    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


def _running(tx: Tx, execution_id: int | None) -> bool:
    if execution_id is None:
        return False
    ex = tx.get_execution(execution_id)
    return ex is not None and not ex.terminal


def _fire(engine: Engine, tx: Tx, row: ScheduleRow, t: float, grace: float,
          failed: Exception | None) -> Fired:
    timing = Timing(cron=row.cron, interval=row.interval, timezone=row.timezone)
    due = float(row.next_run_at if row.next_run_at is not None else t)
    plan = plan_fire(timing, due, t, grace, row.catchup)
    fired = Fired(row.schedule_id, plan.run_at, plan.outcome, missed=plan.missed)
    if plan.missed and plan.missed_first is not None:
        first = plan.missed_first
        tx.add_schedule_run(row.schedule_id, first, t, "missed", detail={
            "count": plan.missed, "last": plan.missed_last, "capped": plan.capped or None,
            "grace": grace})
        row.last_status = "missed"
    if plan.run_at is not None:
        nominal = plan.run_at
        trigger = {"kind": "schedule", "schedule_id": str(row.schedule_id),
                   "nominal_at": nominal, "outcome": plan.outcome}
        if failed is not None:
            fired.outcome, fired.error = "error", str(failed)
            tx.add_schedule_run(row.schedule_id, nominal, t, "error",
                                detail={"error": str(failed), "type": type(failed).__name__})
        elif row.overlap == "skip" and _running(tx, row.last_execution_id):
            fired.outcome = "skipped"
            tx.add_schedule_run(row.schedule_id, nominal, t, "skipped", detail={
                "reason": "overlap", "running": str(row.last_execution_id)})
        else:
            previous = row.last_execution_id
            if row.overlap == "cancel_previous" and _running(tx, previous):
                fired.after.append(lambda: _cancel(engine, previous))
            try:
                ex, done = engine.start_in(tx, path=row.path, version=row.version,
                                           args=row.args, trigger=trigger)
                tx.settle()  # its writes answered here: their error is the start's
            except Exception as exc:  # no playbook, or it cannot start: recorded, next fire
                retryable = getattr(engine.store, "retryable", None)
                if retryable is not None and retryable(exc):
                    raise
                raise _StartFailed(exc) from exc
            fired.execution_id = ex.execution_id
            fired.after.append(done)
            fired.lag = ex.created_at - nominal
            row.last_execution_id = ex.execution_id
            tx.add_schedule_run(row.schedule_id, nominal, ex.created_at, plan.outcome,
                                ex.execution_id, {"missed": plan.missed} if plan.missed else None)
        row.last_status = fired.outcome
    elif plan.missed:
        fired.outcome = "missed"
    row.next_run_at = plan.next_run_at
    row.last_run_at = t
    tx.update_schedule(row)
    return fired


def _cancel(engine: Engine, execution_id: int | None) -> None:
    if execution_id is None:
        return
    try:
        engine.cancel(execution_id)
    except NoetlError as exc:
        log.warning("overlap cancel_previous: cannot cancel %s: %s", execution_id, exc)


def fire_next(engine: Engine, t: float | None = None, grace: float | None = None
              ) -> Fired | None:
    """Claim and handle the schedule due longest ago; None when none is due (or every due one
    is being handled by another server). ``grace`` default: NOETL_SCHEDULE_GRACE (settings)."""
    at = now() if t is None else t
    if grace is None:
        grace = engine.settings.schedule_grace
    failed: dict[tuple[int, float | None], Exception] = {}
    claimed: list[tuple[int, float | None]] = []

    def go(tx: Tx) -> Fired | None:
        row = tx.claim_due_schedule(at)
        if row is None:
            return None
        key = (row.schedule_id, row.next_run_at)
        claimed.append(key)
        return _fire(engine, tx, row, at, grace, failed.get(key))

    try:
        fired = engine._tx(go)  # the engine's retry of serialisation failures and deadlocks
    except _StartFailed as sf:
        # rolled back: claim again and record the failure alone, if the row claimed is the same
        # fire (another server may have handled it meanwhile; then this claims what is due)
        failed[claimed[-1]] = sf.error
        fired = engine._tx(go)
    if fired is None:
        return None
    for fn in fired.after:
        fn()
    if fired.error:
        log.warning("schedule %s: the execution for %s could not start: %s",
                    fired.schedule_id, fired.nominal_at, fired.error)
    return fired


def fire_due(engine: Engine, grace: float | None = None, limit: int = 1000) -> list[Fired]:
    """Every fire due now, one transaction each."""
    out: list[Fired] = []
    while len(out) < limit:
        f = fire_next(engine, grace=grace)
        if f is None:
            break
        out.append(f)
    return out
