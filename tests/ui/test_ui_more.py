"""The UI with many events (responsiveness), sub-playbooks, credentials and the token prompt."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import Server, _stop, start_server, wait_until
from tests.ui.test_ui import exec_status, node_states, wait_status

BIG_LOOP = textwrap.dedent("""
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: ui_big_loop, path: tests/ui/big_loop}
    workload: {n: 2500}
    workflow:
      - step: start
        next: [{step: make}]
      - step: make
        type: python
        args: {n: "{{ workload.n }}"}
        code: |
          def main(n):
              return list(range(n))
        next: [{step: each}]
      - step: each
        type: iterator
        collection: "{{ make }}"
        element: x
        mode: async
        concurrency: 16
        task:
          type: python
          code: |
            def main(x):
                return x * 2
        next: [{step: total}]
      - step: total
        type: python
        args: {vals: "{{ each }}"}
        code: |
          def main(vals):
              return {"count": len(vals), "sum": sum(vals)}
    """)

CHILD = textwrap.dedent("""
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: ui_child, path: tests/ui/child}
    workload: {x: 1}
    workflow:
      - step: start
        next: [{step: double}]
      - step: double
        type: python
        args: {x: "{{ workload.x }}"}
        code: |
          def main(x):
              return {"doubled": x * 2}
    """)

PARENT = textwrap.dedent("""
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: ui_parent, path: tests/ui/parent}
    workflow:
      - step: start
        next: [{step: call}]
      - step: call
        type: playbook
        path: tests/ui/child
        args: {x: 21}
    """)


def _run(server: Server, path: str) -> str:
    with server.client() as c:
        r = c.post("/api/run/playbook", json={"path": path})
        r.raise_for_status()
        return str(r.json()["execution_id"])


def _wait_done(server: Server, eid: str, timeout: float) -> dict[str, Any]:
    return dict(wait_until(lambda: (d := server.execution(eid))["status"] in
                           ("COMPLETED", "FAILED", "CANCELLED") and d, timeout,
                           f"execution {eid} to finish", interval=0.2))


def test_loop_with_5000_events_page_stays_responsive(page: Any, server: Server) -> None:
    # This engine writes two events per loop item (action_started, action_completed), so
    # ~5,000 events take 2,500 items.
    server.register(BIG_LOOP)
    eid = _run(server, "tests/ui/big_loop")
    desc = _wait_done(server, eid, 240)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"] == {"count": 2500, "sum": 2500 * 2499}
    with server.client() as c:
        events = c.get(f"/api/executions/{eid}/events", params={"limit": 10000}).json()["items"]
    assert len(events) >= 5000, len(events)

    t0 = time.monotonic()
    page.goto(f"{server.url}/#/executions/{eid}")
    page.wait_for_selector("[data-testid=timeline-row]")
    first_rows = time.monotonic() - t0
    wait_until(lambda: page.inner_text("[data-testid=timeline-count]") == str(len(events)), 10,
               "every event in the timeline")
    all_events = time.monotonic() - t0
    wait_until(lambda: page.get_attribute("[data-testid=graph-node][data-name='each']", "data-loop")
               == "2500/2500", 5, "loop node count")
    print(f"\n2,500-item loop, {len(events)} events: first timeline rows after {first_rows:.2f} s, "
          f"all events after {all_events:.2f} s")
    assert first_rows < 5 and all_events < 8
    # the loop is one node with its count, not 2,500 nodes
    assert set(node_states(page)) == {"start", "make", "each", "total"}
    each = page.text_content("[data-testid=graph-node][data-name='each']") or ""
    assert "2500 / 2500" in each
    # virtualised: only the visible window of rows exists in the DOM
    rows = page.locator("[data-testid=timeline-row]").count()
    assert 0 < rows < 80, rows
    assert page.locator("[data-testid=timeline-row]").last.get_attribute("data-event") == \
        "execution_completed"
    # scrolling to the top renders the first events; the page answers quickly while doing it
    t1 = time.monotonic()
    page.eval_on_selector("[data-testid=timeline]", "b => { b.scrollTop = 0; }")
    wait_until(lambda: page.locator("[data-testid=timeline-row]").first.get_attribute("data-seq")
               == str(events[0]["seq"]), 3, "the first event after scrolling up")
    assert time.monotonic() - t1 < 3
    # the filter narrows thousands of rows to one step's events at once
    page.fill("[data-testid=timeline-filter]", "total")
    n_total = sum(1 for e in events if "total" in (e["node_name"] or "") or "total" in e["event_type"])
    wait_until(lambda: page.inner_text("[data-testid=timeline-count]") == f"{n_total} of {len(events)}",
               3, "filtered count")


def test_parent_and_child_executions_link_to_each_other(page: Any, server: Server) -> None:
    server.register(CHILD)
    server.register(PARENT)
    eid = _run(server, "tests/ui/parent")
    desc = _wait_done(server, eid, 60)
    assert desc["status"] == "COMPLETED", desc["error"]
    child_id = desc["children"][0]["execution_id"]
    page.goto(f"{server.url}/#/executions/{eid}")
    page.wait_for_selector("[data-testid=child]")
    page.click(f"[data-testid=child] a[href='#/executions/{child_id}']")
    page.wait_for_url(f"**/#/executions/{child_id}")
    wait_status(page, "COMPLETED")
    assert page.inner_text("[data-testid=exec-title]").startswith("tests/ui/child")
    page.click("[data-testid=graph-node][data-name='double']")
    assert '"doubled": 42' in page.inner_text("[data-testid=step-result]")
    page.click("[data-testid=parent-link] a")
    page.wait_for_url(f"**/#/executions/{eid}")
    wait_until(lambda: exec_status(page) == "COMPLETED"
               and page.inner_text("[data-testid=exec-title]").startswith("tests/ui/parent"), 5,
               "the parent page")


def test_credentials_page_lists_names_never_values(page: Any, server: Server) -> None:
    secret = "hunter2-do-not-show"
    with server.client() as c:
        r = c.post("/api/credentials", json={"name": "pg_local", "type": "postgres",
                                             "data": {"user": "app", "password": secret},
                                             "description": "local test database"})
        r.raise_for_status()
    bodies: list[str] = []
    page.on("response", lambda resp: bodies.append(resp.text()) if "/api/" in resp.url else None)
    page.goto(f"{server.url}/#/credentials")
    row = page.wait_for_selector("[data-testid=credential-row]")
    text = row.inner_text()
    assert "pg_local" in text and "postgres" in text and "local test database" in text
    assert secret not in page.content()
    assert bodies and not any(secret in b for b in bodies)


@pytest.fixture
def token_server(tmp_path: Path, browser: Any) -> Any:
    srv = start_server(tmp_path / "tok", workers=0, token="s3cret-token")
    try:
        yield srv
    finally:
        _stop(srv.procs)


def test_token_prompt_on_401_stores_token_in_session(browser: Any, token_server: Server) -> None:
    with token_server.client("s3cret-token") as c:
        c.post("/api/catalog/register", json={"content": CHILD}).raise_for_status()
        assert httpx_status(token_server.url + "/api/executions") == 401
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        page.set_default_timeout(15000)
        page.goto(f"{token_server.url}/#/catalog")
        dialog = page.wait_for_selector("#token-dialog[open]")
        assert "asked for a bearer token" in dialog.inner_text()
        page.fill("#token-input", "wrong")
        page.click("#token-form button[type=submit]")
        wait_until(lambda: "rejected" in page.inner_text("#token-reason")
                   and page.is_visible("#token-dialog"), 5, "the token to be rejected")
        page.fill("#token-input", "s3cret-token")
        page.click("#token-form button[type=submit]")
        page.wait_for_selector("[data-testid=catalog-item][data-path='tests/ui/child']")
        assert page.evaluate("sessionStorage.getItem('noetl.token')") == "s3cret-token"
        # the token is kept for the session: a reload needs no prompt
        page.reload()
        page.wait_for_selector("[data-testid=catalog-item][data-path='tests/ui/child']")
        assert not page.is_visible("#token-dialog")
        assert "token set" in page.inner_text("#conn")
        # forgetting the token brings the prompt back
        page.click("[data-testid=forget-token]")
        page.wait_for_selector("#token-dialog[open]")
        assert page.evaluate("sessionStorage.getItem('noetl.token')") is None
    finally:
        ctx.close()


def httpx_status(url: str) -> int:
    import httpx

    return httpx.get(url, timeout=5).status_code


LAYOUT_CHECK = """
async () => {
  const { layout } = await import('/ui/js/graph.js');
  const report = [];
  const check = (g) => {
    const L = layout(g);
    const real = g.nodes.map((n) => n.name);
    const boxes = real.map((n) => ({ n, ...L.xy.get(n) }));
    let overlaps = 0;
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i]; const b = boxes[j];
      if (a.y === b.y && a.x < b.x + b.w && b.x < a.x + a.w) overlaps++;
    }
    const inside = boxes.every((b) => b.x >= 0 && b.x + b.w <= L.width && b.y >= 0 && b.y <= L.height);
    const downward = g.edges.filter((e) => !L.back.has(e) && e.from !== e.to)
      .every((e) => L.xy.get(e.to).y > L.xy.get(e.from).y);
    report.push({ overlaps, inside, downward, back: [...L.back].map((e) => `${e.from}>${e.to}`).sort(),
      startTop: L.xy.get(g.start).y === Math.min(...boxes.map((b) => b.y)) });
  };
  // a chain with a fan-out/fan-in, a loop back and a self-loop
  check({ start: 's', nodes: ['s', 'a', 'b', 'c', 'd', 'e'].map((name) => ({ name })),
    edges: [['s', 'a'], ['a', 'b'], ['a', 'c'], ['b', 'd'], ['c', 'd'], ['d', 'a'], ['d', 'd'], ['d', 'e'],
      ['s', 'e']].map(([from, to]) => ({ from, to })) });
  // a larger pseudo-random DAG: 80 nodes, edges only from lower to higher index
  let seed = 7;
  const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const nodes = Array.from({ length: 80 }, (_, i) => ({ name: `n${i}` }));
  const edges = [];
  for (let i = 1; i < 80; i++) {
    edges.push({ from: `n${Math.floor(rnd() * i)}`, to: `n${i}` });
    if (rnd() < 0.4) edges.push({ from: `n${Math.floor(rnd() * i)}`, to: `n${i}` });
  }
  const t0 = performance.now();
  check({ start: 'n0', nodes, edges });
  report.push({ ms: performance.now() - t0 });
  return report;
}
"""


def test_graph_layout_has_no_overlaps_and_flows_down(page: Any, server: Server) -> None:
    page.goto(f"{server.url}/#/credentials")
    small, big, timing = page.evaluate(LAYOUT_CHECK)
    assert small == {"overlaps": 0, "inside": True, "downward": True, "back": ["d>a", "d>d"],
                     "startTop": True}
    assert big == {"overlaps": 0, "inside": True, "downward": True, "back": [], "startTop": True}
    assert timing["ms"] < 500, timing


def test_catalog_versions_show_their_own_yaml_and_run_that_version(page: Any, server: Server) -> None:
    v1 = CHILD.replace("ui_child", "ui_versions").replace("tests/ui/child", "tests/ui/versions")
    v2 = v1.replace("workload: {x: 1}", "workload: {x: 5}")
    first = server.register(v1)["version"]
    second = server.register(v2)["version"]
    assert second == first + 1
    page.goto(f"{server.url}/#/catalog?path=tests/ui/versions")
    page.wait_for_selector("[data-testid=yaml]")
    assert "workload: {x: 5}" in page.inner_text("[data-testid=yaml]")  # the latest by default
    page.select_option("[data-testid=version-select]", str(first))
    wait_until(lambda: "workload: {x: 1}" in page.inner_text("[data-testid=yaml]"), 5, "v1 YAML")
    assert f"version={first}" in page.url
    assert page.input_value("[data-testid=run-args]") == '{\n  "x": 1\n}'  # v1's workload
    page.click("[data-testid=run-button]")
    page.wait_for_url("**/#/executions/*")
    wait_status(page, "COMPLETED")
    eid = page.url.rsplit("/", 1)[-1]
    desc = server.execution(eid)
    assert desc["version"] == str(first) and desc["result"] == {"doubled": 2}
