"""An every-second schedule fired by three ``noetl server start`` processes sharing one
PostgreSQL database: every nominal second must start exactly one execution (no duplicate, none
missing), and the start must land within a second of the nominal time.

The playbook is a router (start → end), which completes in the transaction that starts it, so
what is measured is the scheduler (claim, start, advance), not workers. Lag = the execution's
``created_at`` − its nominal time, from ``schedule_run``; duplicates and missing seconds are
counted from the executions' own ``execution_started`` events.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.cluster import Cluster
from bench.stats import Row

LABEL = "postgres, 3 servers"
TICK = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: bench/tick}
workflow:
  - step: start
    next: end
  - step: end
"""


def _starts(pg_url: str) -> list[float]:
    import psycopg

    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT e.context FROM noetl.event e JOIN noetl.execution x ON x.execution_id = "
            "e.execution_id WHERE x.path = 'bench/tick' AND e.event_type = 'execution_started'"
        ).fetchall()
    return [float(json.loads(r[0])["trigger"]["nominal_at"]) for r in rows]


def every_second(pg_url: str, tmp: Path, seconds: int, servers: int = 3,
                 log: Callable[[str], None] = print) -> list[Row]:
    clusters = []
    try:
        for i in range(servers):
            sub = tmp / f"server{i}"
            sub.mkdir(parents=True, exist_ok=True)
            c = Cluster(pg_url, sub)
            c.env["NOETL_SCHEDULE_GRACE"] = "30"  # a late fire still runs (and counts as late)
            c.start_server()
            clusters.append(c)
        http = clusters[0].http
        http.post("/api/catalog/register", json={"content": TICK}).raise_for_status()
        r = http.post("/api/schedules", json={"path": "bench/tick", "interval": 1})
        r.raise_for_status()
        sid, first = r.json()["schedule_id"], float(r.json()["next_run_at"])
        last = first + seconds - 1
        log(f"schedules: every second on {servers} servers for {seconds} s")
        deadline = time.monotonic() + seconds + 60
        while True:
            runs = http.get(f"/api/schedules/{sid}/runs", params={"limit": 10000}).json()["items"]
            if any(x["nominal_at"] >= last for x in runs) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        clusters[-1].http.post(f"/api/schedules/{sid}/pause").raise_for_status()
        runs = http.get(f"/api/schedules/{sid}/runs", params={"limit": 10000}).json()["items"]
    finally:
        for c in clusters:
            c.close()
    window = [x for x in runs if first <= x["nominal_at"] <= last]
    lags = [float(x["lag"]) for x in window if x.get("lag") is not None]
    per_second = Counter(t for t in _starts(pg_url) if first <= t <= last)
    expected = [first + i for i in range(seconds)]
    missing = sum(1 for t in expected if per_second[t] == 0)
    duplicates = sum(n - 1 for n in per_second.values() if n > 1)
    other = Counter(x["outcome"] for x in window if x["outcome"] != "started")
    note = f"{len(per_second)} of {seconds} nominal seconds started" + (
        f"; other outcomes {dict(other)}" if other else "")
    return [
        Row("schedules", LABEL, "executions per nominal second", "", [float(per_second[t])
            for t in expected], target=1, note=note),
        Row("schedules", LABEL, "duplicate executions", "", [float(duplicates)], target=0),
        Row("schedules", LABEL, "missing nominal seconds", "", [float(missing)], target=0),
        Row("schedules", LABEL, "lag (start − nominal)", "s", lags, target=1.0,
            note="median of every fire; p95 beside it"),
    ]
