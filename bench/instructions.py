"""CPU instructions per step of an embedded scenario, counted by valgrind's callgrind.

Wall-clock figures on a shared 2-core machine vary by ±20 % with the load from elsewhere; an
instruction count varies by about 1 % between runs, so it compares two commits, or two
machines, fairly. The count is the difference of two runs of one process under callgrind: a
warm-up execution alone, then the warm-up and ``runs`` more; so start-up, imports and the
warm-up (template and plan caches) cancel out, and what is left is ``runs`` executions (plan
compile, engine, worker threads, SQLite or the PostgreSQL client; not the PostgreSQL server)
in all the process's threads. Idle polling is switched off, so that valgrind's slowness, and
the machine's load, add nothing to the count.

``python -m bench.instructions [seq40|seq7|loop] [runs] [sqlite|postgres]`` (defaults seq40,
5, sqlite; needs ``valgrind``; about a minute). It prints millions of instructions per unit:
per step (seq40), per execution (seq7: five python steps, templated args, a ``when``), per
item (loop: 200 items, ``mode: async``, ``concurrency: 16``). The code measured is the current
directory's checkout (``bench`` and ``noetl`` imported from there), so the same file measures
an older commit: ``cd ../old && .venv/bin/python /path/to/bench/instructions.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LOOP_ITEMS = 200


def scenario(name: str) -> tuple[str, dict[str, Any] | None, int, str]:
    """(playbook text, args, units per execution, unit)."""
    from bench import playbooks

    if name == "seq40":
        return playbooks.sequential(40, "seq40"), None, 40, "step"
    if name == "seq7":
        return playbooks.SEQ7, None, 1, "execution"
    if name == "loop":
        return playbooks.loop(), {"n": LOOP_ITEMS}, LOOP_ITEMS, "item"
    raise SystemExit(f"unknown scenario {name!r} (seq40, seq7, loop)")


@contextmanager
def _store(kind: str, tmp: str) -> Iterator[str]:
    if kind == "postgres":
        from bench.stores import scratch_postgres

        with scratch_postgres() as url:
            yield url
    else:
        from bench.stores import sqlite_url

        yield sqlite_url(Path(tmp))


def _inner(name: str, runs: int, kind: str) -> None:
    from noetl.dsl import parse_playbook
    from noetl.local import LocalRunner

    text, args, _, _ = scenario(name)
    pb = parse_playbook(text, "<bench>")
    with tempfile.TemporaryDirectory(prefix="noetl-instr-") as tmp, _store(kind, tmp) as url:
        runner = LocalRunner(url, concurrency=4)
        runner.pool.poll_interval = 3600.0  # no idle polling: the engine wakes the threads
        with runner:
            for _ in range(runs + 1):  # the first is the warm-up
                ex = runner.engine.start(pb, args=args)
                desc = runner.wait(ex.execution_id, timeout=3600, tick=3600)
                if desc["status"] != "COMPLETED":
                    raise RuntimeError(f"{name} ended {desc['status']}: {desc.get('error')}")


def _count(name: str, runs: int, kind: str, tmp: Path) -> int:
    out = tmp / f"callgrind.{runs}.out"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
           sys.executable, str(Path(__file__).resolve()), "--inner", name, str(runs), kind]
    path = os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": path})
    m = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
    if m is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(m.group(1))


def per_unit(name: str = "seq40", runs: int = 5, kind: str = "sqlite") -> float:
    """Instructions per unit (step, execution or item) of an embedded scenario."""
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed (apt-get install valgrind)")
    units = scenario(name)[2]
    with tempfile.TemporaryDirectory(prefix="noetl-cg-") as tmp_name:
        tmp = Path(tmp_name)
        base = _count(name, 0, kind, tmp)
        total = _count(name, runs, kind, tmp)
    return (total - base) / (runs * units)


if __name__ == "__main__":
    if os.getcwd() not in sys.path:  # run as a file from another checkout: measure this one
        sys.path.insert(0, os.getcwd())
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        _inner(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        which = sys.argv[1] if len(sys.argv) > 1 else "seq40"
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 5
        store = sys.argv[3] if len(sys.argv) > 3 else "sqlite"
        unit = scenario(which)[3]
        print(f"{which} (embedded, {store}): {per_unit(which, n, store) / 1e6:.3f} M "
              f"instructions per {unit} ({n} runs)")
