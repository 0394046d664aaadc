"""The worker pool's backend over HTTP: a remote worker leases, reports, heartbeats and
releases through the API server and never touches the database.

Leasing long-polls (``wait_seconds``), so ``wait_for_work`` is a no-op. Reports carry the
pool's ``report_id``; the server records a repeated report once, so the pool may retry a post
whose answer was lost. A 409 from the server is raised as :class:`noetl.errors.LeaseLost`."""

from __future__ import annotations

from typing import Any, cast

from noetl.client import ApiError, Client
from noetl.domain.wire import (
    BatchReport,
    HeartbeatRequest,
    HeartbeatResult,
    LeaseRequest,
    LeaseResult,
    LogRecord,
    Outcome,
    ReportAnswer,
    ReportBatchAnswer,
    ReportBatchRequest,
    ReportRequest,
    ReportResult,
    Work,
)
from noetl.errors import Conflict, LeaseLost, NotFound
from noetl.settings import Settings
from noetl.tools.base import Services
from noetl.worker.http_wire import LeanHttp


class HttpBackend:
    worker_mode = "remote"  # how its pool shows in the worker registry

    def __init__(self, server_url: str | None = None, token: str | None = None,
                 lease_seconds: float | None = None, wait_seconds: float = 5.0,
                 max_connections: int = 32, settings: Settings | None = None):
        """``settings``: the worker process's (default: read from the environment now). The
        hot routes (lease, report, heartbeat) go over :class:`LeanHttp` (a keep-alive
        connection per thread); the rest over the API client."""
        self.settings = settings or Settings.from_env()
        self.client = Client(server_url, token, max_connections=max_connections,
                             settings=self.settings)
        token = token if token is not None else self.settings.api_token
        self.wire = LeanHttp(self.client.server_url, token)
        self.lease_seconds = lease_seconds or self.settings.lease_seconds
        self.wait_seconds = wait_seconds
        self.batch_route = True  # False once a server answers that it has no batch route

    def close(self) -> None:
        self.wire.close()
        self.client.close()

    def __enter__(self) -> HttpBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lease(self, worker_id: str, limit: int = 1) -> list[Work]:
        body: LeaseRequest = {"worker_id": worker_id, "limit": limit,
                              "lease_seconds": self.lease_seconds,
                              "wait_seconds": self.wait_seconds}
        out = cast(LeaseResult, self.wire.post("/api/queue/lease", body,
                                               timeout=self.wait_seconds + 30))
        return list(out.get("jobs") or [])

    def report(self, job_id: int, worker_id: str | None, outcome: Outcome) -> str:
        return self.report_and_lease(job_id, worker_id, outcome, 0)[0]

    def report_and_lease(self, job_id: int, worker_id: str | None, outcome: Outcome,
                         limit: int = 1) -> tuple[str, list[Work]]:
        """Report, and lease up to ``limit`` next jobs in the same request."""
        route = "complete" if outcome.get("status") == "ok" else "fail"
        body: ReportRequest = {**outcome, "worker_id": worker_id, "lease_next": limit,
                               "lease_seconds": self.lease_seconds}
        try:
            out = cast(ReportAnswer, self.wire.post(f"/api/queue/{job_id}/{route}", body,
                                                    repeatable=True))
        except Conflict as exc:
            raise LeaseLost(str(exc)) from exc
        except NotFound as exc:  # the job is gone: retrying cannot record it
            raise LeaseLost(f"job {job_id} is unknown to the server: {exc}") from exc
        except ApiError as exc:
            if exc.status_code in (400, 413, 422):  # refused as such: retrying cannot help
                raise LeaseLost(f"the server refused the report of job {job_id}: {exc}") from exc
            raise  # unreachable or 5xx: the pool retries with the same report_id
        return str(out.get("status")), list(out.get("jobs") or [])

    def report_batch(self, reports: list[tuple[int, Outcome]], worker_id: str | None,
                     limit: int = 0) -> tuple[list[ReportResult], list[Work]]:
        """Several outcomes in one request (and one transaction on the server), and up to
        ``limit`` next jobs. A batch the server refuses as a whole (400/413/422: one malformed
        report) is sent again report by report, so only the bad one is lost; a server without
        the batch route (404/405, an older version) gets single reports from then on. Transport
        errors and 5xx are raised (the pool retries with the same report ids)."""
        if not self.batch_route:
            return self._one_by_one(reports, worker_id, limit)
        items: list[BatchReport] = [{**o, "job_id": j} for j, o in reports]
        body: ReportBatchRequest = {"worker_id": worker_id, "lease_next": limit,
                                    "lease_seconds": self.lease_seconds, "reports": items}
        try:
            out = cast(ReportBatchAnswer, self.wire.post("/api/queue/report", body,
                                                         repeatable=True))
        except NotFound:
            self.batch_route = False
            return self._one_by_one(reports, worker_id, limit)
        except ApiError as exc:
            if exc.status_code == 405:
                self.batch_route = False
            elif exc.status_code not in (400, 413, 422):
                raise
            return self._one_by_one(reports, worker_id, limit)  # refused: find which one
        return list(out.get("results") or []), list(out.get("jobs") or [])

    def _one_by_one(self, reports: list[tuple[int, Outcome]], worker_id: str | None,
                    limit: int) -> tuple[list[ReportResult], list[Work]]:
        results: list[ReportResult] = []
        jobs: list[Work] = []
        for job_id, outcome in reports:
            try:
                status, got = self.report_and_lease(job_id, worker_id, outcome,
                                                    max(0, limit - len(jobs)))
                results.append({"status": status})
                jobs.extend(got)
            except LeaseLost as exc:
                results.append({"status": "lease_lost", "error": str(exc)})
            except Exception as exc:  # this one is retried by its thread
                results.append({"status": "error", "error": f"{type(exc).__name__}: {exc}"})
        return results, jobs

    def heartbeat(self, job_id: int, worker_id: str,
                  logs: list[LogRecord] | None = None) -> HeartbeatResult:
        body: HeartbeatRequest = {"worker_id": worker_id, "extend_seconds": self.lease_seconds}
        if logs:
            body["logs"] = logs
        try:
            # repeatable: a lease extended twice is extended; logs carry no id, so a heartbeat
            # with logs is sent once (its records go back for the next one if it fails)
            return cast(HeartbeatResult, self.wire.post(f"/api/queue/{job_id}/heartbeat", body,
                                                        repeatable=not logs))
        except Conflict as exc:
            raise LeaseLost(str(exc)) from exc

    def release(self, job_id: int, worker_id: str) -> None:
        try:
            self.client.request("POST", f"/api/queue/{job_id}/release", {"worker_id": worker_id})
        except Conflict as exc:
            raise LeaseLost(str(exc)) from exc

    def worker_beat(self, info: dict[str, Any]) -> None:
        """Register this worker, or say it is alive (``POST /api/workers/heartbeat``)."""
        self.client.request("POST", "/api/workers/heartbeat", info)

    def worker_stopped(self, worker_id: str, forget: bool = False) -> None:
        from urllib.parse import quote

        self.client.request("POST", f"/api/workers/{quote(worker_id, safe='')}/stop",
                            {"forget": forget})

    def wait_for_work(self, seen: int, timeout: float) -> None:
        """Nothing to do: the lease call already waited on the server."""

    def work_version(self) -> int:
        return 0

    def credentials(self, name: str) -> dict[str, Any]:
        return self.client.credential(name, include_data=True)

    def services(self, data_dir: str | None = None) -> Services:
        """Tool services for this worker: credentials come from the server by name."""
        return Services(credentials=self.credentials, data_dir=data_dir or self.settings.data_dir,
                        settings=self.settings)
