"""Step logs, inputs, lineage, Re-run and Resume in real Chromium, against a real server and
worker (subprocesses): what the UI shows is checked against what the API says."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from tests.steplogs import WRITES, WRITES_PATH
from tests.ui.conftest import Server, screenshot, wait_until
from tests.ui.test_ui import wait_status

DIVIDE = textwrap.dedent("""
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: ui_resume, path: tests/ui/resume}
    workload: {divisor: 0, marker: /nonexistent}
    workflow:
      - step: start
        type: python
        args: {marker: "{{ workload.marker }}"}
        code: |
          def main(marker):
              with open(marker, "a") as f:
                  f.write("start ran\\n")
              return 42
        next: [{step: divide}]
      - step: divide
        type: python
        args: {n: "{{ start }}", d: "{{ workload.divisor }}"}
        code: |
          def main(n, d):
              print(f"dividing {n} by {d}")
              return n / d
    """)


def _start(server: Server, path: str, args: dict[str, Any]) -> str:
    with server.client() as c:
        r = c.post("/api/run/playbook", json={"path": path, "args": args})
        r.raise_for_status()
        return str(r.json()["execution_id"])


def _shown(page: Any) -> str:
    """The execution the page shows (its hash; page.url can lag a same-document change)."""
    return str(page.evaluate("location.hash")).rsplit("/", 1)[-1]


def _lines(page: Any) -> list[tuple[str, str]]:
    return [tuple(x) for x in page.eval_on_selector_all(
        "[data-testid=step-logs] [data-testid=log-line]",
        "ns => ns.map(n => [n.dataset.stream, n.querySelector('.msg').textContent])")]


def test_step_panel_shows_stdout_stderr_logging_with_a_live_tail(
        page: Any, server: Server, tmp_path: Path) -> None:
    server.register(WRITES)
    gate = tmp_path / "gate"
    eid = _start(server, WRITES_PATH, {"gate": str(gate)})
    page.goto(f"{server.url}/#/executions/{eid}")
    page.click("[data-testid=graph-node][data-name='start']")
    wait_until(lambda: len(_lines(page)) == 3, 30, "the start step's three records")
    assert _lines(page) == [("stdout", "PRINTED-BY-STEP"), ("stderr", "STDERR-OF-STEP"),
                            ("log", "etl.load: LOGGED-BY-STEP 42")]
    tags = page.eval_on_selector_all("[data-testid=step-logs] .tag", "ns => ns.map(n => n.textContent)")
    assert tags == ["out", "err", "INFO"]
    with server.client() as c:
        api = c.get(f"/api/executions/{eid}/logs", params={"step": "start"}).json()["items"]
    assert [r["message"] for r in api] == ["PRINTED-BY-STEP", "STDERR-OF-STEP", "LOGGED-BY-STEP 42"]
    # a running step: what it printed so far shows while it still runs (heartbeats)
    page.click("[data-testid=graph-node][data-name='hold']")
    wait_until(lambda: _lines(page) == [("stdout", "BEFORE-GATE")], 30, "hold's first line, live")
    assert page.get_attribute("[data-testid=exec-status] .badge", "data-status") == "RUNNING"
    screenshot(page, "step-logs-live.png")
    gate.write_text("open")
    wait_until(lambda: _lines(page) == [("stdout", "BEFORE-GATE"), ("stdout", "AFTER-GATE")],
               30, "the tail to grow with the step's last line")
    wait_status(page, "COMPLETED")
    # a loop: every item's records, or one item's
    page.click("[data-testid=graph-node][data-name='each']")
    wait_until(lambda: _lines(page) == [("stdout", "ITEM-1"), ("stdout", "ITEM-2")], 15,
               "the loop's records")
    page.select_option("[data-testid=log-item]", "1")
    assert _lines(page) == [("stdout", "ITEM-2")]
    assert page.inner_text("[data-testid=log-count]") == "1 record"


RETRIES = textwrap.dedent("""
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: ui_retries, path: tests/ui/retries}
    workflow:
      - step: start
        type: python
        retry: {max_attempts: 2, initial_delay: 0}
        code: |
          def main():
              print("trying")
              raise RuntimeError("nope")
    """)


def test_a_retried_steps_records_say_their_attempt(page: Any, server: Server) -> None:
    server.register(RETRIES)
    eid = _start(server, "tests/ui/retries", {})
    page.goto(f"{server.url}/#/executions/{eid}")
    wait_status(page, "FAILED")
    page.click("[data-testid=graph-node][data-name='start']")
    wait_until(lambda: len(_lines(page)) == 2, 30, "both attempts' records")
    marks = page.eval_on_selector_all(
        "[data-testid=step-logs] [data-testid=log-line]",
        "ns => ns.map(n => n.querySelector('.att') ? n.querySelector('.att').textContent : '')")
    assert marks == ["", "#2"]


def test_resume_and_rerun_buttons_with_inputs_and_lineage(page: Any, server: Server,
                                                          tmp_path: Path) -> None:
    server.register(DIVIDE)
    marker = tmp_path / "marker.txt"
    old = _start(server, "tests/ui/resume", {"marker": str(marker)})
    page.goto(f"{server.url}/#/executions/{old}")
    wait_status(page, "FAILED")
    # the inputs it was started with
    page.wait_for_selector("[data-testid=exec-inputs]")
    assert '"marker"' in page.inner_text("[data-testid=exec-args]")
    assert '"divisor": 0' in page.inner_text("[data-testid=exec-workload]")
    wait_until(lambda: page.is_enabled("[data-testid=resume-button]"), 10, "Resume enabled")
    page.click("[data-testid=resume-button]")
    page.fill("[data-testid=overrides-input]", "not json")
    page.click("[data-testid=overrides-start]")
    assert "Overrides:" in page.inner_text("[data-testid=overrides-error]")
    page.fill("[data-testid=overrides-input]", '{"divisor": 2}')
    page.click("[data-testid=overrides-start]")
    wait_until(lambda: _shown(page) != old, 15, "the new execution's page")
    new = _shown(page)
    wait_status(page, "COMPLETED")
    assert not page.is_enabled("[data-testid=resume-button]")  # completed: nothing to resume
    origin = page.wait_for_selector("[data-testid=lineage-origin]")
    assert origin.get_attribute("data-kind") == "resume"
    assert f"resumed from {old}" in origin.inner_text()
    assert "reused 1 step: start" in page.inner_text("[data-testid=lineage-reused]")
    page.click("[data-testid=exec-inputs] summary")  # folded when there is lineage to show
    assert '"divisor": 2' in page.inner_text("[data-testid=exec-workload]")
    assert marker.read_text() == "start ran\n"  # the reused step did not run again
    with server.client() as c:
        assert c.get(f"/api/executions/{new}").json()["result"] == 21.0
    page.click("[data-testid=graph-node][data-name='divide']")
    wait_until(lambda: _lines(page) == [("stdout", "dividing 42 by 2")], 15, "divide's output")
    screenshot(page, "resumed.png")
    # back on the old one: the reverse link
    page.click(f"[data-testid=lineage-origin] a[href='#/executions/{old}']")
    derived = page.wait_for_selector("[data-testid=lineage-derived]")
    assert f"resumed as {new}" in derived.inner_text()
    assert derived.query_selector(".badge").get_attribute("data-status") == "COMPLETED"
    # Re-run: the same inputs, so it fails the same way
    page.click("[data-testid=rerun-button]")
    page.click("[data-testid=overrides-start]")
    wait_until(lambda: _shown(page) not in (old, new), 15, "the re-run's page")
    wait_status(page, "FAILED")
    origin = page.wait_for_selector("[data-testid=lineage-origin]")
    assert origin.get_attribute("data-kind") == "rerun" and f"re-run of {old}" in origin.inner_text()
    assert marker.read_text() == "start ran\nstart ran\n"  # a re-run reuses nothing
    assert page.is_enabled("[data-testid=resume-button]")  # FAILED: resumable
