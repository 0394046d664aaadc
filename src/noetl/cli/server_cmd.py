"""``noetl server start`` and ``noetl worker start`` (registered on the main app on import)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any

import typer

from noetl.cli.app import app, group

server_app = group("The API server.")
worker_app = group("Workers: lease jobs from a server over HTTP (--server), or straight from "
                   "PostgreSQL (--store).")
app.add_typer(server_app, name="server")
app.add_typer(worker_app, name="worker")


def _cores() -> int:
    from noetl.settings import cpu_count

    return cpu_count()


def _threads_help() -> str:
    from noetl.settings import THREADS_PER_CORE, default_worker_threads

    return f"{THREADS_PER_CORE} per core ({default_worker_threads()} here)"


@server_app.command("start")
def server_start(
        host: str = typer.Option("127.0.0.1", "--host", envvar="NOETL_HOST",
                                 help="Interface to bind (0.0.0.0 to accept remote workers)."),
        port: int = typer.Option(8082, "--port", envvar="NOETL_PORT"),
        store: str = typer.Option(None, "--store", envvar="NOETL_STORE_URL",
                                  help="Store URL (sqlite:///PATH or postgresql://...)."),
        log_level: str = typer.Option("info", "--log-level"),
        processes: int = typer.Option(
            None, "--processes", "-p", envvar="NOETL_SERVER_PROCESSES", min=1,
            show_default=False,
            help="Server processes sharing the port (PostgreSQL store only): one Python "
                 "process uses one core; they coordinate through the database as separate "
                 "servers would. /metrics then counts per process. Default: one per core "
                 f"({_cores()} here) on PostgreSQL without --workers, else 1."),
        workers: bool = typer.Option(
            None, "--workers/--no-workers", envvar="NOETL_SERVER_WORKERS",
            help="Run a worker pool inside the server. Default: on with the embedded SQLite "
                 "store (one command runs playbooks), off with PostgreSQL (run `noetl worker "
                 "start` processes: playbook code then runs apart from the server and its "
                 "secrets)."),
        worker_concurrency: int = typer.Option(
            None, "--worker-concurrency", envvar="NOETL_WORKER_CONCURRENCY", min=1,
            show_default=False,
            help=f"Threads of the in-server worker pool. Default: {_threads_help()}."),
) -> None:
    """Run the API server in the foreground (Ctrl-C or SIGTERM stops it)."""
    import uvicorn

    from noetl.api.app import create_app
    from noetl.settings import Settings
    from noetl.store.factory import BACKENDS, backend_for

    settings = Settings.from_env()
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    url = store or settings.default_store_url()
    caps = backend_for(url).capabilities
    if workers is None:  # one command runs playbooks on a store no other process shares
        workers = not caps.multi_process
    sized = _sizes(processes, worker_concurrency, workers, caps.multi_process)
    processes, worker_concurrency = sized.processes, sized.threads
    if host not in ("127.0.0.1", "localhost", "::1") and not settings.api_token:
        sys.stderr.write("warning: binding a non-loopback address without NOETL_API_TOKEN: "
                         "the API is open to anyone who can reach it\n")
    if processes > 1 and not caps.multi_process:
        shared = " or ".join(c.name for c in (backend_for(p[0]).capabilities
                                              for p in BACKENDS) if c.multi_process)
        sys.stderr.write(f"error: --processes needs a {shared} store ({caps.name} has "
                         f"{caps.note}): {url}\n")
        raise typer.Exit(2)
    if processes > 1 and workers:
        sys.stderr.write("error: --workers runs in one server process; with --processes "
                         "run `noetl worker start` processes instead\n")
        raise typer.Exit(2)
    _check_once(url, settings)  # what a server process would refuse, refused here at once
    if processes > 1:
        os.environ["NOETL_STORE_URL"] = url  # the factory reads it in each process
        os.environ[LOG_LEVEL] = log_level  # and logs as this process does
        sys.stderr.write(f"noetl server: {processes} processes on port {port} "
                         f"({sized.processes_why})\n")
        uvicorn.run("noetl.cli.server_cmd:child_app", factory=True, host=host, port=port,
                    log_level=log_level, access_log=False, timeout_graceful_shutdown=10,
                    workers=processes)
        return
    app = create_app(store, workers=worker_concurrency if workers else 0, settings=settings)
    sys.stderr.write(f"noetl server: 1 process ({sized.processes_why})"
                     + (f", {worker_concurrency} worker threads in it ({sized.threads_why}; "
                        "--no-workers to run none)" if workers else ", no worker threads")
                     + "\n")
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                            access_log=False, timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise typer.Exit(1)


class _Sizes:
    """Process and thread counts as given, or derived from the cores, and why (for the
    startup line)."""

    def __init__(self, processes: int, processes_why: str, threads: int, threads_why: str):
        self.processes, self.processes_why = processes, processes_why
        self.threads, self.threads_why = threads, threads_why


def _sizes(processes: int | None, threads: int | None, workers: bool,
           multi_process: bool) -> _Sizes:
    from noetl.settings import cpu_count, default_server_processes, default_worker_threads

    cores = cpu_count()
    if processes is not None:
        pwhy = "--processes"
    elif workers or not multi_process:
        processes, pwhy = 1, ("in-server workers run in one process" if workers
                              else "a store one process holds")
    else:
        processes, pwhy = default_server_processes(True), f"default: one per core, {cores} cores"
    if threads is not None:
        twhy = "given"
    else:
        threads, twhy = default_worker_threads(), f"default for {cores} cores"
    return _Sizes(processes, pwhy, threads, twhy)


def _check_once(url: str, settings: Any) -> None:
    """Before starting the server's processes: the store opens (and is migrated), its
    stored credentials can be decrypted, NOETL_NOTIFY is valid; else exit 1 with the reason
    (a server process refusing to start would otherwise only be restarted by uvicorn)."""
    from noetl.credentials import check_credentials_key
    from noetl.engine.triggers import server_targets
    from noetl.store import open_store

    try:
        server_targets(settings.notify)
        store = open_store(url, settings)
        try:
            check_credentials_key(store)
        finally:
            store.close()
    except Exception as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(1) from None


def child_app() -> Any:
    """The app of one of ``--processes`` server processes: it dies with the process that
    started it (a ``kill -9`` of ``noetl server start`` leaves no server behind). A database
    down when it starts (or restarts) is waited for: uvicorn stops every process when one
    fails to start."""
    from noetl.api.app import create_app
    from noetl.tools.python_isolated import die_with_parent

    die_with_parent()
    logging.basicConfig(level=os.environ.get(LOG_LEVEL, "info").upper(),
                        format="%(asctime)s %(name)s %(message)s")
    return create_app(wait_for_store=True)


LOG_LEVEL = "_NOETL_SERVER_LOG_LEVEL"  # server → its --processes: the level they log at
THREADS_WHY = "_NOETL_WORKER_THREADS_WHY"  # supervisor → worker process: why that many threads
PROBE_FIRST_DELAY, PROBE_MAX_DELAY = 0.5, 5.0  # seconds between tries: doubling, capped


def _probe(backend: Any, patience: float = 60.0) -> None:
    """Wait up to ``patience`` seconds for the server (it may start after the worker), trying
    again after 0.5 s, 1 s, 2 s, 4 s, then every 5 s; then exit 1 saying so. A refused token,
    or any answer that is an error, is fatal at once."""
    import time

    from noetl.client import ApiError

    log = logging.getLogger("noetl.worker")
    t0 = time.monotonic()
    delay, tries = PROBE_FIRST_DELAY, 0
    while True:
        tries += 1
        try:
            backend.client.request("GET", "/api/queue/size")
            return
        except ApiError as exc:
            if exc.status_code in (401, 403):
                hint = ("the server's NOETL_ALLOWED_HOSTS must name the host this worker "
                        "uses in its URL" if "NOETL_ALLOWED_HOSTS" in str(exc)
                        else "set NOETL_API_TOKEN to the server's token")
                sys.stderr.write(f"error: the server refused this worker: {exc} ({hint})\n")
                raise typer.Exit(1) from None
            if exc.status_code:
                sys.stderr.write(f"error: {exc}\n")
                raise typer.Exit(1) from None
            left = patience - (time.monotonic() - t0)
            if left <= 0:
                sys.stderr.write(
                    f"error: {exc}; gave up after {tries} tries in {patience:g} s (start the "
                    "server first, or check --server / NOETL_SERVER_URL; --connect-timeout / "
                    "NOETL_WORKER_CONNECT_TIMEOUT waits longer)\n")
                raise typer.Exit(1) from None
            wait = min(delay, left)
            log.warning("%s; trying again in %.1f s (giving up in %.1f s)", exc, wait, left)
            time.sleep(wait)
            delay = min(delay * 2, PROBE_MAX_DELAY)


@worker_app.command("start")
def worker_start(
        server: str = typer.Option(None, "--server", envvar="NOETL_SERVER_URL",
                                   help="NoETL server URL (default http://127.0.0.1:8082)."),
        store: str = typer.Option(
            None, "--store", envvar="NOETL_WORKER_STORE_URL",
            help="A direct worker: lease, run and report straight on this PostgreSQL store "
                 "(postgresql://...), with the engine code a server runs and no HTTP hop; it "
                 "holds database credentials and NOETL_ENCRYPTION_KEY. Without it the worker "
                 "speaks HTTP to --server and holds neither."),
        concurrency: int = typer.Option(
            None, "--concurrency", "-c", envvar="NOETL_WORKER_CONCURRENCY", min=1,
            show_default=False, help=f"Jobs run at once (threads). Default: {_threads_help()}."),
        worker_id: str = typer.Option(None, "--worker-id", envvar="NOETL_WORKER_ID"),
        lease_seconds: float = typer.Option(None, "--lease-seconds", envvar="NOETL_LEASE_SECONDS",
                                            help="Lease length; heartbeats extend it."),
        wait_seconds: float = typer.Option(5.0, "--wait-seconds",
                                           help="Long-poll time per lease request."),
        grace: float = typer.Option(30.0, "--grace",
                                    help="On SIGTERM, seconds to let running jobs finish."),
        log_level: str = typer.Option("info", "--log-level"),
        processes: int = typer.Option(
            1, "--processes", "-p", envvar="NOETL_WORKER_PROCESSES", min=1,
            help="Worker processes, each with --concurrency threads (one Python process "
                 "uses one core)."),
        connect_timeout: float = typer.Option(
            60.0, "--connect-timeout", envvar="NOETL_WORKER_CONNECT_TIMEOUT", min=0,
            help="Seconds to wait for --server to answer at start (trying again after 0.5 s, "
                 "doubling up to 5 s); then exit 1."),
        supervise: bool = typer.Option(
            True, "--supervise/--no-supervise", envvar="NOETL_WORKER_SUPERVISE",
            help="Run the worker processes under a supervisor that starts again any that dies "
                 "(a step that kills its process costs a restart, not the worker). "
                 "--no-supervise runs one worker in this process (for a process manager)."),
) -> None:
    """Lease jobs (from a server, or with --store from PostgreSQL) and run them until
    SIGTERM/SIGINT; then stop leasing, finish running jobs (up to --grace seconds), give back
    any job leased meanwhile, exit 0 (3 when a result could not be reported before the grace
    ran out: the server or database unreachable; the job runs again when its lease runs
    out)."""
    from noetl.settings import Settings
    from noetl.templates import configure
    from noetl.worker.http_backend import HttpBackend
    from noetl.worker.pool import WorkerPool
    from noetl.worker.supervisor import UNRECORDED_EXIT, signal_ready

    settings = Settings.from_env()
    configure(settings)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # a supervised worker process is given --concurrency by its supervisor, and why with it
    threads_why = os.environ.pop(THREADS_WHY, "given")
    if concurrency is None:
        from noetl.settings import cpu_count, default_worker_threads

        concurrency, threads_why = default_worker_threads(), f"default for {cpu_count()} cores"
    if store:
        _check_direct(store)
    if supervise or processes > 1:
        if store:  # to the worker processes in their environment, not on their command line
            os.environ["NOETL_WORKER_STORE_URL"] = store
        os.environ[THREADS_WHY] = threads_why
        raise typer.Exit(_supervise(processes, worker_id, grace + wait_seconds + 5, [
            "--concurrency", str(concurrency), "--wait-seconds", str(wait_seconds),
            "--grace", str(grace), "--log-level", log_level,
            "--connect-timeout", str(connect_timeout),
            *(["--server", server] if server and not store else []),
            *(["--lease-seconds", str(lease_seconds)] if lease_seconds else [])]))
    if store:
        _run_direct(store, concurrency, threads_why, worker_id, lease_seconds, grace, settings)
    backend = HttpBackend(server, lease_seconds=lease_seconds, wait_seconds=wait_seconds,
                          max_connections=concurrency + 8, settings=settings)
    _probe(backend, connect_timeout)
    pool = WorkerPool(backend, concurrency, backend.services(), worker_id=worker_id,
                      meta={"server": backend.client.server_url})
    stop = _stop_on_signals("stopping")
    pool.start()
    logging.getLogger("noetl.worker").info("worker %s: %d threads leasing from %s (%s)",
                                           pool.worker_id, concurrency,
                                           backend.client.server_url, threads_why)
    signal_ready()
    while not stop.wait(1.0):
        pass
    pool.stop(timeout=grace + wait_seconds)
    backend.close()
    raise typer.Exit(UNRECORDED_EXIT if pool.unrecorded else 0)


def _check_direct(store: str) -> None:
    """A direct worker needs a store several processes may share (exit 2 otherwise)."""
    from noetl.store.factory import BACKENDS, backend_for

    try:
        caps = backend_for(store).capabilities
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(2) from None
    if not caps.multi_process:
        shared = " or ".join(c.name for c in (backend_for(p[0]).capabilities
                                              for p in BACKENDS) if c.multi_process)
        sys.stderr.write(
            f"error: --store needs a {shared} store: a direct worker shares it with the server "
            f"and other workers, and {caps.name} has {caps.note} ({store}). Run `noetl server "
            "start` (its in-server workers), or HTTP workers with --server.\n")
        raise typer.Exit(2)


def _run_direct(store: str, concurrency: int, threads_why: str, worker_id: str | None,
                lease_seconds: float | None, grace: float, settings: Any) -> None:
    """One direct worker in this process until SIGTERM/SIGINT (see :class:`DirectWorker`)."""
    from noetl.local import DirectWorker
    from noetl.worker.supervisor import UNRECORDED_EXIT, signal_ready

    log = logging.getLogger("noetl.worker")
    try:
        direct = DirectWorker(store, concurrency, settings, worker_id=worker_id,
                              lease_seconds=lease_seconds)
    except Exception as exc:  # unreachable database, stored credentials and no key
        sys.stderr.write(f"error: {type(exc).__name__}: {exc}\n")
        raise typer.Exit(1) from None
    stop = _stop_on_signals("stopping")
    direct.start()
    log.info("worker %s: %d threads leasing from %s directly (%s)", direct.pool.worker_id,
             concurrency, direct.pool.meta["store"], threads_why)
    signal_ready()
    while not stop.wait(1.0):
        pass
    direct.stop(grace)
    raise typer.Exit(UNRECORDED_EXIT if direct.pool.unrecorded else 0)


def _supervise(processes: int, worker_id: str | None, grace: float, args: list[str]) -> int:
    """Run ``processes`` supervised ``noetl worker start --no-supervise`` processes (worker ids
    ``ID`` or, with several, ``ID-0``, ``ID-1``, ...) until SIGTERM/SIGINT; their exit code."""
    from noetl.worker.supervisor import Supervisor

    argvs = []
    for i in range(processes):
        ident = worker_id if processes == 1 or not worker_id else f"{worker_id}-{i}"
        argvs.append([sys.executable, "-m", "noetl", "worker", "start", "--no-supervise",
                      "--processes", "1", *args, *(["--worker-id", ident] if ident else [])])
    return Supervisor(argvs).run(_stop_on_signals("stopping the worker processes"), grace)


def _stop_on_signals(what: str) -> threading.Event:
    """An event set by SIGTERM or SIGINT (logged as ``signal N: <what>``)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        logging.getLogger("noetl.worker").info("signal %s: %s", signum, what)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop
