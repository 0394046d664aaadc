"""The trigger loops of one server process: the scheduler and the notification sender.

Polling is the baseline: the scheduler sleeps until the earliest ``next_run_at`` (at most
``NOETL_SCHEDULER_POLL`` seconds, default 2, so schedules another server added are seen), and
is woken sooner when this process changes a schedule; the sender looks for due notifications
every ``NOETL_NOTIFY_POLL`` seconds (default 1) and is woken when an execution that ends here
queued notifications (not by every execution's end: most queue none).
``NOETL_SCHEDULER=0`` / ``NOETL_NOTIFIER=0`` turn a loop off in this process. (All of these
come from the engine's settings, :class:`noetl.settings.Settings`.)
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from noetl.domain.records import now
from noetl.triggers import NoMetrics, TriggerMetrics
from noetl.triggers.notify import deliver_due
from noetl.triggers.schedules import fire_due

if TYPE_CHECKING:
    from noetl.engine.core import Engine

log = logging.getLogger("noetl.triggers")
BUSY_WAIT = 0.05  # a due row another server is firing: look again this soon


class Triggers:
    def __init__(self, engine: Engine, metrics: TriggerMetrics | None = None,
                 resolve: Any = None, grace: float | None = None):
        self.engine = engine
        self.settings = engine.settings
        self.metrics: TriggerMetrics = metrics or NoMetrics()
        if resolve is None:
            from noetl.credentials import store_credentials

            resolve = store_credentials(engine.store)
        self.resolve = resolve
        self.grace = self.settings.schedule_grace if grace is None else grace
        self._stop = threading.Event()
        self._wake_schedules = threading.Event()
        self._wake_notify = threading.Event()
        self._threads: list[threading.Thread] = []
        engine.outbox_listeners.append(self._queued)

    def _queued(self) -> None:
        self._wake_notify.set()

    def wake(self) -> None:
        """A schedule changed in this process: recompute the next wake-up."""
        self._wake_schedules.set()

    def start(self) -> Triggers:
        for name, target, enabled in (
                ("noetl-scheduler", self._schedule_loop, self.settings.scheduler),
                ("noetl-notifier", self._notify_loop, self.settings.notifier)):
            if enabled:
                t = threading.Thread(target=target, name=name, daemon=True)
                t.start()
                self._threads.append(t)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake_schedules.set()
        self._wake_notify.set()
        for t in self._threads:
            t.join(timeout)
        if self._queued in self.engine.outbox_listeners:
            self.engine.outbox_listeners.remove(self._queued)

    # -- loops --------------------------------------------------------------------------------
    def _next(self, what: str) -> float | None:
        with self.engine.store.read() as tx:  # a read: an idle loop takes no write lock
            return tx.next_schedule_at() if what == "schedule" else tx.next_notification_at()

    def tick(self) -> float:
        """Fire what is due; return how long to sleep."""
        nxt = self._next("schedule")
        if nxt is not None and nxt <= now():
            for f in fire_due(self.engine, self.grace):
                self.metrics.schedule_fired(f.outcome, f.lag, f.missed)
            nxt = self._next("schedule")
        poll = self.settings.scheduler_poll
        if nxt is None:
            return poll
        wait = nxt - now()
        return BUSY_WAIT if wait <= 0 else min(poll, wait)

    def _schedule_loop(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            self._wake_schedules.clear()
            try:
                wait = self.tick()
                backoff = 0.5
            except Exception as exc:  # the database away: keep trying, say so once per outage
                if backoff != 0.5:
                    log.debug("scheduler: %s", exc)
                elif self.engine.store.unavailable(exc):  # one line, as the reaper's
                    log.warning("scheduler: database unavailable: %s",
                                str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                else:
                    log.exception("scheduler: %s", exc)
                wait, backoff = backoff, min(backoff * 2, self.settings.scheduler_poll)
            self._wake_schedules.wait(wait)

    def _notify_loop(self) -> None:
        while not self._stop.is_set():
            self._wake_notify.clear()
            wait = poll = self.settings.notify_poll
            try:
                nxt = self._next("notification")
                if nxt is not None and nxt <= now():
                    deliver_due(self.engine, self.resolve, self.metrics)
                    nxt = self._next("notification")
                if nxt is not None:  # a due row another server is sending: look again soon
                    wait = min(poll, max(BUSY_WAIT, nxt - now()))
            except Exception as exc:
                log.warning("notifier: %s", exc)
            self._wake_notify.wait(wait)
