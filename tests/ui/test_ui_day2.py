"""Day-two UI in real Chromium: zoom, fit and minimap on the graph with the running step kept in
view, the items of a loop, free-text search of executions, the wording fixes, and ``/docs``
rendering with no network beyond loopback."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import Server, _stop, screenshot, start_server, wait_until
from tests.ui.test_ui import node_states, wait_status

FANOUT = textwrap.dedent("""
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: ui_fanout, path: tests/ui/fanout}
    workflow:
      - step: start
        next: [{step: a}, {step: b}, {step: c}, {step: d}, {step: e}, {step: f}]
    """) + "".join(f"""  - step: {s}
    type: python
    code: "def main():\\n    return '{s}'"
    next: [{{step: join}}]
""" for s in "abcdef") + """  - step: join
    type: python
    code: "def main():\\n    return 'joined'"
"""

# start → s1 → s2 (waits for gate1) → s3 … s10 → s11 (waits for gate2) → end
GATE_CODE = """
        type: python
        args: {{gate: "{{{{ workload.{gate} }}}}"}}
        code: |
          import os, time
          def main(gate):
              deadline = time.time() + 60
              while not os.path.exists(gate):
                  if time.time() > deadline:
                      raise TimeoutError("gate never opened")
                  time.sleep(0.05)
              return "open"
"""
PLAIN_CODE = """
        type: python
        code: "def main():\\n    return 1"
"""


def _chain() -> str:
    text = textwrap.dedent("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: ui_chain, path: tests/ui/chain}
        workload: {gate1: /nonexistent, gate2: /nonexistent}
        workflow:
          - step: start
            next: [{step: s1}]
        """)
    for i in range(1, 12):
        body = GATE_CODE.format(gate="gate1" if i == 2 else "gate2") if i in (2, 11) else PLAIN_CODE
        nxt = f"s{i + 1}" if i < 11 else "end"
        text += f"  - step: s{i}" + textwrap.indent(textwrap.dedent(body), "    ") + \
            f"    next: [{{step: {nxt}}}]\n"
    return text + "  - step: end\n"


LOOPS = textwrap.dedent("""
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: ui_loops, path: tests/ui/loops}
    workload: {n: 60}
    workflow:
      - step: start
        next: [{step: squares}]
      - step: squares
        type: iterator
        collection: "{{ range(workload.n) | list }}"
        element: x
        task:
          type: python
          args: {x: "{{ x }}"}
          code: |
            def main(x):
                return x * x
        next: [{step: picky}]
      - step: picky
        type: iterator
        collection: [0, 1, 2, 3, 4, 5, 6]
        element: x
        task:
          type: python
          args: {x: "{{ x }}"}
          retry: {max_attempts: 2, initial_delay: 0, jitter: false}
          code: |
            def main(x):
                if x == 4:
                    raise ValueError(f"bad item {x}")
                return x * 10
    """)


ITEMS = "[data-testid=loop-item]"
INDEX_STATUS = "rs => rs.map(r => [r.dataset.index, r.dataset.status])"
INDEXES = "rs => rs.map(r => r.dataset.index)"


def _cell(index: int, testid: str) -> str:
    return f"{ITEMS}[data-index='{index}'] [data-testid={testid}]"


def _run(server: Server, path: str, args: dict[str, Any] | None = None) -> str:
    with server.client() as c:
        r = c.post("/api/run/playbook", json={"path": path, "args": args})
        r.raise_for_status()
        return str(r.json()["execution_id"])


def _rect(page: Any, selector: str) -> dict[str, float]:
    return dict(page.eval_on_selector(selector, "e => { const r = e.getBoundingClientRect(); "
                                                "return {x: r.x, y: r.y, w: r.width, h: r.height}; }"))


def _inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (inner["x"] >= outer["x"] - 0.5 and inner["y"] >= outer["y"] - 0.5
            and inner["x"] + inner["w"] <= outer["x"] + outer["w"] + 0.5
            and inner["y"] + inner["h"] <= outer["y"] + outer["h"] + 0.5)


def _node(name: str) -> str:
    return f"[data-testid=graph-node][data-name='{name}'] rect.box"


def _zoom(page: Any) -> float:
    return float(page.get_attribute("[data-testid=graph]", "data-zoom"))


def test_wide_fanout_fits_and_zooms_with_a_minimap(page: Any, server: Server) -> None:
    assert "- step: f\n    type: python" in FANOUT
    server.register(FANOUT)
    eid = _run(server, "tests/ui/fanout")
    page.goto(f"{server.url}/#/executions/{eid}")
    wait_status(page, "COMPLETED")
    names = ["start", "a", "b", "c", "d", "e", "f", "join"]
    stage = _rect(page, "[data-testid=graph-stage]")
    # the layout is wider than the panel, yet every step is in view: fitted, not clipped
    assert float(page.get_attribute("[data-testid=graph]", "data-width")) > stage["w"]
    assert all(_inside(_rect(page, _node(n)), stage) for n in names)
    assert _zoom(page) < 1
    assert page.get_attribute("[data-testid=graph-minimap]", "data-visible") == "false"
    fitted = _zoom(page)
    width_fitted = _rect(page, _node("a"))["w"]
    page.click("[data-testid=graph-zoom-in]")
    page.click("[data-testid=graph-zoom-in]")
    assert _zoom(page) == pytest.approx(fitted * 1.25 * 1.25, rel=0.01)
    assert _rect(page, _node("a"))["w"] == pytest.approx(width_fitted * 1.5625, rel=0.02)
    assert page.inner_text("[data-testid=graph-zoom]") == f"{round(_zoom(page) * 100)}%"
    # part of the graph is out of view now: the minimap shows where the view is
    assert not all(_inside(_rect(page, _node(n)), stage) for n in names)
    assert page.get_attribute("[data-testid=graph-minimap]", "data-visible") == "true"
    assert page.locator("[data-testid=graph-minimap] .mm-node.s-COMPLETED").count() == len(names)
    screenshot(page, "graph-zoomed.png")
    # a click at the minimap's left edge brings step a (the leftmost) into view
    mm = _rect(page, "[data-testid=graph-minimap]")
    page.mouse.click(mm["x"] + 3, mm["y"] + mm["h"] / 2)
    assert _inside(_rect(page, _node("a")), stage)
    assert not _inside(_rect(page, _node("f")), stage)
    # the mouse wheel zooms at the pointer
    before = _zoom(page)
    page.mouse.move(stage["x"] + stage["w"] / 2, stage["y"] + stage["h"] / 2)
    page.mouse.wheel(0, 300)
    wait_until(lambda: _zoom(page) < before, 3, "wheel zoom out")
    # dragging the background pans
    a_before = _rect(page, _node("a"))
    page.mouse.move(stage["x"] + 5, stage["y"] + stage["h"] - 5)
    page.mouse.down()
    page.mouse.move(stage["x"] + 65, stage["y"] + stage["h"] - 25, steps=5)
    page.mouse.up()
    a_after = _rect(page, _node("a"))
    assert a_after["x"] == pytest.approx(a_before["x"] + 60, abs=1)
    assert a_after["y"] == pytest.approx(a_before["y"] - 20, abs=1)
    # Fit shows everything again; 1:1 is actual size
    page.click("[data-testid=graph-fit]")
    assert _zoom(page) == pytest.approx(fitted, rel=0.001)
    assert all(_inside(_rect(page, _node(n)), stage) for n in names)
    page.click("[data-testid=graph-actual]")
    assert _zoom(page) == pytest.approx(1.0)
    # selecting a step still works on a zoomed graph
    page.click("[data-testid=graph-fit]")
    page.click("[data-testid=graph-node][data-name='e']")
    assert page.inner_text("[data-testid=step-name]") == "e"


