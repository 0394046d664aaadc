"""Schedules through a real server on SQLite: the server's own loop fires them; the API adds,
lists (with next fire times), pauses, resumes, deletes and shows each schedule's runs."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path

from tests.api.conftest import Running
from tests.helpers import wait_until as wait_for

TICKER = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: ticker}
workload: {n: 0}
workflow:
  - step: start
    next: end
  - step: end
"""


def test_schedule_lifecycle_on_a_server(serve: Callable[..., Running], sqlite_url: str,
                                        noetl_home: Path) -> None:
    api = serve(sqlite_url)
    c = api.client()
    assert c.post("/api/catalog/register", json={"content": TICKER}).status_code == 200
    r = c.post("/api/schedules", json={"path": "ticker", "interval": "1s", "args": {"n": 7}})
    assert r.status_code == 200, r.text
    sched = r.json()
    sid = sched["schedule_id"]
    assert sched["source"] == "api" and sched["timing"] == "every 1s"
    nf = sched["next_fires"]
    assert len(nf) == 3 and nf[1] - nf[0] == 1.0 and nf[0] == int(nf[0]) > time.time() - 1

    def started() -> list[dict[str, object]]:
        items = c.get(f"/api/schedules/{sid}/runs").json()["items"]
        done = [i for i in items if i["outcome"] == "started" and i["status"] == "COMPLETED"]
        return done if len(done) >= 3 else []

    runs = wait_for(started, 20, "three completed fires")
    nominal = sorted(float(str(r["nominal_at"])) for r in runs)
    assert len(set(nominal)) == len(nominal)  # one execution per nominal second
    assert all(b - a == 1.0 for a, b in itertools.pairwise(nominal)), nominal
    eid = runs[0]["execution_id"]
    trig = c.get(f"/api/executions/{eid}/trigger").json()["trigger"]
    assert trig["kind"] == "schedule" and trig["schedule_id"] == sid
    evs = c.get(f"/api/executions/{eid}/events").json()
    events = evs["items"]
    assert events[0]["context"]["workload"] == {"n": 7}

    listed = c.get("/api/schedules", params={"path": "ticker"}).json()["items"]
    assert [s["schedule_id"] for s in listed] == [sid]
    assert listed[0]["last_status"] == "started"
    assert listed[0]["last_execution_status"] == "COMPLETED"

    paused = c.post(f"/api/schedules/{sid}/pause").json()
    assert paused["enabled"] is False and paused["next_fires"] == [] \
        and paused["next_run_at"] is None
    resumed = c.post(f"/api/schedules/{sid}/resume").json()
    assert resumed["enabled"] is True and resumed["next_run_at"] > time.time() - 0.5

    metrics = c.get("/metrics").text
    assert 'noetl_schedule_fires_total{outcome="started"}' in metrics
    assert "noetl_schedule_lag_seconds_count" in metrics

    assert c.delete(f"/api/schedules/{sid}").status_code == 200
    assert c.get(f"/api/schedules/{sid}").status_code == 404
    assert c.get(f"/api/schedules/{sid}/runs").status_code == 404


def test_bad_schedule_requests(serve: Callable[..., Running], sqlite_url: str,
                               noetl_home: Path) -> None:
    c = serve(sqlite_url).client()
    c.post("/api/catalog/register", json={"content": TICKER})
    r = c.post("/api/schedules", json={"path": "nope", "interval": 60})
    assert r.status_code == 404 and "playbook 'nope' not found" in r.json()["detail"]
    r = c.post("/api/schedules", json={"path": "ticker", "cron": "0 2 * *"})
    assert r.status_code == 400 and "five fields" in r.json()["detail"]
    r = c.post("/api/schedules", json={"path": "ticker", "interval": 60, "overlap": "never"})
    assert r.status_code == 400 and "skip, allow, cancel_previous" in r.json()["detail"]
    r = c.post("/api/schedules", json={"path": "ticker", "interval": 60, "timezon": "UTC"})
    assert r.status_code == 422 and "timezon" in r.text
    r = c.post("/api/schedules", json={"path": "ticker", "cron": "* * * * *", "interval": 5})
    assert r.status_code == 400 and "exactly one of" in r.json()["detail"]
    assert c.get("/api/schedules/123").status_code == 404
    assert c.post("/api/schedules/abc/pause").status_code == 404
    assert c.get("/api/schedules").json()["items"] == []


def test_declared_schedules_are_listed_and_replaced(serve: Callable[..., Running],
                                                    sqlite_url: str, noetl_home: Path) -> None:
    c = serve(sqlite_url).client()
    with_schedule = TICKER.replace("workflow:", "schedule:\n  - cron: '0 2 * * *'\n"
                                   "    timezone: Europe/Berlin\nworkflow:")
    c.post("/api/catalog/register", json={"content": with_schedule})
    items = c.get("/api/schedules").json()["items"]
    assert [(s["source"], s["version"], s["cron"], s["timezone"]) for s in items] == [
        ("playbook", "1", "0 2 * * *", "Europe/Berlin")]
    assert len(items[0]["next_fires"]) == 3
    c.post("/api/catalog/register", json={"content": TICKER})  # version 2 declares none
    assert c.get("/api/schedules").json()["items"] == []
