"""What the PostgreSQL server spends per unit of an embedded scenario.

``python -m bench.pgserver [seq40|seq7|loop] [runs] [--callgrind DIR]`` (defaults seq40, 8)
runs the scenario embedded (``LocalRunner`` on a scratch database of
``NOETL_TEST_POSTGRES_URL``, idle polling off, as :mod:`bench.statements`) after warm-up
executions (:data:`WARM`: every statement prepared and on its generic plan), and prints per
unit (step, execution or item):

- **backend CPU**: the CPU time (user + kernel, ``/proc/<pid>/schedstat``, nanoseconds) of the
  scratch database's backend processes (the store's pool and its LISTEN connection): the
  server must run on this machine. It moves with the machine's load (caches shared with other
  work), less than wall time does;
- **WAL**: bytes of write-ahead log the server wrote meanwhile (server-wide: other work on
  the server adds to it).

``--callgrind DIR``: the server is a private one run under callgrind, whose output files are
``DIR/cg.<pid>`` and which dumps its counts whenever a backend calls
``pg_stat_clear_snapshot()``; each pool backend calls it before and after the measured runs,
and the instructions the backends executed in between are summed (user space only: the
kernel's share, the commit's ``fsync`` and the socket calls, is not counted; load-immune, a few
per cent between runs). A private server (port 55432, owner ``postgres``)::

    initdb -D /tmp/pgcg/data -A trust -U postgres   # then port = 55432, autovacuum = off
    valgrind --tool=callgrind --callgrind-out-file=/tmp/pgcg/cg.%p \\
        --dump-before=pg_stat_clear_snapshot postgres -D /tmp/pgcg/data
    NOETL_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:55432/postgres \\
        python -m bench.pgserver seq40 4 --callgrind /tmp/pgcg
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

WARM = 6  # executions before the measured ones


def _schedstat(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except OSError:
        return 0


def _dumped(directory: Path, pid: int, part: int) -> int:
    """Instructions of a backend's ``part``-th callgrind dump (waits for the file)."""
    f = directory / f"cg.{pid}.{part}"
    for _ in range(600):
        if f.exists():
            m = re.search(r"^summary: (\d+)", f.read_text(), re.M)
            if m:
                return int(m.group(1))
        time.sleep(0.1)
    raise RuntimeError(f"no callgrind dump {f}")


def _mark(pool: Any) -> list[int]:
    """Every idle pool connection's backend calls the marker; their pids."""
    pids = []
    for conn in list(pool._pool):
        conn.execute("SELECT pg_stat_clear_snapshot()", prepare=False)
        pids.append(int(conn.info.backend_pid))
    return pids


def measure(name: str = "seq40", runs: int = 8, callgrind: Path | None = None) -> list[str]:
    import psycopg

    from bench.instructions import scenario
    from bench.stores import scratch_postgres
    from noetl.dsl import parse_playbook
    from noetl.local import LocalRunner

    text, args, units, unit = scenario(name)
    pb = parse_playbook(text, "<bench>")
    n = runs * units
    with scratch_postgres() as url:
        db = url.rsplit("/", 1)[1]
        runner = LocalRunner(url, concurrency=4)
        runner.pool.poll_interval = 3600.0  # no idle polling: the engine wakes the threads

        def run_all(k: int) -> None:
            for _ in range(k):
                ex = runner.engine.start(pb, args=args)
                desc = runner.wait(ex.execution_id, timeout=3600, tick=3600)
                if desc["status"] != "COMPLETED":
                    raise RuntimeError(f"{name} ended {desc['status']}: {desc.get('error')}")

        with runner, psycopg.connect(url, autocommit=True) as admin:
            run_all(WARM)
            if callgrind is not None:
                pool = getattr(runner.store, "pool")  # noqa: B009 - PostgresStore's
                before = _mark(pool)
                run_all(runs)
                after = _mark(pool)
                total = sum(_dumped(callgrind, p, 2) for p in before)
                new = len(set(after) - set(before))
                return [f"{name} (embedded, postgres, {runs} runs), per {unit}:",
                        f"  server instructions  {total / n / 1e6:7.3f} M   "
                        f"({len(before)} pool backends"
                        + (f"; {new} opened during the runs, not counted)" if new else ")")]
            own = admin.info.backend_pid
            pids = [int(r[0]) for r in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                (db, own))]
            cpu0 = {p: _schedstat(p) for p in pids}
            lsn0 = admin.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
            run_all(runs)
            lsn1 = admin.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
            wal = admin.execute("SELECT pg_wal_lsn_diff(%s, %s)",
                                (lsn1[0] if lsn1 else None, lsn0[0] if lsn0 else None)).fetchone()
            cpu = sum(_schedstat(p) - c for p, c in cpu0.items())
    return [f"{name} (embedded, postgres, {runs} runs), per {unit}:",
            f"  backend CPU  {cpu / n / 1e3:8.1f} us   ({len(pids)} backends)",
            f"  WAL          {float(wal[0] if wal else 0) / n:8.0f} bytes (server-wide)"]


def main(argv: list[str]) -> None:
    cg = None
    if "--callgrind" in argv:
        i = argv.index("--callgrind")
        cg = Path(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    name = argv[0] if argv else "seq40"
    runs = int(argv[1]) if len(argv) > 1 else 8
    for line in measure(name, runs, cg):
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
