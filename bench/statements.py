"""SQL statements and round trips per step of an embedded scenario.

``python -m bench.statements [seq40|seq7|loop] [sqlite|postgres] [runs] [--trace]`` (defaults
seq40, postgres, 5) runs the scenario embedded (``LocalRunner``, the same scenarios as
:mod:`bench.instructions`: per step for seq40, per execution for seq7, per item for loop) after
one warm-up execution, and prints per unit:

- **statements**: the SQL the engine sends, without transaction control (``BEGIN``,
  ``COMMIT``, ``ROLLBACK``), which is counted apart (**transactions**);
- **round trips** (PostgreSQL): how often the client waits for the server to answer those
  statements: a statement sent outside a pipeline is one, a pipeline (``Tx.batch``,
  ``executemany``) one per sync, plus a fetch inside a pipeline that has to wait for its
  result; and the same with ``BEGIN`` and ``COMMIT`` (one each per transaction).

Counted in this process only, by wrapping psycopg's cursor, connection and pipeline methods
(PostgreSQL) or by the ``sqlite3`` trace callback (SQLite); nothing in ``noetl`` changes.
What the client thread waiting for the execution's end reads (``describe``) is not counted.
``--trace`` prints each statement as it is sent (thread, ``|`` when in a pipeline).
"""

from __future__ import annotations

import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_TX_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|START)\b", re.I)


@dataclass
class Counts:
    statements: int = 0
    tx_control: int = 0
    round_trips: int = 0  # waits for the server, statements only
    tx_round_trips: int = 0  # waits for BEGIN / COMMIT / ROLLBACK
    trace: bool = False
    by_text: dict[str, int] = field(default_factory=dict)
    control_by_text: dict[str, int] = field(default_factory=dict)  # BEGIN, COMMIT, ROLLBACK
    lock: threading.Lock = field(default_factory=threading.Lock)
    muted: threading.local = field(default_factory=threading.local)
    on: bool = False

    def counting(self) -> bool:
        return self.on and not getattr(self.muted, "yes", False)

    def statement(self, sql: str, rows: int = 1, trip: bool = True, piped: bool = False) -> None:
        if not self.counting():
            return
        control = bool(_TX_CONTROL.match(sql))
        with self.lock:
            if control:
                self.tx_control += rows
                self.tx_round_trips += int(trip)
                word = sql.split()[0].upper()
                self.control_by_text[word] = self.control_by_text.get(word, 0) + rows
            else:
                self.statements += rows
                self.round_trips += int(trip)
                key = " ".join(sql.split())[:160]
                self.by_text[key] = self.by_text.get(key, 0) + rows
        if self.trace:
            mark = "|" if piped else " "
            more = f" x{rows}" if rows > 1 else ""
            sys.stderr.write(f"{threading.current_thread().name[:12]:12} {mark} "
                             f"{' '.join(sql.split())[:200]}{more}\n")

    def trip(self) -> None:
        if self.counting():
            with self.lock:
                self.round_trips += 1
            if self.trace:
                sys.stderr.write(f"{threading.current_thread().name[:12]:12} | -- sync --\n")

    def reset(self) -> None:
        with self.lock:
            self.statements = self.tx_control = self.round_trips = self.tx_round_trips = 0
            self.by_text.clear()
            self.control_by_text.clear()

    @contextmanager
    def mute(self) -> Iterator[None]:
        self.muted.yes = True
        try:
            yield
        finally:
            self.muted.yes = False


def _text(query: Any) -> str:
    if isinstance(query, bytes):
        return query.decode(errors="replace")
    return query if isinstance(query, str) else str(query)


