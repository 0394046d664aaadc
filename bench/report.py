"""Output: the machine, a Rich table for the terminal, Markdown for docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from bench.stats import HEADERS, Row, cells
from bench.stores import versions


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "?"


def code_version() -> str:
    """The commit measured, and whether the engine sources differ from it (shared checkout)."""
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, text=True,
                             capture_output=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=repo, text=True,
                               capture_output=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    if not sha:
        return "?"
    return sha + (f" + uncommitted changes in {len(dirty.splitlines())} file(s) under src/"
                  if dirty else "")


def machine() -> dict[str, str]:
    v = versions()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"CPUs (nproc)": str(os.cpu_count()), "CPU model": _cpu_model(), "memory": _memory(),
            "OS": f"{platform.system()} {platform.release()}",
            "Python": sys.version.split()[0], "SQLite": v["sqlite"],
            "PostgreSQL": v["postgresql"],
            "load average at start": " / ".join(f"{x:.2f}" for x in load),
            "code": code_version()}


def print_table(rows: list[Row]) -> None:
    """A Rich table on a terminal; the Markdown table when piped (readable at any width)."""
    if not sys.stdout.isatty():
        sys.stdout.write(markdown_table(rows))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title="NoETL benchmarks")
    for h in HEADERS:
        t.add_column(h, justify="right" if h in ("median", "p95", "n") else "left")
    for r in rows:
        c = cells(r)
        met = c[7]
        c[7] = {"yes": "[green]yes[/]", "no": "[red]no[/]"}.get(met, met)
        t.add_row(*c)
    Console().print(t)


def markdown_table(rows: list[Row]) -> str:
    out = ["| " + " | ".join(HEADERS) + " |",
           "|" + "|".join("---:" if h in ("median", "p95", "n") else "---" for h in HEADERS) + "|"]
    for r in rows:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells(r)) + " |")
    return "\n".join(out) + "\n"


def machine_markdown(info: dict[str, str]) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in info.items()) + "\n"
