"""Counting inside a server or worker process (installed by ``bench/sqlcount/sitecustomize.py``
when ``NOETL_BENCH_SQLCOUNT`` names a directory): the SQL it sends (:func:`bench.statements.
hook_psycopg`), and engine-level events: leases and how many came back empty, reports,
waits for work and what ended them, NOTIFYs received, transactions run again, the time
threads waited for a pooled connection. ``SIGUSR1`` writes the counts so far to
``<dir>/<pid>-<n>.json``; :mod:`bench.load_statements` takes the difference of two."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.statements import Counts, hook_psycopg

EVENTS: Counter[str] = Counter()
_LOCK = threading.Lock()


def bump(key: str, n: float = 1) -> None:
    with _LOCK:
        EVENTS[key] += n  # type: ignore[assignment]


def _wrap(cls: Any, name: str, around: Callable[..., Any]) -> None:
    inner = getattr(cls, name)

    def wrapper(self: Any, *a: Any, **kw: Any) -> Any:
        return around(inner, self, *a, **kw)

    setattr(cls, name, wrapper)


def _engine_hooks() -> None:
    from noetl.engine.base import EngineBase
    from noetl.engine.leases import Leases
    from noetl.engine.reports import Reports
    from noetl.store.base import Store
    from noetl.store.pg_pool import Pool
    from noetl.store.postgres import PostgresStore

    def lease(inner: Any, self: Any, *a: Any, **kw: Any) -> Any:
        out = inner(self, *a, **kw)
        bump("lease calls")
        bump("lease empty" if not out else "lease jobs", 1 if not out else len(out))
        return out

    def lease_in(inner: Any, self: Any, *a: Any, **kw: Any) -> Any:
        out = inner(self, *a, **kw)
        bump("lease_in (in any tx)")
        if not out:
            bump("lease_in empty")
        return out

    def report_and_lease(inner: Any, self: Any, *a: Any, **kw: Any) -> Any:
        out = inner(self, *a, **kw)
        bump("report_and_lease calls")
        bump("report_and_lease jobs", len(out[1]))
        return out

    def report_batch(inner: Any, self: Any, reports: Any, *a: Any, **kw: Any) -> Any:
        out = inner(self, reports, *a, **kw)
        bump("report_batch calls")
        bump("report_batch reports", len(reports))
        bump("report_batch jobs", len(out[1]))
        return out

    def next_wakeup(inner: Any, self: Any, *a: Any, **kw: Any) -> Any:
        bump("next_wakeup (MIN probes)")
        return inner(self, *a, **kw)

    def wait_for_work(inner: Any, self: Any, seen: int, timeout: float) -> Any:
        t = time.monotonic()
        out = inner(self, seen, timeout)
        bump("wait_for_work calls")
        bump("wait_for_work s", time.monotonic() - t)
        bump("wait_for_work woken" if self._work_version != seen else "wait_for_work timed out")
        return out

    def notify_work(inner: Any, self: Any, *a: Any, **kw: Any) -> Any:
        bump("notify_work")
        return inner(self, *a, **kw)

    def wake_local(inner: Any, self: Any) -> Any:
        bump("NOTIFY received (listener)")
        return inner(self)

    def transaction(inner: Any, self: Any) -> Any:
        @contextmanager
        def counted() -> Iterator[Any]:
            bump("transactions")
            with inner(self) as tx:
                yield tx

        return counted()

    def conn(inner: Any, self: Any) -> Any:
        @contextmanager
        def timed() -> Iterator[Any]:
            t = time.perf_counter()
            with inner(self) as c:
                bump("pool checkouts")
                bump("pool wait s", time.perf_counter() - t)
                yield c

        return timed()

    original_retryable = PostgresStore.retryable

    def retryable(exc: BaseException) -> bool:
        out = bool(original_retryable(exc))
        bump(f"retryable {getattr(exc, 'sqlstate', None)}" if out else "not retryable")
        return out

    _wrap(Leases, "lease", lease)
    _wrap(Leases, "_lease_in", lease_in)
    _wrap(Reports, "report_and_lease", report_and_lease)
    _wrap(Reports, "report_batch", report_batch)
    _wrap(Leases, "next_wakeup", next_wakeup)
    _wrap(Store, "wait_for_work", wait_for_work)
    _wrap(PostgresStore, "notify_work", notify_work)
    _wrap(PostgresStore, "_wake_local", wake_local)
    _wrap(PostgresStore, "transaction", transaction)
    _wrap(Pool, "conn", conn)
    PostgresStore.retryable = staticmethod(retryable)  # type: ignore[method-assign]
    del EngineBase


def install(directory: str) -> None:
    out = Path(directory)
    counts = Counts(on=True)
    hook_psycopg(counts)
    _engine_hooks()
    n = [0]

    def dump(_sig: int, _frame: Any) -> None:
        n[0] += 1
        if True:  # no lock: the handler may interrupt a thread holding one (GIL-safe copies)
            data = {"pid": os.getpid(), "statements": counts.statements,
                    "tx_control": counts.tx_control, "round_trips": counts.round_trips,
                    "tx_round_trips": counts.tx_round_trips, "by_text": dict(counts.by_text),
                    "control": dict(counts.control_by_text), "events": dict(EVENTS)}
        tmp = out / f".{os.getpid()}-{n[0]}.json"
        tmp.write_text(json.dumps(data))
        tmp.rename(out / f"{os.getpid()}-{n[0]}.json")

    signal.signal(signal.SIGUSR1, dump)