def test_running_step_is_kept_in_view(page: Any, server: Server, tmp_path: Path) -> None:
    server.register(_chain())
    gate1, gate2 = tmp_path / "gate1", tmp_path / "gate2"
    eid = _run(server, "tests/ui/chain", {"gate1": str(gate1), "gate2": str(gate2)})
    try:
        page.goto(f"{server.url}/#/executions/{eid}")
        wait_until(lambda: node_states(page).get("s2") == "RUNNING", 30, "s2 running")
        page.click("[data-testid=graph-actual]")  # 1:1: the chain is far taller than the panel
        assert _zoom(page) == pytest.approx(1.0)
        stage = _rect(page, "[data-testid=graph-stage]")
        assert _inside(_rect(page, _node("s2")), stage)
        assert not _inside(_rect(page, _node("s11")), stage)
        assert page.get_attribute("[data-testid=graph-follow]", "aria-pressed") == "true"
        gate1.write_text("open")
        # the view moves down the chain by itself as the steps run
        wait_until(lambda: node_states(page).get("s11") == "RUNNING", 30, "s11 running")
        wait_until(lambda: _inside(_rect(page, _node("s11")), stage), 5, "s11 in view")
        assert not _inside(_rect(page, _node("s2")), stage)
        assert _zoom(page) == pytest.approx(1.0)  # following pans, it does not zoom
        screenshot(page, "graph-follow.png")
        # panning away stops following; the Follow button brings the running step back
        page.mouse.move(stage["x"] + 8, stage["y"] + 8)
        page.mouse.down()
        page.mouse.move(stage["x"] + 8, stage["y"] + 400, steps=5)
        page.mouse.up()
        assert page.get_attribute("[data-testid=graph-follow]", "aria-pressed") == "false"
        assert not _inside(_rect(page, _node("s11")), stage)
        page.click("[data-testid=graph-follow]")
        assert _inside(_rect(page, _node("s11")), stage)
    finally:
        gate1.write_text("open")
        gate2.write_text("open")
    wait_status(page, "COMPLETED")


def test_loop_items_table(page: Any, server: Server) -> None:
    server.register(LOOPS)
    eid = _run(server, "tests/ui/loops")
    page.goto(f"{server.url}/#/executions/{eid}")
    wait_status(page, "FAILED", timeout=60)
    # the 60-item loop: a page of 50 items in index order, then the last 10
    page.click("[data-testid=graph-node][data-name='squares']")
    wait_until(lambda: page.locator("[data-testid=loop-item]").count() == 50, 10, "50 items")
    rows = page.eval_on_selector_all(ITEMS, INDEX_STATUS)
    assert rows == [[str(i), "COMPLETED"] for i in range(50)]
    assert page.inner_text("[data-testid=loop-items-page]") == "1–50 of 60"
    assert page.inner_text("[data-testid=loop-items-summary]") == "60 items: 60 completed"
    assert page.inner_text(_cell(7, "loop-item-outcome")) == "49"
    assert page.inner_text(_cell(7, "loop-item-attempts")) == "1"
    assert page.inner_text(_cell(7, "loop-item-duration")).endswith("s")
    page.click("[data-testid=loop-items-next]")
    wait_until(lambda: page.inner_text("[data-testid=loop-items-page]") == "51–60 of 60", 5, "page 2")
    assert page.eval_on_selector_all(ITEMS, INDEXES) == [str(i) for i in range(50, 60)]
    assert page.inner_text(_cell(59, "loop-item-outcome")) == "3481"
    # the failing loop: what happened to each item, as the API has it
    page.click("[data-testid=graph-node][data-name='picky']")
    assert page.inner_text("[data-testid=step-loop]") == "4 / 7 · stopped: an item failed"
    wait_until(lambda: page.locator("[data-testid=loop-item]").count() == 7, 10, "7 items")
    with server.client() as c:
        api = c.get(f"/api/executions/{eid}/steps/picky/items").json()
    shown = dict(page.eval_on_selector_all(ITEMS, INDEX_STATUS))
    assert shown == {str(i["index"]): i["status"] for i in api["items"]}
    assert [shown[str(i)] for i in range(5)] == ["COMPLETED"] * 4 + ["FAILED"]
    assert set(shown[str(i)] for i in (5, 6)) <= {"CANCELLED", "PENDING"}
    bad = "[data-testid=loop-item][data-index='4']"
    assert page.inner_text(f"{bad} [data-testid=loop-item-outcome]") == "ValueError: bad item 4"
    assert page.inner_text(f"{bad} [data-testid=loop-item-attempts]") == "2 / 2"  # retried once
    summary = page.inner_text("[data-testid=loop-items-summary]")
    assert summary.startswith("7 items: ") and "4 completed" in summary and "1 failed" in summary
    assert summary.endswith("the loop stopped after an item failed")
    # a row opens the item's detail with the traceback
    page.click(bad)
    detail = page.inner_text("[data-testid=loop-item-error]")
    assert "ValueError: bad item 4" in detail and "Traceback" in detail
    # only the failed items
    page.select_option("[data-testid=loop-items-filter]", "FAILED")
    wait_until(lambda: page.eval_on_selector_all(ITEMS, INDEXES) == ["4"], 5,
               "only the failed item")
    assert page.inner_text("[data-testid=loop-items-page]") == "1–1 of 1"
    screenshot(page, "loop-items.png")


