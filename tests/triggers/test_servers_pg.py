"""PostgreSQL only, real server subprocesses: an every-second schedule on three servers sharing
one database starts exactly one execution per nominal second, even when one server is killed
half-way; a server stopped and restarted follows the catch-up policy for the fires it missed."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.distributed.conftest import Cluster
from tests.helpers import wait_until as wait_for

pytestmark = pytest.mark.postgres
TICK = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: tick}
workflow:
  - step: start
    next: end
  - step: end
"""


@pytest.fixture
def cluster(fresh_pg_url: str, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(fresh_pg_url, tmp_path)
    try:
        yield c
    finally:
        c.stop_all()


def scheduled_starts(pg_url: str, path: str) -> list[dict[str, Any]]:
    """The trigger of every execution of ``path``, read from its execution_started event."""
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT e.context FROM noetl.event e JOIN noetl.execution x ON "
            "x.execution_id = e.execution_id WHERE x.path = %s AND "
            "e.event_type = 'execution_started'", (path,)).fetchall()
    return [json.loads(r[0])["trigger"] for r in rows]


def runs(url: str, sid: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{url}/api/schedules/{sid}/runs", params={"limit": 10000},
                          timeout=10).json()["items"])


def test_three_servers_fire_each_second_once(cluster: Cluster) -> None:
    env = {"NOETL_SCHEDULE_GRACE": "30"}  # a loaded machine is late, never "missed"
    urls = [cluster.server(n, env_extra=env) for n in ("a", "b", "c")]
    assert httpx.post(urls[0] + "/api/catalog/register", json={"content": TICK}).status_code \
        == 200
    sched = httpx.post(urls[1] + "/api/schedules", json={"path": "tick", "interval": 1}).json()
    sid, first = sched["schedule_id"], sched["next_run_at"]
    wait_for(lambda: time.time() > first + 4, 10, "four seconds of fires")
    cluster.kill("b", signal.SIGKILL)  # one server dies; the others go on
    wait_for(lambda: len([r for r in runs(urls[0], sid) if r["nominal_at"] >= first + 9]), 30,
             "ten seconds of fires")
    httpx.post(urls[2] + f"/api/schedules/{sid}/pause")
    got = runs(urls[0], sid)
    nominal = sorted(r["nominal_at"] for r in got)
    last = nominal[-1]
    assert nominal == [first + i for i in range(int(last - first) + 1)], nominal  # 0 missing
    assert {r["outcome"] for r in got} == {"started"}
    starts = scheduled_starts(cluster.pg_url, "tick")
    per_second = Counter(t["nominal_at"] for t in starts)
    assert sorted(per_second) == nominal and set(per_second.values()) == {1}  # 0 duplicates
    wait_for(lambda: all(r["status"] == "COMPLETED" for r in runs(urls[0], sid)), 20,
             "every fire's execution completed")


def test_restart_follows_the_catchup_policy(cluster: Cluster) -> None:
    env = {"NOETL_SCHEDULE_GRACE": "1"}
    url = cluster.server("s1", env_extra=env)
    httpx.post(url + "/api/catalog/register", json={"content": TICK})
    ids = {}
    for policy in ("skip", "one"):
        r = httpx.post(url + "/api/schedules", json={"path": "tick", "interval": 1,
                                                     "catchup": policy})
        ids[policy] = r.json()["schedule_id"]
    wait_for(lambda: all(len(runs(url, s)) >= 2 for s in ids.values()), 20, "first fires")
    cluster.kill("s1", signal.SIGTERM)
    stopped = time.time()
    wait_for(lambda: time.time() > stopped + 5, 10, "five seconds with no server")
    url = cluster.server("s2", env_extra=env)  # same database, a new process
    restarted = time.time()
    for policy, sid in ids.items():
        got = wait_for(lambda sid=sid: (lambda rs: rs if any(
            r["outcome"] == "started" and r["nominal_at"] > restarted for r in rs) else None)(
            runs(url, sid)), 20, f"fires after the restart ({policy})")
        by = {r["outcome"]: [x for x in got if x["outcome"] == r["outcome"]] for r in got}
        # one record for the whole time down: from the first second not run before the kill
        # to the last nominal second before the first claim's lateness bound (claim ≥ stopped
        # + 5 s, less the 1 s grace, less up to 1 s to the last whole second before it: ≥
        # stopped + 3), with catchup 'one' that second run once (caught_up) right after the
        # gap. Under load a fire later than the grace after the restart is a gap of its own,
        # recorded the same way.
        run_once = 1 if policy == "one" else 0
        down = [m for m in by["missed"] if m["nominal_at"] <= stopped + 1
                and (m["detail"]["last"] or m["nominal_at"]) + run_once >= stopped + 3]
        assert len(down) == 1, got
        gap = down[0]
        count = gap["detail"]["count"]
        assert count >= 3, gap  # about five seconds down, less the grace
        if policy == "one":  # the gap ran once, for its latest nominal time
            (caught,) = [c for c in by["caught_up"]
                         if c["nominal_at"] == gap["detail"]["last"] + 1]
            assert caught["execution_id"] and caught["detail"] == {"missed": count}
        else:
            assert "caught_up" not in by
        # every nominal second is accounted for exactly once: run, or inside a missed gap
        covered = Counter(r["nominal_at"] for r in got if r["outcome"] != "missed")
        for m in by["missed"]:
            first, last = m["nominal_at"], m["detail"]["last"] or m["nominal_at"]
            covered.update(first + i for i in range(int(last - first) + 1))
        lo, hi = min(covered), max(covered)
        assert sorted(covered) == [lo + i for i in range(int(hi - lo) + 1)]
        assert set(covered.values()) == {1}
