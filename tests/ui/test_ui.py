"""The web UI in real headless Chromium against a real server and worker (subprocesses).

Each test drives the page as a person would (click, type, wait for what is shown) and checks
what the page shows against what the API says."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

from tests.ui.conftest import Server, screenshot, wait_until

CONTROL_FLOW = Path(__file__).resolve().parents[1] / "fixtures" / "noetl" / "control_flow_workbook" \
    / "control_flow_workbook.yaml"
CONTROL_FLOW_PATH = "tests/fixtures/playbooks/control_flow_workbook"

FAILING = textwrap.dedent("""
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: ui_failing, path: tests/ui/failing}
    workload: {divisor: 0}
    workflow:
      - step: start
        next: [{step: prepare}]
      - step: prepare
        type: python
        code: |
          def main():
              return {"numerator": 42}
        next: [{step: explode, args: {reason: "split {{ prepare.numerator }}"}}]
      - step: explode
        type: python
        args: {n: "{{ prepare.numerator }}", d: "{{ workload.divisor }}"}
        code: |
          def main(n, d):
              if d == 0:
                  raise ValueError(f"cannot split {n} into {d} parts")
              return n / d
        next: [{step: never}]
      - step: never
        type: python
        code: |
          def main():
              return 1
    """)

# A step that holds the execution RUNNING until the test creates a gate file.
GATED = textwrap.dedent("""
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: ui_gated, path: tests/ui/gated}
    workload: {gate: /nonexistent, gate2: /nonexistent, items: [1, 2, 3]}
    workflow:
      - step: start
        next: [{step: fetch}]
      - step: fetch
        type: python
        code: |
          def main():
              return {"rows": 3}
        next: [{step: wait_for_gate}, {step: side}]
      - step: side
        type: python
        code: |
          def main():
              return "side done"
        next: [{step: finish}]
      - step: wait_for_gate
        type: python
        args: {gate: "{{ workload.gate }}"}
        code: |
          import os, time
          def main(gate):
              deadline = time.time() + 60
              while not os.path.exists(gate):
                  if time.time() > deadline:
                      raise TimeoutError("gate never opened")
                  time.sleep(0.05)
              return {"gate": "open"}
        next: [{step: square}]
      - step: square
        type: iterator
        collection: "{{ workload.items }}"
        element: x
        mode: sequential
        task:
          type: python
          args: {x: "{{ x }}", gate: "{{ workload.gate2 }}"}
          code: |
            import os, time
            def main(x, gate):
                deadline = time.time() + 60
                while x == 3 and not os.path.exists(gate):
                    if time.time() > deadline:
                        raise TimeoutError("gate never opened")
                    time.sleep(0.05)
                return x * x
        next: [{step: finish}]
      - step: finish
        type: python
        code: |
          def main():
              return "finished"
    """)

COLOURS = {"COMPLETED": "rgb(215, 243, 222)", "FAILED": "rgb(251, 224, 222)",
           "RUNNING": "rgb(214, 230, 253)", "SKIPPED": "rgb(251, 251, 252)",
           "PENDING": "rgb(236, 238, 242)"}


def node_states(page: Any) -> dict[str, str]:
    return dict(page.eval_on_selector_all(
        "[data-testid=graph-node]", "ns => ns.map(n => [n.dataset.name, n.dataset.status])"))


def node_fill(page: Any, name: str) -> str:
    return str(page.eval_on_selector(f"[data-testid=graph-node][data-name='{name}'] rect.box",
                                     "r => getComputedStyle(r).fill"))


def exec_status(page: Any) -> str | None:
    el = page.query_selector("[data-testid=exec-status] .badge")
    return el.get_attribute("data-status") if el else None


def wait_status(page: Any, status: str, timeout: float = 30) -> None:
    wait_until(lambda: exec_status(page) == status, timeout, f"execution status {status}")


def run_from_catalog(page: Any, server: Server, path: str, args: str | None = None) -> str:
    page.goto(f"{server.url}/#/catalog")
    page.click(f"[data-testid=catalog-item][data-path='{path}']")
    page.wait_for_selector("[data-testid=run-button]")
    if args is not None:
        page.fill("[data-testid=run-args]", args)
    page.click("[data-testid=run-button]")
    page.wait_for_url(re.compile(r".*#/executions/\d+$"))
    return page.url.rsplit("/", 1)[-1]


def test_catalog_run_control_flow_reaches_all_green(page: Any, server: Server) -> None:
    server.register(CONTROL_FLOW.read_text())
    page.goto(f"{server.url}/")
    page.wait_for_selector(f"[data-testid=catalog-item][data-path='{CONTROL_FLOW_PATH}']")
    # search filters the list
    page.fill("[data-testid=catalog-search]", "no-such-playbook")
    assert page.locator("[data-testid=catalog-item]").count() == 0
    page.fill("[data-testid=catalog-search]", "control_flow")
    page.click(f"[data-testid=catalog-item][data-path='{CONTROL_FLOW_PATH}']")
    yaml = page.wait_for_selector("[data-testid=yaml]")
    assert "def main(temperature_c):" in yaml.inner_text()
    # highlighted: keys and Jinja templates get their own spans
    assert page.locator("[data-testid=yaml] .y-key", has_text="workflow").count() == 1
    assert page.locator("[data-testid=yaml] .y-tpl", has_text="{{ workload.temperature_c }}").count() == 1
    with server.client() as c:
        versions = c.get(f"/api/catalog/{CONTROL_FLOW_PATH}").json()["versions"]
    assert page.locator("[data-testid=version-select] option").count() == len(versions) >= 1
    screenshot(page, "catalog.png")

    page.fill("[data-testid=run-args]", "not json")
    page.click("[data-testid=run-button]")
    assert "Invalid JSON" in page.inner_text("[data-testid=run-message]")

    page.fill("[data-testid=run-args]", '{"temperature_c": 31}')
    page.click("[data-testid=run-button]")
    page.wait_for_url(re.compile(r".*#/executions/\d+$"))
    eid = page.url.rsplit("/", 1)[-1]
    wait_status(page, "COMPLETED")
    api = server.execution(eid)
    assert api["status"] == "COMPLETED"
    # the graph shows every step; executed ones green, the branch not taken skipped
    wait_until(lambda: node_states(page).get("end") == "COMPLETED", 10, "end node completed")
    states = node_states(page)
    assert states == {"start": "COMPLETED", "eval_flag": "COMPLETED", "hot_path": "COMPLETED",
                      "hot_task_a": "COMPLETED", "hot_task_b": "COMPLETED", "end": "COMPLETED",
                      "cold_path": "SKIPPED", "cold_task": "SKIPPED"}
    assert states == {n: s["status"] for n, s in api["steps"].items()}
    assert node_fill(page, "hot_task_a") == COLOURS["COMPLETED"]
    assert node_fill(page, "cold_task") == COLOURS["SKIPPED"]
    dash = page.eval_on_selector("[data-testid=graph-node][data-name='cold_task'] rect.box",
                                 "r => getComputedStyle(r).strokeDasharray")
    assert dash not in ("none", "")
    assert page.locator("svg.dag path.edge").count() == 9  # one per edge of the plan
    # open a step: its result as the API has it
    page.click("[data-testid=graph-node][data-name='eval_flag']")
    assert page.inner_text("[data-testid=step-name]") == "eval_flag"
    result = page.inner_text("[data-testid=step-result]")
    assert '"is_hot": true' in result and '"message": "hot"' in result
    # the step as written in the playbook, highlighted
    definition = page.inner_text("[data-testid=step-definition]")
    assert definition.startswith("- step: eval_flag") and "name: compute_flag" in definition
    assert "hot_path" in definition and "cold_task" not in definition
    page.click("[data-testid=graph-node][data-name='hot_task_b']")
    assert '"who": "B"' in page.inner_text("[data-testid=step-result]")
    assert page.inner_text("[data-testid=step-attempts]") == "1"
    # the timeline holds every event of the execution, in order
    with server.client() as c:
        events = c.get(f"/api/executions/{eid}/events").json()["items"]
    wait_until(lambda: page.inner_text("[data-testid=timeline-count]") == str(len(events)), 5,
               "the timeline to hold every event")
    last = page.locator("[data-testid=timeline-row]").last
    assert last.get_attribute("data-event") == events[-1]["event_type"] == "execution_completed"
    assert page.is_disabled("[data-testid=cancel-button]")


def test_failed_run_shows_failed_step_in_red_with_error(page: Any, server: Server) -> None:
    server.register(FAILING)
    eid = run_from_catalog(page, server, "tests/ui/failing")
    wait_status(page, "FAILED")
    wait_until(lambda: node_states(page).get("explode") == "FAILED", 10, "explode node failed")
    states = node_states(page)
    assert states["prepare"] == "COMPLETED" and states["never"] == "SKIPPED"
    assert node_fill(page, "explode") == COLOURS["FAILED"]
    assert node_fill(page, "prepare") == COLOURS["COMPLETED"]
    head_error = page.inner_text("[data-testid=exec-error]")
    assert "ValueError: cannot split 42 into 0 parts" in head_error
    page.click("[data-testid=graph-node][data-name='explode']")
    assert "ValueError: cannot split 42 into 0 parts" in page.inner_text("[data-testid=step-error]")
    tb = page.inner_text("[data-testid=step-error-traceback]")
    assert "Traceback" in tb and "raise ValueError" in tb
    assert '"reason": "split 42"' in page.inner_text("[data-testid=step-input]")  # edge args
    api = server.execution(eid)
    assert api["error"]["message"] in head_error
    # the failing event is marked in the timeline and opens with its stack trace
    page.fill("[data-testid=timeline-filter]", "failed")
    bad = page.locator("[data-testid=timeline-row].bad").first
    bad.click()
    assert "cannot split 42 into 0 parts" in page.inner_text("[data-testid=event-detail]")
    screenshot(page, "execution-failed.png")


def test_executions_list_shows_runs_with_counts_and_filters(page: Any, server: Server) -> None:
    server.register(CONTROL_FLOW.read_text())
    server.register(FAILING)
    with server.client() as c:
        # enough runs for more than one page of two, and one that fails
        for path, status in [(CONTROL_FLOW_PATH, "COMPLETED")] * 3 + [("tests/ui/failing", "FAILED")]:
            eid = c.post("/api/run/playbook", json={"path": path}).json()["execution_id"]
            wait_until(lambda e=eid, s=status: c.get(f"/api/executions/{e}").json()["status"] == s,
                       30, f"a {path} run")
        listing = c.get("/api/executions", params={"limit": 100}).json()
    by_status: dict[str, list[str]] = {}
    for x in listing["items"]:
        by_status.setdefault(x["status"], []).append(x["execution_id"])
    assert len(listing["items"]) <= 25, "all runs fit on the first page of the list"
    page.goto(f"{server.url}/#/executions")
    page.wait_for_selector("[data-testid=execution-row]")
    rows = dict(page.eval_on_selector_all(
        "[data-testid=execution-row]", "rs => rs.map(r => [r.dataset.id, r.dataset.status])"))
    for status, ids in by_status.items():
        for i in ids:
            if status in ("COMPLETED", "FAILED"):
                assert rows[i] == status
    for status, n in listing["counts"].items():
        assert page.get_attribute(f"[data-testid=count-{status}]", "data-count") == str(n)
    screenshot(page, "executions.png")
    # filter by status through the UI: only failed runs remain
    page.select_option("[data-testid=status-filter]", "FAILED")
    wait_until(lambda: set(page.eval_on_selector_all(
        "[data-testid=execution-row]", "rs => rs.map(r => r.dataset.status)")) == {"FAILED"}, 5,
        "only FAILED rows")
    assert page.locator("[data-testid=execution-row]").count() == len(by_status["FAILED"])
    assert "status=FAILED" in page.url
    # search by (part of) the playbook path
    page.select_option("[data-testid=status-filter]", "")
    page.fill("[data-testid=search-filter]", "control_flow_work")
    wait_until(lambda: {r for r in page.eval_on_selector_all(
        "[data-testid=execution-row] td:nth-child(2)", "ts => ts.map(t => t.textContent)")}
        == {CONTROL_FLOW_PATH}, 5, "only control_flow rows")
    # pages of two, newest first, the same as the API's pages
    with server.client() as c:
        first = [x["execution_id"] for x in c.get("/api/executions", params={"limit": 2}).json()["items"]]
        second = [x["execution_id"] for x in c.get("/api/executions",
                                                   params={"limit": 2, "offset": 2}).json()["items"]]
    shown = "rs => rs.map(r => r.dataset.id)"
    page.goto(f"{server.url}/#/executions?limit=2")
    wait_until(lambda: page.eval_on_selector_all("[data-testid=execution-row]", shown) == first, 5,
               "the first page")
    assert page.is_disabled("[data-testid=prev-page]")
    assert page.inner_text("[data-testid=page-info]") == f"1–2 of {listing['total']}"
    page.click("[data-testid=next-page]")
    wait_until(lambda: page.eval_on_selector_all("[data-testid=execution-row]", shown) == second, 5,
               "the second page")
    assert page.inner_text("[data-testid=page-info]").startswith("3–4 of")
    page.click("[data-testid=prev-page]")
    wait_until(lambda: page.eval_on_selector_all("[data-testid=execution-row]", shown) == first, 5,
               "back to the first page")
    # a row opens its execution
    page.click("[data-testid=execution-row] a")
    page.wait_for_selector("[data-testid=graph-node]")


def test_live_execution_updates_graph_and_timeline_then_completes(page: Any, server: Server,
                                                                  tmp_path: Path) -> None:
    server.register(GATED)
    gate, gate2 = tmp_path / "gate", tmp_path / "gate2"
    eid = run_from_catalog(page, server, "tests/ui/gated", f'{{"gate": "{gate}", "gate2": "{gate2}"}}')
    wait_until(lambda: node_states(page).get("wait_for_gate") == "RUNNING", 20, "gate step running")
    wait_until(lambda: node_states(page).get("side") == "COMPLETED", 10, "side branch completed")
    assert exec_status(page) == "RUNNING"
    states = node_states(page)
    assert states["square"] == "PENDING" and states["finish"] == "PENDING"
    assert node_fill(page, "wait_for_gate") == COLOURS["RUNNING"]
    assert node_fill(page, "square") == COLOURS["PENDING"]
    assert page.is_enabled("[data-testid=cancel-button]")
    page.click("[data-testid=graph-node][data-name='wait_for_gate']")
    assert page.get_attribute("[data-testid=step-detail] .badge", "data-status") == "RUNNING"
    before = int(page.inner_text("[data-testid=timeline-count]"))
    screenshot(page, "execution-running.png")
    gate.write_text("open")
    # the loop runs items 1 and 2, then item 3 waits: the node shows its live count
    wait_until(lambda: page.get_attribute("[data-testid=graph-node][data-name='square']", "data-loop")
               == "2/3", 10, "loop at 2 of 3")
    # (the engine reports a loop step QUEUED until it ends, even while its items run)
    assert node_states(page)["square"] in ("QUEUED", "RUNNING")
    assert "2 / 3" in (page.text_content("[data-testid=graph-node][data-name='square']") or "")
    page.click("[data-testid=graph-node][data-name='square']")
    wait_until(lambda: page.inner_text("[data-testid=step-loop]") == "2 / 3", 5, "step panel loop count")
    screenshot(page, "execution-loop-running.png")
    gate2.write_text("open")
    wait_status(page, "COMPLETED")
    wait_until(lambda: node_states(page).get("finish") == "COMPLETED", 10, "finish completed")
    assert page.get_attribute("[data-testid=graph-node][data-name='square']", "data-loop") == "3/3"
    # the timeline grew in place (incremental since_seq fetches, no reload)
    with server.client() as c:
        total = len(c.get(f"/api/executions/{eid}/events").json()["items"])
    wait_until(lambda: int(page.inner_text("[data-testid=timeline-count]")) == total, 5, "all events")
    assert total > before
    wait_until(lambda: page.inner_text("[data-testid=step-loop]") == "3 / 3", 5, "loop done")
    assert "[\n  1,\n  4,\n  9\n]" in page.inner_text("[data-testid=step-result]")


def test_cancel_button_cancels_a_running_execution(page: Any, server: Server, tmp_path: Path) -> None:
    server.register(GATED)
    gate = tmp_path / "gate"
    eid = run_from_catalog(page, server, "tests/ui/gated", f'{{"gate": "{gate}"}}')
    wait_until(lambda: node_states(page).get("wait_for_gate") == "RUNNING", 20, "gate step running")
    page.once("dialog", lambda d: d.accept())
    page.click("[data-testid=cancel-button]")
    try:
        wait_status(page, "CANCELLED")
    finally:
        gate.write_text("open")  # let the worker thread that ran the step finish
    api = server.execution(eid)
    assert api["status"] == "CANCELLED"
    assert page.is_disabled("[data-testid=cancel-button]")
    assert node_states(page)["square"] in ("SKIPPED", "CANCELLED", "PENDING")
    assert node_states(page) == {n: s["status"] for n, s in api["steps"].items()}