def test_executions_search_is_free_text(page: Any, server: Server) -> None:
    server.register(LOOPS.replace("ui_loops", "ui_search_me").replace("tests/ui/loops", "tests/ui/Search_Me"))
    ran = _run(server, "tests/ui/Search_Me")
    wait_until(lambda: server.execution(ran)["status"] == "FAILED", 60, "the run to fail")
    page.goto(f"{server.url}/#/executions")
    page.wait_for_selector("[data-testid=execution-row]")
    ids = "rs => rs.map(r => r.dataset.id)"
    # part of the path, in any case
    page.fill("[data-testid=search-filter]", "search_m")
    wait_until(lambda: page.eval_on_selector_all("[data-testid=execution-row]", ids) == [ran], 5,
               "the run found by part of its path")
    assert "q=search_m" in page.url
    # words of the error
    page.fill("[data-testid=search-filter]", "bad item 4")
    wait_until(lambda: ran in page.eval_on_selector_all("[data-testid=execution-row]", ids), 5,
               "the run found by its error")
    # the start of the execution id
    page.fill("[data-testid=search-filter]", ran[:-2])
    wait_until(lambda: page.eval_on_selector_all("[data-testid=execution-row]", ids)[:1] == [ran], 5,
               "the run found by its id")
    page.fill("[data-testid=search-filter]", "no-such-thing-anywhere")
    page.wait_for_selector("[data-testid=no-executions]")
    assert page.inner_text("[data-testid=no-executions]") == "No executions match."
    # the exact path filter still works as a link
    page.goto(f"{server.url}/#/executions?path=tests/ui/Search_Me")
    wait_until(lambda: page.eval_on_selector_all("[data-testid=execution-row]", ids) == [ran], 5,
               "the exact-path link")
    assert page.inner_text("[data-testid=path-chip]") == "path = tests/ui/Search_Me ×"


@pytest.fixture
def bare_server(tmp_path: Path, browser: Any) -> Any:
    srv = start_server(tmp_path / "bare", workers=0)
    try:
        yield srv
    finally:
        _stop(srv.procs)


def test_empty_credentials_page_names_the_real_command(browser: Any, bare_server: Server) -> None:
    import subprocess
    import sys

    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        page.goto(f"{bare_server.url}/#/credentials")
        box = "[data-testid=credentials]"
        page.wait_for_selector(box)
        # the page says "Loading…" until the list arrives (longer on a busy machine)
        wait_until(lambda: page.inner_text(box).strip() not in ("", "Loading…"), 15,
                   "the credentials list to load")
        text = page.inner_text(box).strip()
    finally:
        ctx.close()
    assert text == "No credentials. Add one with: noetl credential add NAME --type TYPE --data JSON"
    # the command it names exists with those options
    help_text = subprocess.run([sys.executable, "-m", "noetl", "credential", "add", "--help"],
                               capture_output=True, text=True, timeout=60).stdout
    assert "--type" in help_text and "--data" in help_text


def test_docs_render_offline(browser: Any, bare_server: Server) -> None:
    """Swagger UI from the package: every request stays on loopback and the operations show."""
    ctx = browser.new_context()
    outside: list[str] = []

    def only_loopback(route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    ctx.route("**/*", only_loopback)
    try:
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{bare_server.url}/docs")
        page.wait_for_selector(".swagger-ui .opblock", timeout=20000)
        with bare_server.client() as c:
            spec = c.get("/openapi.json").json()
        n_ops = sum(1 for ops in spec["paths"].values() for m in ops
                    if m in ("get", "post", "put", "delete", "patch"))
        wait_until(lambda: page.locator(".swagger-ui .opblock").count() == n_ops, 10,
                   "every operation")
        cancel = "/api/executions/{execution_id}/cancel"
        assert page.locator(".opblock-summary-path", has_text=cancel).count() == 1
        assert "NoETL API" in page.inner_text(".swagger-ui .info .title")
        # it is styled by the shipped stylesheet (a CDN-less page would be unstyled)
        colour = page.eval_on_selector(".opblock-get .opblock-summary-method",
                                       "e => getComputedStyle(e).backgroundColor")
        assert colour == "rgb(97, 175, 254)"
        screenshot(page, "docs.png")
        assert not errors, errors
    finally:
        ctx.close()
    assert outside == [], f"requests left the machine: {outside}"
