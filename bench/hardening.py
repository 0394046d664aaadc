"""Issue 13's timing targets: ``validate`` (an 8,000- and a 40,000-step playbook validated and
planned in ≤ 1 s and ≤ 5 s) and ``health`` (``/health`` answers in < 100 ms while a hostile
template is being rendered: a real ``noetl server start`` on SQLite, a render that runs until
its time limit, ``/health`` probed meanwhile)."""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from pathlib import Path

import httpx

from bench import validate as validate_mod
from bench.cluster import free_port, stop_process
from bench.cold import noetl_bin
from bench.stats import Row

SIZES = {8_000: 1.0, 40_000: 5.0}
HEALTH_MS = 100.0
# nested loops that only end at the render time limit (NOETL_TEMPLATE_TIMEOUT)
SLOW_TEMPLATE = ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                 "{% endfor %}")
PB = ("apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: h, path: bench/h}\n"
      "workflow:\n  - step: start\n    type: noop\n")


def validate(reps: int) -> list[Row]:
    rows = []
    for n, target in SIZES.items():
        row = Row("validate", "-", f"{n:,}-step playbook: parse, validate, plan", "s",
                  target=target)
        cpu = []
        for _ in range(reps):
            m = validate_mod.measure(n)
            row.values.append(float(m["seconds"]))
            cpu.append(float(m["cpu_seconds"]))
        row.note = f"issue 13: linear in steps; CPU {statistics.median(cpu):.2f} s"
        rows.append(row)
    return rows


def health(tmp: Path, renders: int) -> list[Row]:
    """``renders`` hostile renders of 4 s each; /health probed from 0.5 s to 3.5 s of each."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "NOETL_HOME": str(tmp / "health-home"), "NOETL_TEMPLATE_TIMEOUT": "4"}
    env.pop("NOETL_API_TOKEN", None)
    log = open(tmp / "health-server.log", "wb")
    proc = subprocess.Popen([noetl_bin(), "server", "start", "--port", str(port), "--store",
                             f"sqlite:///{tmp / 'health.db'}", "--log-level", "warning"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    row = Row("health", "sqlite", "/health latency while a hostile template renders", "ms",
              target=HEALTH_MS, note="issue 13; the render holds a thread for 4 s")
    idle = Row("health", "sqlite", "/health latency, idle (baseline)", "ms")
    try:
        with httpx.Client(base_url=url, timeout=30) as c:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if c.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("server did not start: "
                                       + (tmp / "health-server.log").read_text()[-2000:])
                time.sleep(0.05)
            c.post("/api/catalog/register", json={"content": PB}).raise_for_status()
            eid = c.post("/api/run/playbook", json={"path": "bench/h"}).json()["execution_id"]
            for _ in range(50):
                t = time.perf_counter()
                c.get("/health").raise_for_status()
                idle.values.append((time.perf_counter() - t) * 1000)
            for _ in range(renders):
                row.values.extend(_probe_during_render(url, eid))
    finally:
        stop_process(proc)
        log.close()
    return [row, idle]


def _probe_during_render(url: str, eid: str) -> list[float]:
    answer: list[httpx.Response] = []

    def render() -> None:
        with httpx.Client(base_url=url, timeout=60) as r:
            answer.append(r.post("/api/context/render",
                                 json={"execution_id": eid, "template": SLOW_TEMPLATE}))

    t = threading.Thread(target=render)
    t0 = time.monotonic()
    t.start()
    times = []
    with httpx.Client(base_url=url, timeout=30) as h:
        h.get("/health")  # connection open
        while time.monotonic() - t0 < 3.5:
            s = time.perf_counter()
            h.get("/health").raise_for_status()
            if time.monotonic() - t0 > 0.5:
                times.append((time.perf_counter() - s) * 1000)
    alive = t.is_alive()
    t.join(60)
    if not alive or not answer or answer[0].status_code != 422 or "time limit" not in answer[0].text:
        raise RuntimeError(f"the hostile render did not run until its limit: {answer}")
    return times
