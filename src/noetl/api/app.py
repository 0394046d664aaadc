"""The FastAPI application factory: the lifespan opens the store and the engine; handlers map
engine errors to 4xx responses; a token guards every API route when one is configured."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from noetl.api.deps import RETRY_AFTER, ApiState, allowed_hosts, host_refusal, protected, token_ok
from noetl.api.metrics import Metrics
from noetl.credentials import check_credentials_key
from noetl.errors import (
    Conflict,
    LeaseLost,
    NoetlError,
    NotFound,
    PlaybookError,
    TemplateError,
)
from noetl.settings import Settings
from noetl.templates import configure

log = logging.getLogger("noetl.api")


def store_error_classes() -> tuple[list[type[Exception]], list[type[Exception]]]:
    """(text the store cannot hold: a NUL, a lone surrogate; the database is unreachable or
    its connection was lost) for the drivers installed."""
    import sqlite3

    text: list[type[Exception]] = [UnicodeError]
    down: list[type[Exception]] = [sqlite3.OperationalError]
    try:
        import psycopg
        import psycopg_pool
    except ImportError:  # SQLite only
        return text, down
    return [*text, psycopg.DataError], [*down, psycopg.OperationalError, psycopg.InterfaceError,
                                        psycopg_pool.PoolTimeout]


def _start_triggers(engine: Any, metrics: Metrics) -> Any:
    """The scheduler and the notification sender of this process (NOETL_SCHEDULER=0 /
    NOETL_NOTIFIER=0 turn them off); NOETL_NOTIFY is checked first (refused when invalid)."""
    from noetl.engine.triggers import server_targets
    from noetl.triggers.service import Triggers

    server_targets(engine.settings.notify)
    return Triggers(engine, metrics).start()


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": message, **extra}, status_code=status)


def _answer(status: int, error: str | None = None) -> Any:
    """A handler answering ``status`` with the exception's message (and ``error``)."""
    async def handler(_: Request, exc: Exception) -> JSONResponse:
        return _error(status, str(exc), **({"error": error} if error else {}))
    return handler


async def _playbook_error(_: Request, exc: Exception) -> JSONResponse:
    problems = [{"where": p.where, "message": p.message, "line": p.line,
                 "severity": p.severity} for p in getattr(exc, "problems", [])]
    return _error(422, str(exc), error="invalid_playbook", problems=problems)


async def _overflow(_: Request, exc: Exception) -> JSONResponse:
    return _error(400, f"a number in the request is out of range: {exc}")


async def _text(_: Request, exc: Exception) -> JSONResponse:
    return _error(400, "the request holds text that cannot be stored (a NUL character "
                       "or a lone surrogate)", error="invalid_text")


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    response = _error(503, "the database is unavailable; retry later", error="unavailable")
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


