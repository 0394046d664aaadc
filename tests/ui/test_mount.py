"""The UI as the API serves it (no browser): files from inside the package, the graph route,
the token rule. Runs the real app (lifespan, store) in-process through Starlette's TestClient."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from noetl.api.app import create_app
from noetl.local import LocalRunner
from noetl.ui import STATIC

FLOW = textwrap.dedent("""
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: mount_flow, path: tests/ui/mount_flow}
    workload: {n: 3}
    workflow:
      - step: start
        next:
          - when: "{{ workload.n > 2 }}"
            step: big
          - step: small
      - step: big
        type: iterator
        collection: "{{ range(workload.n) | list }}"
        element: i
        task: {type: python, code: "def main(i):\\n    return i"}
        next: [{step: start_again}]
      - step: small
        type: python
        code: "def main():\\n    return 0"
      - step: start_again
    """)


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_url, token="tok"), headers={"Authorization": "Bearer tok"}) as c:
        yield c


def test_index_and_every_module_it_loads_are_served(client: TestClient) -> None:
    index = client.get("/", headers={"Authorization": ""})  # the page itself needs no token
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    assert index.text == (STATIC / "index.html").read_text()
    # follow every stylesheet, script and ES-module import from the page
    todo = re.findall(r'(?:href|src)="(/ui/[^"]+)"', index.text)
    seen: set[str] = set()
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        r = client.get(url, headers={"Authorization": ""})
        assert r.status_code == 200, url
        if url.endswith(".js"):
            assert "javascript" in r.headers["content-type"], (url, r.headers["content-type"])
            base = url.rsplit("/", 1)[0]
            todo += [f"{base}/{m}" for m in re.findall(r"from '\./([\w.]+)'", r.text)]
        elif url.endswith(".css"):
            assert "text/css" in r.headers["content-type"]
    assert {"/ui/app.css", "/ui/js/app.js", "/ui/js/graph.js", "/ui/js/timeline.js"} <= seen
    shipped = {f"/ui/{p.relative_to(STATIC).as_posix()}" for p in STATIC.rglob("*.*")} - {"/ui/index.html"}
    assert shipped == seen, "every shipped asset is used and every used asset is shipped"
    assert client.get("/ui/js/nope.js").status_code == 404


def test_graph_route_shows_live_status_edges_and_loop_counts(client: TestClient,
                                                             sqlite_url: str) -> None:
    client.post("/api/catalog/register", json={"content": FLOW}).raise_for_status()
    eid = client.post("/api/run/playbook", json={"path": "tests/ui/mount_flow"}).json()["execution_id"]
    # no worker yet: the loop's items wait in the queue
    g = client.get(f"/api/executions/{eid}/graph").json()
    nodes = {n["name"]: n for n in g["nodes"]}
    assert g["start"] == "start" and g["status"] == "RUNNING"
    assert nodes["start"]["status"] == "COMPLETED"
    assert nodes["big"]["status"] in ("QUEUED", "RUNNING") and nodes["big"]["loop"] == {"done": 0, "total": 3}
    assert nodes["big"]["type"] == "iterator" and nodes["big"]["task_type"] == "python"
    assert nodes["small"]["status"] == "PENDING"
    edges = {(e["from"], e["to"]): e for e in g["edges"]}
    assert edges[("start", "big")]["when"] == "{{ workload.n > 2 }}"
    assert edges[("start", "small")]["when"] is None
    # a worker on the same store finishes it; the graph follows
    with LocalRunner(sqlite_url, concurrency=2) as runner:
        runner.wait(int(eid), timeout=30)
    g = client.get(f"/api/executions/{eid}/graph").json()
    nodes = {n["name"]: n for n in g["nodes"]}
    assert g["status"] == "COMPLETED"
    assert nodes["big"]["status"] == "COMPLETED" and nodes["big"]["loop"] == {"done": 3, "total": 3}
    assert nodes["small"]["status"] == "SKIPPED"


def test_graph_route_errors_and_token(client: TestClient) -> None:
    assert client.get("/api/executions/123/graph").status_code == 404
    assert client.get("/api/executions/abc/graph").status_code == 404
    r = client.get("/api/executions/123/graph", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    # mounting again (a second call from create_app) adds nothing
    from noetl.ui import mount

    app: Any = client.app
    before = len(app.router.routes)
    mount(app)
    assert len(app.router.routes) == before


def test_snapshot_is_the_execution_and_its_graph_from_one_read(client: TestClient,
                                                               sqlite_url: str) -> None:
    client.post("/api/catalog/register", json={"content": FLOW}).raise_for_status()
    eid = client.post("/api/run/playbook", json={"path": "tests/ui/mount_flow"}).json()["execution_id"]
    with LocalRunner(sqlite_url, concurrency=2) as runner:
        runner.wait(int(eid), timeout=30)
    snap = client.get(f"/api/executions/{eid}/snapshot").json()
    assert snap == {"execution": client.get(f"/api/executions/{eid}").json(),
                    "graph": client.get(f"/api/executions/{eid}/graph").json()}
    assert snap["execution"]["status"] == snap["graph"]["status"] == "COMPLETED"
    assert {n["name"]: n["status"] for n in snap["graph"]["nodes"]} == \
        {k: v["status"] for k, v in snap["execution"]["steps"].items()}
    assert client.get("/api/executions/999/snapshot").status_code == 404
    assert client.get("/api/executions/x/snapshot").status_code == 404
    assert client.get(f"/api/executions/{eid}/snapshot",
                      headers={"Authorization": "Bearer wrong"}).status_code == 401
    # the loop's items, in index order
    items = client.get(f"/api/executions/{eid}/steps/big/items").json()
    assert [(i["index"], i["status"], i["item"], i["result"]) for i in items["items"]] == [
        (0, "COMPLETED", 0, 0), (1, "COMPLETED", 1, 1), (2, "COMPLETED", 2, 2)]
    assert items["counts"] == {"COMPLETED": 3} and items["total"] == 3 and not items["failed"]
    page = client.get(f"/api/executions/{eid}/steps/big/items",
                      params={"offset": 1, "limit": 1}).json()
    assert [i["index"] for i in page["items"]] == [1] and page["matching"] == 3
    assert client.get(f"/api/executions/{eid}/steps/big/items",
                      params={"status": "FAILED"}).json()["items"] == []
    assert client.get(f"/api/executions/{eid}/steps/big/items",
                      params={"status": "DONE"}).status_code == 400
    assert client.get(f"/api/executions/{eid}/steps/nope/items").status_code == 404
    assert client.get(f"/api/executions/{eid}/steps/small/items").json()["items"] == []
