"""The Schedules page in real Chromium against a real server subprocess: next fire times, the
last fire and its execution's status, pause/resume, a schedule's runs; each checked against the
API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import Server, _stop, screenshot, start_server, wait_until

TICK = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: ui/tick}
schedule:
  - interval: 1s
workflow:
  - step: start
    next: end
  - step: end
"""


@pytest.fixture
def sched_server(tmp_path: Path, browser: Any) -> Iterator[Server]:
    srv = start_server(tmp_path / "sched", workers=0)
    try:
        yield srv
    finally:
        _stop(srv.procs)


def test_schedules_page_shows_fires_and_pauses(browser: Any, sched_server: Server) -> None:
    server = sched_server
    server.register(TICK)
    with server.client() as c:
        (sched,) = c.get("/api/schedules").json()["items"]
    sid = sched["schedule_id"]
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{server.url}/#/schedules")
        row = page.locator(f"[data-testid=schedule-row][data-id='{sid}']")
        row.wait_for()
        assert "every 1s" in row.inner_text() and "ui/tick" in row.inner_text()
        assert row.locator("[data-testid=schedule-next] div").count() == 3
        # the server's scheduler fires it; the page shows the last fire and its status
        wait_until(lambda: "COMPLETED" in row.locator("[data-testid=schedule-last]").inner_text(),
                   15, "a completed fire on the page")
        with server.client() as c:
            api = c.get(f"/api/schedules/{sid}").json()
        assert api["last_status"] == "started" and api["last_execution_id"]

        row.locator("[data-testid=schedule-toggle]").click()
        wait_until(lambda: row.get_attribute("data-enabled") == "false", 10, "paused row")
        assert "paused" in row.locator("[data-testid=schedule-next]").inner_text()
        with server.client() as c:
            assert c.get(f"/api/schedules/{sid}").json()["enabled"] is False
        screenshot(page, "schedules-paused.png")

        row.locator("[data-testid=schedule-show-runs]").click()
        runs = page.locator("[data-testid=schedule-run]")
        runs.first.wait_for()
        with server.client() as c:
            api_runs = c.get(f"/api/schedules/{sid}/runs", params={"limit": 50}).json()["items"]
        wait_until(lambda: runs.count() == len(api_runs), 10, "every run listed")
        assert runs.first.get_attribute("data-outcome") == api_runs[0]["outcome"] == "started"

        row.locator("[data-testid=schedule-toggle]").click()
        wait_until(lambda: row.get_attribute("data-enabled") == "true", 10, "resumed row")
        with server.client() as c:
            assert c.get(f"/api/schedules/{sid}").json()["enabled"] is True
            c.post(f"/api/schedules/{sid}/pause")
    finally:
        ctx.close()
    assert not errors, errors