async def _any(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _error(500, f"internal error: {type(exc).__name__}: {exc}")


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    errors = []
    for e in exc.errors() if isinstance(exc, RequestValidationError) else ():
        loc = ".".join(str(x) for x in e.get("loc", ()))
        errors.append({"loc": loc, "message": e.get("msg"), "type": e.get("type")})
    text = "; ".join(f"{e['loc']}: {e['message']}" for e in errors) or "invalid request"
    return _error(422, text, errors=errors)


def _install_handlers(app: FastAPI) -> None:
    from noetl.credentials import CredentialKeyError
    from noetl.triggers.hooks import Unauthorized

    answers: tuple[tuple[type[Exception], int, str | None], ...] = (
        (NotFound, 404, None), (Unauthorized, 401, "unauthorized"),
        (LeaseLost, 409, "lease_lost"), (Conflict, 409, "conflict"),
        (TemplateError, 422, "template"), (CredentialKeyError, 503, "credential_key"),
        (NoetlError, 400, None), (ValueError, 400, None))
    for cls, status, error in answers:
        app.add_exception_handler(cls, _answer(status, error))
    app.add_exception_handler(PlaybookError, _playbook_error)
    app.add_exception_handler(OverflowError, _overflow)
    # Handled here (not by the catch-all below, which Starlette re-raises after answering:
    # a logged stack trace and a dropped keep-alive connection).
    text_errors, db_errors = store_error_classes()
    for cls in text_errors:
        app.add_exception_handler(cls, _text)
    for cls in db_errors:
        app.add_exception_handler(cls, _unavailable)
    app.add_exception_handler(Exception, _any)
    app.add_exception_handler(RequestValidationError, _invalid_request)


async def _open_store(url: str | None, settings: Settings, patient: bool) -> Any:
    """The store at ``url``, its credentials key checked; while the database cannot be
    reached (the backend's :meth:`~noetl.store.base.Store.unavailable`) and ``patient``,
    retried (every 0.5 s doubling to 5 s, each wait logged)."""
    import anyio

    from noetl.store import open_store
    from noetl.store.factory import backend_for

    backend = backend_for(url or settings.default_store_url())
    delay = 0.5
    while True:
        store = None
        try:
            store = open_store(url, settings)
            check_credentials_key(store)
            return store
        except Exception as exc:
            if store is not None:
                store.close()
            if not (patient and backend.unavailable(exc)):
                raise
            log.warning("database unavailable at startup (%s); retrying in %.1f s",
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__, delay)
        await anyio.sleep(delay)
        delay = min(delay * 2, 5.0)


class HostGuard:
    """Pure ASGI middleware: a protected path addressed by a name not in ``hosts`` (``Host``,
    and ``Origin`` when a browser sent one) gets 403 before it reaches a route. Without a
    token the default names are the loopback ones, so a page that rebinds its own name to
    127.0.0.1 (DNS rebinding) can neither start a playbook nor read what the API serves; a
    cross-origin page cannot send it "simple" requests either. Not installed when any name
    is allowed (``*``: a token configured and no NOETL_ALLOWED_HOSTS)."""

    def __init__(self, app: Any, hosts: frozenset[str]):
        self.app = app
        self.hosts = hosts
        self.names = ", ".join(sorted(hosts))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and protected(scope["path"], scope.get("method", "GET")):
            why = host_refusal(Request(scope), self.hosts)
            if why:
                response = JSONResponse({"detail": f"{why} (NOETL_ALLOWED_HOSTS: {self.names})",
                                         "error": "host"}, status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class TokenAuth:
    """Pure ASGI middleware: protected paths need ``Authorization: Bearer <token>`` (401
    otherwise, before the request reaches a route). Pure ASGI so that long-polls still see
    the client's disconnect."""

    def __init__(self, app: Any, token: str):
        self.app = app
        self.token = token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and protected(scope["path"], scope.get("method", "GET")) and \
                not token_ok(Request(scope), self.token):
            response = JSONResponse({"detail": "missing or wrong bearer token"},
                                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(store_url: str | None = None, *, token: str | None = None,
               lease_seconds: float | None = None, workers: int = 0,
               reaper: bool = True, settings: Settings | None = None,
               wait_for_store: bool = False) -> FastAPI:
    """The API server over the store at ``store_url`` (default: NOETL_STORE_URL, then the
    embedded SQLite file). ``token`` defaults to NOETL_API_TOKEN. ``workers``: threads of a
    worker pool run inside the server (0: none; ``noetl server start`` decides the default).
    ``reaper``: re-queue the jobs of workers that stopped heartbeating (on by default).
    ``settings`` (the process's) default to the environment's, read once here.
    ``wait_for_store``: a database that cannot be reached at startup is waited for (one of
    ``--processes`` server processes, started or restarted while it is down: the store was
    checked once before they started, and failing would stop every process), else it fails."""
    settings = settings or Settings.from_env()
    api_token = token if token is not None else settings.api_token
    configure(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import anyio.to_thread

        from noetl.engine.core import Engine

        # lease long-polls hold a thread each; give the sync routes room
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        store = await _open_store(store_url, settings, wait_for_store)
        eng = Engine(store, lease_seconds, settings)
        metrics = Metrics()
        try:
            triggers = _start_triggers(eng, metrics)
        except Exception:
            store.close()
            raise
        from concurrent.futures import ThreadPoolExecutor

        # the hot routes' blocking part (api/raw.py in_thread); a long-poll holds a thread
        threads = ThreadPoolExecutor(settings.api_threads, thread_name_prefix="noetl-api")
        app.state.noetl = ApiState(engine=eng, store=store, metrics=metrics, token=api_token,
                                   triggers=triggers, threads=threads,
                                   hosts=allowed_hosts(api_token, settings.allowed_hosts))
        log.info("noetl api: store %s (%s)", _redact(store.url), store.capabilities.name)
        stop = _background(app, eng, workers, reaper)
        try:
            yield
        finally:
            stop()
            triggers.stop()
            threads.shutdown(wait=False, cancel_futures=True)
            store.close()

    from noetl import __version__

    app = FastAPI(title="NoETL API", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,  # /docs from the package: see api/docs.py
                  description="Catalog, executions, events, the work queue for remote workers, "
                              "credentials. Ids are decimal strings; times are epoch seconds. "
                              "With NOETL_API_TOKEN set, send `Authorization: Bearer <token>`.")

    from noetl.api.hot import HotRoutes

    # inside the token check (a middleware added later wraps the earlier ones)
    app.add_middleware(HotRoutes, handlers=app.exception_handlers)
    if api_token:
        app.add_middleware(TokenAuth, token=api_token)
    hosts = allowed_hosts(api_token, settings.allowed_hosts)
    if "*" not in hosts:  # outermost: checked before the token
        app.add_middleware(HostGuard, hosts=hosts)
    _install_handlers(app)

    from noetl.api.routes_catalog import router as catalog_router
    from noetl.api.routes_executions import router as executions_router
    from noetl.api.routes_history import router as history_router
    from noetl.api.routes_misc import router as misc_router
    from noetl.api.routes_queue import router as queue_router
    from noetl.api.routes_triggers import router as triggers_router
    from noetl.api.routes_workers import router as workers_router

    # the queue first: its routes serve every step, and a request is matched against the
    # routes in order
    for r in (queue_router, catalog_router, executions_router, workers_router, misc_router,
              triggers_router, history_router):
        app.include_router(r)
    from noetl.api import openapi_doc
    from noetl.api.docs import install_docs
    from noetl.ui import mount

    install_docs(app)
    mount(app)
    openapi_doc.install(app)
    return app


def _background(app: FastAPI, eng: Any, workers: int, reaper: bool) -> Any:
    """Start the lease reaper and the in-process worker pool; return what stops them."""
    from noetl.engine.expiry import Reaper

    rp = Reaper(eng).start() if reaper else None
    pool = None
    if workers > 0:
        import os
        import socket

        from noetl.credentials import store_credentials
        from noetl.local import LocalBackend
        from noetl.tools.base import Services
        from noetl.worker.pool import WorkerPool

        pool = WorkerPool(LocalBackend(eng), workers,
                          Services(credentials=store_credentials(eng.store),
                                   settings=eng.settings),
                          worker_id=f"server-{socket.gethostname()}-{os.getpid()}", mode="server")
        pool.start()
        log.info("noetl api: %d worker threads in this process (worker %s)", workers,
                 pool.worker_id)
    app.state.noetl_pool = pool

    def stop() -> None:
        if pool is not None:
            pool.stop(timeout=10)
        if rp is not None:
            rp.stop()

    return stop


def _redact(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    p = urlsplit(url)
    if p.password:
        netloc = p.netloc.replace(":" + p.password + "@", ":***@")
        return urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))
    return url
