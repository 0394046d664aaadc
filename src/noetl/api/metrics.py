"""Prometheus metrics, one registry per app (so several apps in one process do not clash).

Gauges (executions by status, queue depth by status, workers by state) are read from the store at scrape time,
so every server on a shared database reports the same values. Counters and the step latency
histogram count what this server process saw (sum them across servers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from noetl.domain.lifecycle import ExecutionStatus, JobStatus
from noetl.domain.wire import Outcome

if TYPE_CHECKING:
    from noetl.store.base import Store

LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.executions = Gauge("noetl_executions", "Executions by status.", ["status"],
                                registry=r)
        self.queue = Gauge("noetl_queue_depth", "Queue rows by status.", ["status"], registry=r)
        self.step_seconds = Histogram("noetl_step_duration_seconds",
                                      "Job run time reported by workers.", ["outcome"],
                                      buckets=BUCKETS, registry=r)
        self.lease_expiries = Counter("noetl_lease_expiries",
                                      "Jobs re-leased because a worker's lease expired.",
                                      registry=r)
        self.retries = Counter("noetl_retries", "Jobs leased again for a retry attempt.",
                               registry=r)
        self.reports = Counter("noetl_reports", "Job outcomes reported by workers.", ["result"],
                               registry=r)
        self.leases = Counter("noetl_leased_jobs", "Jobs handed to workers.", registry=r)
        self.workers = Gauge("noetl_workers", "Registered workers by state (alive: heartbeat "
                             "younger than its lease time; lost: silent; stopped: shut down).",
                             ["state"], registry=r)
        self.schedule_lag = Histogram("noetl_schedule_lag_seconds",
                                      "Start of a scheduled execution minus its nominal time.",
                                      buckets=LAG_BUCKETS, registry=r)
        self.schedule_fires = Counter("noetl_schedule_fires",
                                      "Schedule fire times handled by this server, by outcome "
                                      "(started, caught_up, skipped, missed, error).",
                                      ["outcome"], registry=r)
        self.schedule_missed = Counter("noetl_schedule_missed_fires",
                                       "Nominal fire times missed (every server down longer "
                                       "than the grace period).", registry=r)
        self.notifications = Counter("noetl_notification_attempts",
                                     "Notification delivery attempts, by result.", ["result"],
                                     registry=r)
        self.notification_failures = Counter("noetl_notification_failures",
                                             "Notification attempts that failed (retried or "
                                             "given up).", registry=r)
        self.notifications_given_up = Counter("noetl_notifications_given_up",
                                              "Notifications that failed their last attempt.",
                                              registry=r)

    def schedule_fired(self, outcome: str, lag: float | None, missed: int) -> None:
        self.schedule_fires.labels(outcome=outcome).inc()
        if missed:
            self.schedule_missed.inc(missed)
        if lag is not None and outcome == "started":
            self.schedule_lag.observe(max(0.0, lag))

    def notification_attempt(self, ok: bool, final: bool) -> None:
        self.notifications.labels(result="ok" if ok else "error").inc()
        if not ok:
            self.notification_failures.inc()
            if final:
                self.notifications_given_up.inc()

    def observe_report(self, outcome: Outcome, result: str) -> None:
        self.reports.labels(result=result).inc()
        d = outcome.get("duration")
        if result == "ok" and isinstance(d, int | float) and d >= 0:
            self.step_seconds.labels(outcome=str(outcome.get("status") or "ok")).observe(d)

    def render(self, store: Store) -> bytes:
        from noetl.engine.workers import workers_view

        with store.read() as tx:
            counts = tx.count_executions_by_status()
            depth = {str(s): tx.queue_size(s) for s in JobStatus}
            workers = workers_view(tx, with_jobs=False)["counts"]

        for st in ExecutionStatus:
            self.executions.labels(status=str(st)).set(counts.get(str(st), 0))
        for qs, n in depth.items():
            self.queue.labels(status=qs).set(n)
        for ws, n in workers.items():
            self.workers.labels(state=ws).set(n)
        return generate_latest(self.registry)
