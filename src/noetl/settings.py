"""The settings of a NoETL process, read once from its ``NOETL_*`` environment variables.

A composition root builds one :class:`Settings` with :meth:`Settings.from_env` and passes it
down: the CLI, the API app factory (:func:`noetl.api.app.create_app`), the embedded runner
(:class:`noetl.local.LocalRunner`), a remote worker (:class:`noetl.worker.http_backend.HttpBackend`),
:func:`noetl.store.open_store` and :class:`noetl.client.Client` when their caller gives none.
An opened store carries the settings it was opened with (``store.settings``), so the engine,
credentials and the worker tools it serves read them there. No other module reads the
environment for a NoETL setting, and none reads it at import.

=============================  ======================  ===========  =========================
variable                       field                   default      used by
=============================  ======================  ===========  =========================
``NOETL_HOME``                 ``home``                ``./.noetl`` default store, key file
``NOETL_STORE_URL``            ``store_url``           (home)       the default store
``NOETL_LEASE_SECONDS``        ``lease_seconds``       5            engine, workers
``NOETL_MAX_LEASE_EXPIRIES``   ``max_lease_expiries``  3            engine
``NOETL_PG_POOL_SIZE``         ``pg_pool_size``        10           PostgreSQL store
``NOETL_NODE_ID``              ``node_id``             (the store)  ids
``NOETL_API_THREADS``          ``api_threads``         200          API server
``NOETL_API_TOKEN``            ``api_token``           none         API server, clients
``NOETL_ENCRYPTION_KEY``       ``encryption_key``      none         credentials
``NOETL_SERVER_URL``           ``server_url``          none         clients, workers
``NOETL_WORKER_ID``            ``worker_id``           host-pid-…   workers
``NOETL_DATA_DIR``             ``data_dir``            .noetl/data  remote workers' tools
``NOETL_TEMPLATE_TIMEOUT``     ``template_timeout``    5            template rendering
``NOETL_TEMPLATE_ENV``         ``template_env``        none         ``env`` in templates
``NOETL_HTTP_REWRITE``         ``http_rewrite``        none         http tool
``NOETL_DUCKDB_AUTOINSTALL``   ``duckdb_autoinstall``  off          duckdb tool
``NOETL_CLI_MINIMAL``          ``cli_minimal``         off          the ``noetl`` command
``NOETL_SCHEDULER``            ``scheduler``           on           the server fires schedules
``NOETL_NOTIFIER``             ``notifier``            on           the server sends notices
``NOETL_SCHEDULER_POLL``       ``scheduler_poll``      2            the scheduler's longest nap
``NOETL_SCHEDULE_GRACE``       ``schedule_grace``      5            a late fire still runs
``NOETL_NOTIFY``               ``notify``              none         server-level targets
``NOETL_NOTIFY_POLL``          ``notify_poll``         1            the notifier's outbox poll
``NOETL_NOTIFY_RETRY_DELAY``   ``notify_retry_delay``  2            first retry (doubling)
``NOETL_NOTIFY_TIMEOUT``       ``notify_timeout``      10           one send
``NOETL_ALLOWED_HOSTS``        ``allowed_hosts``       (loopback)   credential reads' Host
``NOETL_PG_POOL_TIMEOUT``      ``pg_pool_timeout``     30           waiting for a connection
``NOETL_STEP_LOG_LIMIT``       ``step_log_limit``      1 MiB        one job's captured log
``NOETL_STEP_LOG_LEVEL``       ``step_log_level``      INFO         logging a job captures
=============================  ======================  ===========  =========================

Sizes that default to the machine (:func:`cpu_count`: the cores this process may run on):
``noetl server start --processes`` (:func:`default_server_processes`: one per core on a store
several processes share, else 1) and the threads of a worker pool, ``--concurrency`` /
``--worker-concurrency`` (:func:`default_worker_threads`: ``THREADS_PER_CORE`` per core).

(``NOETL_STEP_ENV_ALLOW`` is not a setting of the process but part of the environment a
python step sees: :mod:`noetl.tools.step_env` reads it with the rest of that environment.)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

TRUE = ("1", "true", "yes")
T = TypeVar("T")
# worker threads per core: tiny steps spend most of a job waiting for the database or the
# server, so several threads keep one core busy (and their reports share transactions)
THREADS_PER_CORE = 8


def cpu_count() -> int:
    """The cores this process may run on: its CPU affinity where the platform has one (a
    container's or ``taskset``'s limit), else the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_server_processes(multi_process: bool) -> int:
    """Server processes of ``noetl server start`` unless given: one per core on a store that
    several processes may share (one Python process uses one core), else one."""
    return cpu_count() if multi_process else 1


def default_worker_threads() -> int:
    """Threads of a worker pool unless given: ``THREADS_PER_CORE`` per core."""
    return THREADS_PER_CORE * cpu_count()


