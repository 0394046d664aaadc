"""``cold``: ``noetl run seq7.yaml`` as a new process, wall time including Python start.

Hyperfine-like: each round runs every command once as a fresh process (interleaved, so load
from elsewhere on the machine falls on all of them alike), after warm-up rounds that are not
measured; the rows hold one value per round, so their median is the figure. CPU time (user +
system of the child, from ``getrusage(RUSAGE_CHILDREN)``) is recorded beside the wall time: on a
loaded machine it moves far less than the wall clock.

Bytecode is written and reused (``PYTHONDONTWRITEBYTECODE`` is removed from the children's
environment), as for any installed package; otherwise every run would compile the sources.

``python -m bench.cold [--rounds N] [NOETL ...]`` compares installs side by side (e.g. the
``.venv/bin/noetl`` of a checkout of the code before a change and of the code after it)."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench import playbooks
from bench.stats import Row, fmt

COLD_S = 0.15  # issue 16


def noetl_bin() -> str:
    exe = Path(sys.executable).parent / "noetl"
    return str(exe) if exe.exists() else "noetl"


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """(wall s, CPU s, stdout) of one fresh process; raises when it fails."""
    cpu, t = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    wall, cpu = time.perf_counter() - t, _children_cpu() - cpu
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return wall, cpu, proc.stdout


def _check_run(out: str) -> None:
    status = json.loads(out)["status"]
    if status != "COMPLETED":
        raise RuntimeError(f"noetl run ended {status}: {out[-2000:]}")


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "NOETL_HOME": str(home)}
    for var in ("NOETL_STORE_URL", "NOETL_SERVER_URL", "PYTHONDONTWRITEBYTECODE"):
        env.pop(var, None)
    return env


def _python_of(noetl: str) -> str:
    """The interpreter of a ``noetl`` console script (its ``#!`` line), for ``import`` rows."""
    first = Path(noetl).read_text(encoding="utf-8", errors="replace").splitlines()[0]
    return first[2:].strip() if first.startswith("#!") else sys.executable


def cold(tmp: Path, reps: int, noetls: list[str] | None = None, warmup: int = 2) -> list[Row]:
    """Rows for each ``noetl`` (default: this environment's): ``noetl run seq7.yaml --json``
    wall and CPU, ``import noetl.local`` wall; and the ``python -c pass`` baseline."""
    path = playbooks.write(tmp, "seq7", playbooks.SEQ7)
    noetls = [os.path.abspath(n) for n in noetls or [noetl_bin()]]
    base = Row("cold", "-", "`python -c pass` wall (baseline)", "s")
    per: list[tuple[list[list[str]], Row, Row, Row]] = []
    for i, exe in enumerate(noetls):
        label = "sqlite" if len(noetls) == 1 else f"sqlite [{exe}]"
        home = tmp / f"cold-home-{i}"
        home.mkdir(exist_ok=True)
        cmds = [[exe, "run", str(path), "--json"], [_python_of(exe), "-c", "import noetl.local"]]
        per.append((cmds,
                    Row("cold", label, "`noetl run seq7.yaml` wall", "s", target=COLD_S,
                        note="new process, store already created"),
                    Row("cold", label, "`noetl run seq7.yaml` CPU (user+sys)", "s"),
                    Row("cold", label, "`python -c 'import noetl.local'` wall", "s")))
    envs = [_env(tmp / f"cold-home-{i}") for i in range(len(noetls))]
    for rnd in range(warmup + reps):  # warm-up: creates the store, writes the bytecode
        measured = rnd >= warmup
        for (cmds, wall, cpu, imp), env in zip(per, envs, strict=True):
            took, used, out = timed(cmds[0], env, tmp)
            _check_run(out)
            took_imp = timed(cmds[1], env, tmp)[0]
            if measured:
                wall.values.append(took)
                cpu.values.append(used)
                imp.values.append(took_imp)
        took_base = timed([sys.executable, "-c", "pass"], envs[0], tmp)[0]
        if measured:
            base.values.append(took_base)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    rows = [r for _, *trio in per for r in trio]
    rows[0].note += f"; load average {load:.2f} at the end"
    return [*rows, base]


def main(argv: list[str] | None = None) -> int:
    import tempfile

    from bench.report import markdown_table

    ap = argparse.ArgumentParser(prog="python -m bench.cold", description=__doc__.split("\n")[0])
    ap.add_argument("noetl", nargs="*", help="noetl console scripts to compare "
                                             "(default: this environment's)")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="noetl-cold-") as tmp:
        rows = cold(Path(tmp), args.rounds, args.noetl or None)
    sys.stdout.write(markdown_table(rows))
    if len(args.noetl) > 1:
        first, *others = [r for r in rows if r.metric.endswith("wall") and "run" in r.metric]
        for r in others:
            if first.median and r.median:
                sys.stdout.write(f"\n{r.store}: {fmt(r.median / first.median)}× the first\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
