"""The Celery client of ``make bench-peers``, run with bench/.peers-venv's Python.

Reads one JSON request per line on stdin and answers each with one JSON line on stdout:
``{"workload": "ping"}`` waits until a worker answers; ``seq`` (``steps``) times a chain of
``steps`` tasks; ``map`` (``items``) a chord of ``items`` tasks and a sum; ``throughput``
(``runs``, ``steps``, ``starters``) ``runs`` chains of ``steps`` tasks submitted together from
``starters`` threads. Times are wall-clock seconds from the first ``apply_async`` until the
client holds every result (as NoETL's figures run from the first request to its last
``execution_completed``). Each result is checked."""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from celery import chain, chord
from celery.result import ResultSet

from bench.celery_app import app, item, step, total

TIMEOUT = 600


def _chain(steps: int) -> Any:
    return chain(*[step.s(i=i) for i in range(steps)])


def seq(steps: int) -> dict[str, Any]:
    t = time.time()
    out = _chain(steps).apply_async().get(timeout=TIMEOUT)
    took = time.time() - t
    assert out == {"i": steps - 1, "ok": True}, out
    return {"seconds": took, "requested": t}


def map_reduce(items: int) -> dict[str, Any]:
    t = time.time()
    out = chord(item.s(x) for x in range(items))(total.s()).get(timeout=TIMEOUT)
    took = time.time() - t
    assert out == {"sum": items * (items + 1) // 2, "count": items}, out
    return {"seconds": took}


def throughput(runs: int, steps: int, starters: int) -> dict[str, Any]:
    t = time.time()
    with ThreadPoolExecutor(starters) as pool:
        results = list(pool.map(lambda _: _chain(steps).apply_async(), range(runs)))
    outs = ResultSet(results).join(timeout=TIMEOUT)
    took = time.time() - t
    assert outs == [{"i": steps - 1, "ok": True}] * runs
    return {"seconds": took, "steps_per_s": runs * steps / took}


def ping(timeout: float = 60) -> dict[str, Any]:
    """Wait for a worker; then count the workers answering on this broker (within 1 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.control.ping(timeout=0.5):
            return {"workers": len(app.control.ping(timeout=1.0))}
    raise TimeoutError(f"no Celery worker answered within {timeout} s")


def versions() -> dict[str, Any]:
    import celery
    import kombu
    import redis

    client = app.backend.client
    server = client.info("server")["redis_version"]
    conf = {**client.config_get("appendonly"), **client.config_get("save")}
    return {"versions": f"Celery {celery.__version__}, kombu {kombu.__version__}, redis-py "
                        f"{redis.__version__}, Redis server {server} (appendonly "
                        f"{conf.get('appendonly')!r}, save {conf.get('save')!r})"}


def handle(req: dict[str, Any]) -> dict[str, Any]:
    w = req["workload"]
    if w == "ping":
        return ping()
    if w == "versions":
        return versions()
    if w == "seq":
        return seq(int(req["steps"]))
    if w == "map":
        return map_reduce(int(req["items"]))
    if w == "throughput":
        return throughput(int(req["runs"]), int(req["steps"]), int(req.get("starters", 8)))
    raise ValueError(f"unknown workload {w!r}")


def main() -> int:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = handle(json.loads(line))
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