class SettingsError(ValueError):
    """A ``NOETL_*`` variable holds a value of the wrong kind (the message names it)."""


@dataclass(frozen=True)
class Settings:
    """The process's settings (the table of the module docstring)."""

    home: str | None = None
    store_url: str | None = None
    lease_seconds: float = 5.0
    max_lease_expiries: int = 3
    pg_pool_size: int = 10
    node_id: int | None = None
    api_threads: int = 200
    api_token: str | None = None
    encryption_key: str | None = None
    server_url: str | None = None
    worker_id: str | None = None
    data_dir: str = ".noetl/data"
    template_timeout: float = 5.0
    template_env: tuple[str, ...] = ()
    http_rewrite: str = ""
    duckdb_autoinstall: bool = False
    cli_minimal: bool = False
    scheduler: bool = True
    notifier: bool = True
    scheduler_poll: float = 2.0
    schedule_grace: float = 5.0
    notify: str = ""
    notify_poll: float = 1.0
    notify_retry_delay: float = 2.0
    notify_timeout: float = 10.0
    allowed_hosts: str | None = None
    pg_pool_timeout: float = 30.0
    step_log_limit: int = 1 << 20
    step_log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings the environment (default ``os.environ``) gives; unset or empty
        variables keep their defaults."""
        env = os.environ if environ is None else environ

        def text(name: str) -> str | None:
            return env.get(name) or None

        def parsed(name: str, default: T, kind: Callable[[str], T], what: str) -> T:
            raw = text(name)
            try:
                return default if raw is None else kind(raw)
            except ValueError:
                raise SettingsError(f"{name}={raw!r} is not {what}") from None

        def number(name: str, default: float) -> float:
            return parsed(name, default, float, "a number")

        def integer(name: str, default: int) -> int:
            return parsed(name, default, int, "an integer")

        def on(name: str) -> bool:  # on unless 0 / false / no / off
            return env.get(name, "1").strip().lower() not in ("0", "false", "no", "off")

        d = cls()
        return cls(
            home=text("NOETL_HOME"),
            store_url=text("NOETL_STORE_URL"),
            lease_seconds=number("NOETL_LEASE_SECONDS", d.lease_seconds),
            max_lease_expiries=integer("NOETL_MAX_LEASE_EXPIRIES", d.max_lease_expiries),
            pg_pool_size=integer("NOETL_PG_POOL_SIZE", d.pg_pool_size),
            node_id=integer("NOETL_NODE_ID", -1) if text("NOETL_NODE_ID") else None,
            api_threads=integer("NOETL_API_THREADS", d.api_threads),
            api_token=text("NOETL_API_TOKEN"),
            encryption_key=text("NOETL_ENCRYPTION_KEY"),
            server_url=text("NOETL_SERVER_URL"),
            worker_id=text("NOETL_WORKER_ID"),
            data_dir=text("NOETL_DATA_DIR") or d.data_dir,
            template_timeout=number("NOETL_TEMPLATE_TIMEOUT", d.template_timeout),
            template_env=tuple(n.strip() for n in env.get("NOETL_TEMPLATE_ENV", "").split(",")
                               if n.strip()),
            http_rewrite=env.get("NOETL_HTTP_REWRITE", ""),
            duckdb_autoinstall=env.get("NOETL_DUCKDB_AUTOINSTALL", "") in TRUE,
            cli_minimal=env.get("NOETL_CLI_MINIMAL") == "1",
            scheduler=on("NOETL_SCHEDULER"),
            notifier=on("NOETL_NOTIFIER"),
            scheduler_poll=number("NOETL_SCHEDULER_POLL", d.scheduler_poll),
            schedule_grace=number("NOETL_SCHEDULE_GRACE", d.schedule_grace),
            notify=env.get("NOETL_NOTIFY", ""),
            notify_poll=number("NOETL_NOTIFY_POLL", d.notify_poll),
            notify_retry_delay=number("NOETL_NOTIFY_RETRY_DELAY", d.notify_retry_delay),
            notify_timeout=number("NOETL_NOTIFY_TIMEOUT", d.notify_timeout),
            allowed_hosts=env.get("NOETL_ALLOWED_HOSTS"),
            pg_pool_timeout=number("NOETL_PG_POOL_TIMEOUT", d.pg_pool_timeout),
            step_log_limit=integer("NOETL_STEP_LOG_LIMIT", d.step_log_limit),
            step_log_level=(env.get("NOETL_STEP_LOG_LEVEL") or d.step_log_level).upper(),
        )

    def home_dir(self) -> Path:
        """``NOETL_HOME``, else ``./.noetl``."""
        return Path(self.home) if self.home else Path.cwd() / ".noetl"

    def default_store_url(self) -> str:
        return self.store_url or f"sqlite:///{self.home_dir() / 'noetl.db'}"
