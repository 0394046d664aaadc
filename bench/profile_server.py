"""Where the server's time goes under the ``throughput`` load: the API server runs in this
process (uvicorn in a thread, as ``noetl server start`` runs it) under the all-thread CPU
profile, with two ``noetl worker start`` subprocesses on a scratch PostgreSQL database.

``python -m bench.profile_server [executions]`` prints Markdown."""

from __future__ import annotations

import cProfile
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench import playbooks
from bench.cluster import Cluster
from bench.distributed import _wait_terminal
from bench.profile import TIMER, WAITING, all_threads, by_package, merged_rows, package_table
from bench.stores import scratch_postgres


def profile_server(executions: int = 100) -> dict[str, Any]:
    import uvicorn

    from noetl.api.app import create_app
    from noetl.store import open_store

    profiles: list[cProfile.Profile] = []
    main = cProfile.Profile(TIMER)
    with tempfile.TemporaryDirectory(prefix="noetl-prof-") as tmp, scratch_postgres() as url:
        cluster = Cluster(url, Path(tmp))
        store = open_store(url)
        server: uvicorn.Server | None = None
        thread: threading.Thread | None = None
        try:
            with all_threads(main, profiles):
                config = uvicorn.Config(create_app(url), host="127.0.0.1", port=cluster.port,
                                        log_level="warning", access_log=False)
                server = uvicorn.Server(config)
                thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
                thread.start()
                deadline = time.monotonic() + 30
                while not server.started:
                    if time.monotonic() > deadline or not thread.is_alive():
                        raise RuntimeError("in-process server did not start")
                    time.sleep(0.02)
                path = cluster.register(playbooks.sequential(5, "tp5"))
                cluster.start_worker(4)
                cluster.start_worker(4)
                _wait_terminal(store, [cluster.start(path)], 60)  # warm-up
                t = time.perf_counter()
                eids = [cluster.start(path) for _ in range(executions)]
                _wait_terminal(store, eids, 600)
                wall = time.perf_counter() - t
                cluster.stop_workers()
                server.should_exit = True
                thread.join(15)
        finally:
            cluster.close()
            store.close()
            if server is not None and thread is not None and thread.is_alive():
                server.should_exit = True
                thread.join(15)
    rows = merged_rows(main, profiles)
    return {"executions": executions, "steps": executions * 5, "wall": wall,
            "cpu": sum(r[2] for r in rows), "threads": len(profiles) + 1, "rows": rows,
            "packages": by_package(main, profiles)}


def markdown(p: dict[str, Any], top: int = 15) -> str:
    rows, cpu = p["rows"], p["cpu"] or 1.0
    lines = [f"Server process only (workers and PostgreSQL not included): {p['executions']} "
             f"executions × 5 steps through the API with 2 worker processes, {p['wall']:.2f} s "
             f"wall ({p['steps'] / p['wall']:.0f} steps/s under the profiler), {cpu:.2f} s "
             f"server CPU in {p['threads']} threads = {cpu / p['steps'] * 1000:.2f} ms CPU per "
             f"step (profiled).", "", *package_table(p["packages"]), "",
             "| function (own CPU) | calls | own s | share |", "|---|---:|---:|---:|"]
    for name, calls, tt, _ in sorted(rows, key=lambda r: -r[2])[:top]:
        lines.append(f"| `{name}` | {calls} | {tt:.3f} | {tt / cpu:.1%} |")
    lines += ["", "| NoETL function (cumulative CPU) | calls | cum s | share |",
              "|---|---:|---:|---:|"]
    ours = [r for r in rows if r[0].startswith("noetl/") and not r[0].endswith(WAITING)]
    for name, calls, _, ct in sorted(ours, key=lambda r: -r[3])[:top]:
        lines.append(f"| `{name}` | {calls} | {ct:.3f} | {ct / cpu:.1%} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    try:
        sys.stdout.write(markdown(profile_server(n)))
    except httpx.HTTPError as exc:
        sys.exit(f"server profile failed: {exc}")
