"""How often PostgreSQL plans the statements of the throughput load, on a grown database.

A prepared statement runs on custom plans for its first five executions on a connection,
then on its cached generic plan, unless that plan's estimated cost exceeds a custom plan's
(plus a charge for planning): then it is planned again at every execution. Which way that goes
can depend on the tables' sizes, so this grows the database first.

``python -m bench.plancount [grow] [executions] [warm]`` (defaults 20,000, 50 and 30) runs the cluster of
``bench.distributed`` (server at its default processes, two HTTP workers) on a scratch
database of ``NOETL_TEST_POSTGRES_URL``, which must be a server with ``pg_stat_statements``
loaded (``shared_preload_libraries``; the CI server has not, so run a private one; the
extension is created in the scratch database)::

    initdb -D /tmp/pgp/data -A trust -U postgres
    # postgresql.conf: port = 55432, autovacuum = off,
    #   shared_preload_libraries = 'pg_stat_statements', pg_stat_statements.track_planning = on
    pg_ctl -D /tmp/pgp/data start
    NOETL_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:55432/postgres \\
        python -m bench.plancount

It gives the database a synthetic history of ``grow`` finished executions
(:func:`bench.history.add_history`: the tables hold what a server soon has), warms the
cluster up with ``warm`` throughput rounds (each pooled connection plans a statement five
times before it may keep a generic plan), resets the scratch database's statistics, runs the
throughput scenario (``executions`` × 5 steps, five times) and prints, per step of that
window, the statements' executions, plans and the server's planning and execution time (wall
time in the backends), the most planned first. Counts of plans do not move with the
machine's load; the times do."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import psycopg

from bench.distributed import Distributed
from bench.history import add_history
from bench.stores import scratch_postgres

REPS = 5


def main(argv: list[str]) -> None:
    grow = int(argv[0]) if argv else 20000
    executions = int(argv[1]) if len(argv) > 1 else 50
    warm = int(argv[2]) if len(argv) > 2 else 30
    with tempfile.TemporaryDirectory() as tmp, scratch_postgres() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            try:  # the view is per database (the library is the server's)
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                conn.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
            except psycopg.Error as exc:
                sys.exit(f"pg_stat_statements is not available on this server: {exc}")
        add_history(url, grow)
        with Distributed(url, Path(tmp), log=lambda _: None) as d:
            d.throughput(executions, warm)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database "
                             "WHERE datname = current_database()), 0)")
            rows = d.throughput(executions, REPS)
            with psycopg.connect(url, autocommit=True) as conn:
                stats = conn.execute(
                    "SELECT calls, plans, total_plan_time, total_exec_time, "
                    "left(regexp_replace(query, '\\s+', ' ', 'g'), 70) FROM pg_stat_statements "
                    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = "
                    "current_database()) ORDER BY plans DESC, calls DESC").fetchall()
    steps = executions * 5 * REPS
    print(f"throughput {rows[0].median:.0f} steps/s with {grow} executions of history; per step of "
          f"{steps} steps:")
    calls = sum(r[0] for r in stats)
    plans = sum(r[1] for r in stats)
    plan_ms = sum(r[2] for r in stats)
    exec_ms = sum(r[3] for r in stats)
    print(f"statements {calls / steps:.2f}, plans {plans / steps:.2f}, planning "
          f"{plan_ms / steps * 1000:.0f} us, executing {exec_ms / steps * 1000:.0f} us\n")
    print("| executions | plans | planning ms | executing ms | statement |")
    print("|---:|---:|---:|---:|---|")
    for c, p, pt, et, q in stats[:15]:
        print(f"| {c} | {p} | {pt:.1f} | {et:.1f} | `{q}` |")


if __name__ == "__main__":
    main(sys.argv[1:])
