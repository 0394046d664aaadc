"""CPU instructions per step of ``seq40`` (embedded, SQLite), counted by valgrind's callgrind.

Wall-clock figures on a shared 2-core machine vary by ±20 % with the load from elsewhere; an
instruction count does not (it varies by well under 1 % between runs), so it compares two
commits, or two machines, fairly. The count is the difference of two runs of one process
under callgrind: a warm-up execution alone, then the warm-up and ``runs`` more; so start-up,
imports and the warm-up (template and plan caches) cancel out, and what is left is
``runs × 40`` steps of the engine, the worker thread and SQLite, all threads counted.

``python -m bench.instructions [runs]`` (default 5; needs ``valgrind``; about a minute).
It prints instructions per step (millions). The code measured is that of the current
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
from pathlib import Path

STEPS = 40


def _inner(runs: int) -> None:
    from bench import playbooks
    from bench.stores import sqlite_url
    from noetl.dsl import parse_playbook
    from noetl.local import LocalRunner

    pb = parse_playbook(playbooks.sequential(STEPS, "seq40"), "<bench>")
    with tempfile.TemporaryDirectory(prefix="noetl-instr-") as tmp:
        runner = LocalRunner(sqlite_url(Path(tmp)), concurrency=4)
        # no polling while idle (the engine wakes the threads and the waiter): what valgrind's
        # slowness, and the machine's load, would otherwise add to the count
        runner.pool.poll_interval = 3600.0
        with runner:
            for _ in range(runs + 1):  # the first is the warm-up
                ex = runner.engine.start(pb)
                desc = runner.wait(ex.execution_id, timeout=3600, tick=3600)
                if desc["status"] != "COMPLETED":
                    raise RuntimeError(f"seq40 ended {desc['status']}: {desc.get('error')}")


def _count(runs: int, tmp: Path) -> int:
    out = tmp / f"callgrind.{runs}.out"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
           sys.executable, str(Path(__file__).resolve()), "--inner", str(runs)]
    path = os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": path})
    m = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
    if m is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(m.group(1))


def per_step(runs: int = 5) -> float:
    """Instructions per step of seq40 (embedded, SQLite)."""
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="noetl-cg-") as name:
        tmp = Path(name)
        base = _count(0, tmp)
        total = _count(runs, tmp)
    return (total - base) / (runs * STEPS)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--inner":
        _inner(int(sys.argv[2]))
    else:
        n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
        print(f"seq40 (embedded, SQLite): {per_step(n) / 1e6:.3f} M instructions per step "
              f"({n} runs of {STEPS} steps)")
