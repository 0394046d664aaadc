"""Prometheus metrics, one registry per app (so several apps in one process do not clash).

Gauges (executions by status, queue depth by status) are read from the store at scrape time,
so every server on a shared database reports the same values. Counters and the step latency
histogram count what this server process saw (sum them across servers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from noetl.domain.lifecycle import ExecutionStatus, JobStatus

if TYPE_CHECKING:
    from noetl.store.base import Store

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

    def observe_report(self, outcome: dict[str, Any], result: str) -> None:
        self.reports.labels(result=result).inc()
        d = outcome.get("duration")
        if result == "ok" and isinstance(d, int | float) and d >= 0:
            self.step_seconds.labels(outcome=str(outcome.get("status") or "ok")).observe(d)

    def render(self, store: Store) -> bytes:
        with store.read() as tx:
            counts = tx.count_executions_by_status()
            depth = {str(s): tx.queue_size(s) for s in JobStatus}

        for st in ExecutionStatus:
            self.executions.labels(status=str(st)).set(counts.get(str(st), 0))
        for qs, n in depth.items():
            self.queue.labels(status=qs).set(n)
        return generate_latest(self.registry)
