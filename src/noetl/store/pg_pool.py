"""The PostgreSQL store's connection pool, for a database that goes away and comes back.

psycopg_pool's defaults suit a database that stays up: a request waits the whole pool
timeout (``NOETL_PG_POOL_TIMEOUT``, 30 s) for a connection, and a lost connection is
re-made with an exponential backoff that is not capped (1, 2, 4, ... 64 s), so after a few
minutes down the server kept answering 503 for a minute after the database was back. Here:

- reconnection attempts back off to at most :data:`MAX_RECONNECT_DELAY`;
- while the database is known to be down (a connection failed and none has succeeded
  since), a request waits at most :data:`DOWN_WAIT` for a connection, so it gets its 503
  (``Retry-After``) at once rather than after the pool timeout; the first connection the
  pool hands out again ends that;
- the connection returned last is handed out first (LIFO, :meth:`Pool._get_ready_connection`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

FIRST_RECONNECT_DELAY = 0.5
MAX_RECONNECT_DELAY = 2.0  # seconds between two attempts to re-make a lost connection
DOWN_WAIT = 1.0  # seconds a request waits for a connection while the database is down
# SQLSTATE classes that mean the connection, not the request, failed
_CONNECTION_STATES = ("08", "57P")


def lost_connection(exc: BaseException) -> bool:
    """``exc`` says the database could not be reached or dropped the connection (not that a
    statement was refused)."""
    if isinstance(exc, psycopg.InterfaceError):
        return True
    if isinstance(exc, psycopg.OperationalError):
        state = getattr(exc, "sqlstate", None)
        return state is None or state.startswith(_CONNECTION_STATES)
    return False


class _Backoff:
    """A reconnection attempt as the pool's ``_add_connection`` uses it (psycopg_pool's own
    ``AttemptWithBackoff``: give up after ``timeout``), its delay capped."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.delay = 0.0
        self.give_up_at = 0.0

    def update_delay(self, now: float) -> None:
        if self.delay == 0.0:
            self.give_up_at = now + self.timeout
            self.delay = FIRST_RECONNECT_DELAY
        else:
            self.delay = min(self.delay * 2, MAX_RECONNECT_DELAY)
        self.delay = min(self.delay, max(0.0, self.give_up_at - now))

    def time_to_give_up(self, now: float) -> bool:
        return self.give_up_at > 0.0 and now >= self.give_up_at


class Pool(ConnectionPool[Any]):
    """A :class:`psycopg_pool.ConnectionPool` with capped reconnection and a short wait
    while the database is down (:meth:`conn`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.down = False  # a connection failed, and none has been handed out since

    def _connect(self, timeout: float | None = None) -> Any:
        try:
            c = super()._connect(timeout)
        except Exception:
            self.down = True
            raise
        self.down = False
        return c

    def _add_connection(self, attempt: Any, growing: bool = False) -> None:
        super()._add_connection(attempt or _Backoff(self.reconnect_timeout),  # type: ignore[arg-type]
                                growing)

    def _get_ready_connection(self, timeout: float | None) -> Any:
        """The most recently returned idle connection, not the oldest (psycopg_pool's order).

        With the oldest first, a pool that grew to two connections for a moment used both in
        turn from then on, one transaction each, though one would do: each transaction met a
        backend process (and a client connection) whose CPU caches the other had evicted
        (embedded PostgreSQL seq40: about 15 % more server CPU per step). Newest first keeps the
        one in use hot; the others stay idle, and the pool closes them after ``max_idle`` (it
        shrinks from the old end). Called with the pool's lock held."""
        if len(self._pool) > 1:
            self._pool.rotate(1)  # the newest (right end) to the end the pool takes from
        return super()._get_ready_connection(timeout)

    @contextmanager
    def conn(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (as :meth:`connection`), the database's state tracked."""
        wait = min(DOWN_WAIT, self.timeout) if self.down else None
        try:
            with self.connection(timeout=wait) as c:
                self.down = False
                yield c
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if lost_connection(exc):
                self.down = True
            raise
