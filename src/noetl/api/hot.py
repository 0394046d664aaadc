"""The hot routes' dispatch: pure ASGI, inside the token check. ``POST`` to the routes every
step or run goes through (the queue's lease, report, complete, fail and heartbeat; the run
of a playbook) goes straight to their endpoint functions, past FastAPI's router (which tries
the routes one by one), dependency solving and per-request telemetry: a third of the
server's time on a request that does no work, and more than half of a run's. An error goes
to the app's own exception handler for it (404, 409, 422, 503 + Retry-After, ...), as in
FastAPI; anything else, and every other request, goes on down the stack. The FastAPI routes
stay: they document these operations (and would serve them without this)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response

from noetl.api import routes_executions as executions
from noetl.api import routes_queue as queue

QUEUE = queue.router.prefix + "/"
# exact paths; the queue's per-job routes are /api/queue/<job id>/<action>
EXACT: dict[str, Callable[[Request], Awaitable[Response]]] = {
    QUEUE + "lease": queue.lease,
    QUEUE + "report": queue.report_batch,
    executions.router.prefix + "/run/playbook": executions.run_playbook,
}
PER_JOB: dict[str, Callable[[str, Request], Awaitable[Response]]] = {
    "complete": queue.complete, "fail": queue.fail, "heartbeat": queue.heartbeat,
}


class HotRoutes:
    def __init__(self, app: Any, handlers: dict[Any, Any]):
        self.app = app
        self.handlers = handlers  # the FastAPI app's exception_handlers (read per error)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        route = self._route(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await route(request)
        except Exception as exc:
            handler = next((self.handlers[c] for c in type(exc).__mro__
                            if c in self.handlers and c is not Exception), None)
            if handler is None:
                raise  # to the server-error handler, as from a FastAPI route
            response = await handler(request, exc)
        await response(scope, receive, send)

    @staticmethod
    def _route(scope: Any) -> Callable[[Request], Awaitable[Response]] | None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            return None
        path: str = scope.get("path", "")
        exact = EXACT.get(path)
        if exact is not None or not path.startswith(QUEUE):
            return exact
        job_id, _, action = path[len(QUEUE):].partition("/")
        per_job = PER_JOB.get(action)
        if per_job is None or not job_id:
            return None
        return lambda request: per_job(job_id, request)