def hook_psycopg(c: Counts) -> None:
    """Wrap psycopg's Cursor.execute / executemany, the connection's internal command (BEGIN,
    COMMIT) and the pipeline's syncs and waiting fetches, to count into ``c``."""
    import psycopg
    from psycopg import _connection_base, _pipeline

    cur_execute = psycopg.Cursor.execute
    cur_many = psycopg.Cursor.executemany
    fetch_pipeline = psycopg.Cursor._fetch_pipeline
    exec_command = _connection_base.BaseConnection._exec_command
    sync = _pipeline.Pipeline.sync
    pipe_exit = _pipeline.Pipeline.__exit__

    def execute(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        piped = self._conn._pipeline is not None
        c.statement(_text(query), trip=not piped, piped=piped)
        return cur_execute(self, query, params, **kw)

    def executemany(self: Any, query: Any, params_seq: Any, **kw: Any) -> Any:
        rows = list(params_seq)
        # its own pipeline when none is open: that pipeline's exit counts the round trip
        c.statement(_text(query), rows=len(rows), trip=False, piped=True)
        return cur_many(self, query, rows, **kw)

    def fetch(self: Any) -> Any:
        if self._conn._pipeline is not None and not self.pgresult \
                and self._execmany_returning is not False:
            c.trip()  # a fetch that has to wait for the pipeline's results
        return fetch_pipeline(self)

    def command(self: Any, command: Any, *a: Any, **kw: Any) -> Any:
        piped = self._pipeline is not None
        c.statement(_text(command), trip=not piped, piped=piped)
        return exec_command(self, command, *a, **kw)

    def pipe_sync(self: Any) -> Any:
        c.trip()
        return sync(self)

    def exit_(self: Any, *exc: Any) -> Any:
        c.trip()  # exiting sends a Sync and waits for every result
        return pipe_exit(self, *exc)

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    psycopg.Cursor.executemany = executemany  # type: ignore[method-assign]
    psycopg.Cursor._fetch_pipeline = fetch  # type: ignore[method-assign]
    _connection_base.BaseConnection._exec_command = command  # type: ignore[method-assign]
    _pipeline.Pipeline.sync = pipe_sync  # type: ignore[method-assign]
    _pipeline.Pipeline.__exit__ = exit_  # type: ignore[method-assign]


def hook_sqlite(store: Any, c: Counts) -> None:
    def cb(sql: str) -> None:
        c.statement(sql, trip=False)

    store._conn.set_trace_callback(cb)


@contextmanager
def _store(kind: str) -> Iterator[str]:
    if kind == "postgres":
        from bench.stores import scratch_postgres

        with scratch_postgres() as url:
            yield url
    else:
        from bench.stores import sqlite_url

        with tempfile.TemporaryDirectory(prefix="noetl-stmt-") as tmp:
            yield sqlite_url(Path(tmp))


@dataclass
class Result:
    name: str
    kind: str
    runs: int
    units: int
    unit: str
    counts: Counts

    def per(self, n: int) -> float:
        return n / (self.runs * self.units)

    def lines(self) -> list[str]:
        c = self.counts
        out = [f"{self.name} (embedded, {self.kind}, {self.runs} runs), per {self.unit}:",
               f"  statements   {self.per(c.statements):7.2f}   "
               f"(+ BEGIN/COMMIT {self.per(c.tx_control):.2f})"]
        if self.kind == "postgres":
            out.append(f"  round trips  {self.per(c.round_trips):7.2f}   "
                       f"(with BEGIN/COMMIT {self.per(c.round_trips + c.tx_round_trips):.2f})")
        return out


def measure(name: str = "seq40", kind: str = "postgres", runs: int = 5,
            trace: bool = False, log: Callable[[str], None] | None = None) -> Result:
    from bench.instructions import scenario
    from noetl.dsl import parse_playbook
    from noetl.local import LocalRunner

    text, args, units, unit = scenario(name)
    pb = parse_playbook(text, "<bench>")
    c = Counts()
    if kind == "postgres":
        hook_psycopg(c)
    with _store(kind) as url:
        runner = LocalRunner(url, concurrency=4)
        runner.pool.poll_interval = 3600.0  # no idle polling: the engine wakes the threads
        if kind != "postgres":
            hook_sqlite(runner.store, c)
        with runner:
            for i in range(runs + 1):  # the first is the warm-up
                if i == 1:
                    c.reset()
                    c.trace = trace
                c.on = True
                ex = runner.engine.start(pb, args=args)
                with c.mute():  # the waiting client's own reads are not the engine's
                    desc = runner.wait(ex.execution_id, timeout=600, tick=3600)
                if desc["status"] != "COMPLETED":
                    raise RuntimeError(f"{name} ended {desc['status']}: {desc.get('error')}")
            c.on = False
    return Result(name, kind, runs, units, unit, c)


def main(argv: list[str]) -> None:
    trace = "--trace" in argv
    rest = [a for a in argv if a != "--trace"]
    name = rest[0] if rest else "seq40"
    kind = rest[1] if len(rest) > 1 else "postgres"
    runs = int(rest[2]) if len(rest) > 2 else 5
    if kind not in ("sqlite", "postgres"):
        raise SystemExit(f"unknown store {kind!r} (sqlite, postgres)")
    res = measure(name, kind, runs, trace)
    for line in res.lines():
        print(line)
    if trace:
        print("  by statement (count per unit):")
        for sql, n in sorted(res.counts.by_text.items(), key=lambda kv: -kv[1]):
            print(f"    {res.per(n):6.2f}  {sql}")


if __name__ == "__main__":
    main(sys.argv[1:])
