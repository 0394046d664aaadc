"""The engine's plumbing: its store and settings, one transaction (run again on a transient
database error), and what follows a commit. :class:`noetl.engine.core.Engine` builds on it,
through its queue half (:mod:`noetl.engine.leases`) and report half
(:mod:`noetl.engine.reports`)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from noetl.domain.records import ExecutionRow
from noetl.engine.logs import LogWaiters
from noetl.engine.prefetch import Hints
from noetl.engine.session import Session
from noetl.engine.speculation import KeptRows
from noetl.engine.unit import Unit, session_tree
from noetl.plan import Plan
from noetl.settings import Settings
from noetl.store.base import Store, Tx

T = TypeVar("T")


class EngineBase:
    # what its leases may take: None, any job (servers, workers); else only jobs of these
    # executions and of their sub-playbook children (an embedded run's own, see
    # noetl.local.LocalRunner). Replaced whole, never changed in place (threads read it).
    lease_roots: frozenset[int] | None = None

    def __init__(self, store: Store, lease_seconds: float | None = None,
                 settings: Settings | None = None):
        self.store = store
        self.settings = settings or store.settings
        self.lease_seconds = lease_seconds or self.settings.lease_seconds
        self.listeners: list[Callable[[set[int]], None]] = []
        # called after a commit that put notifications in the outbox (the server's sender)
        self.outbox_listeners: list[Callable[[], None]] = []
        self.logs = LogWaiters()  # readers following step logs (GET .../logs?wait=)
        self.hints = Hints()  # what the reports of the jobs handed out here read first
        self.kept = KeptRows()  # the rows they start from (speculative reports)

    # -- plumbing ----------------------------------------------------------------------------
    def session(self, tx: Tx, ex: ExecutionRow, plan: Plan | None = None) -> Session:
        """The rules applied to ``ex`` inside ``tx``, with this engine's settings."""
        return Session(tx, ex, plan, self.settings)

    def _tx(self, fn: Callable[[Tx], T]) -> T:
        for attempt in range(20):
            try:
                with self.store.transaction() as tx:
                    return fn(tx)
            except Exception as exc:
                if self.store.stale(exc) and attempt < 19:
                    continue  # a speculative report's rows changed: again at once, reading
                if not self.store.retryable(exc) or attempt == 19:
                    raise
                time.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))  # jittered backoff
        raise AssertionError("unreachable")

    def _after(self, sessions: Sequence[Unit]) -> None:
        """After a commit: wake idle workers if jobs became ready; tell listeners which
        executions just ended, and the outbox's listeners whether notifications were queued."""
        if any(s.wake for s in sessions):
            self.store.notify_work()
        if not self.listeners and not self.outbox_listeners:
            return
        tree = session_tree(sessions, pending=False)
        if self.listeners:
            ended = {s.eid for s in tree if s.ex.terminal}
            for cb in self.listeners:
                cb(ended)
        if self.outbox_listeners and any(s.outbox for s in tree):
            for wake in self.outbox_listeners:
                wake()
