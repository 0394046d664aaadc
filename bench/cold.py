"""``cold``: ``noetl run seq7.yaml`` as a new process, wall time including Python start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench import playbooks
from bench.stats import Row

COLD_S = 1.0


def noetl_bin() -> str:
    exe = Path(sys.executable).parent / "noetl"
    return str(exe) if exe.exists() else "noetl"


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    return time.perf_counter() - t, proc


def cold(tmp: Path, reps: int) -> list[Row]:
    path = playbooks.write(tmp, "seq7", playbooks.SEQ7)
    home = tmp / "cold-home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "NOETL_HOME": str(home)}
    env.pop("NOETL_STORE_URL", None)
    cmd = [noetl_bin(), "run", str(path), "--json"]
    row = Row("cold", "sqlite", "`noetl run seq7.yaml` wall", "s", target=COLD_S,
              note="new process, store already created")
    base = Row("cold", "-", "`python -c pass` wall (baseline)", "s")
    for i in range(reps + 1):  # the first run creates the store (not measured)
        took, proc = _timed(cmd, env, tmp)
        if proc.returncode != 0:
            raise RuntimeError(f"noetl run failed ({proc.returncode}): {proc.stderr[-2000:]}")
        status = json.loads(proc.stdout)["status"]
        if status != "COMPLETED":
            raise RuntimeError(f"noetl run ended {status}: {proc.stdout[-2000:]}")
        if i:
            row.values.append(took)
            base.values.append(_timed([sys.executable, "-c", "pass"], env, tmp)[0])
    return [row, base]
