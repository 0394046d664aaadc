"""Bad input gets a 4xx that says what is wrong; no request produces a 500."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from tests.api.conftest import Running
from tests.api.test_catalog_runs import HELLO

BAD_REQUESTS: list[tuple[str, str, dict[str, Any], int, str]] = [
    # method, path, httpx kwargs, expected status, text expected in the message
    ("POST", "/api/catalog/register",
     {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "json"),
    ("POST", "/api/catalog/register", {"content": b"{not json"}, 422, "body"),
    ("POST", "/api/catalog/register", {"json": []}, 422, "body"),
    ("POST", "/api/catalog/register", {"json": {}}, 400, "content or content_base64"),
    ("POST", "/api/catalog/register", {"json": {"content": 5}}, 422, "content"),
    ("POST", "/api/catalog/register", {"json": {"content_base64": "%%%"}}, 400, "base64"),
    ("POST", "/api/catalog/register", {"json": {"content": "a: [unclosed"}}, 422, "line"),
    ("POST", "/api/catalog/register", {"json": {"content": "   "}}, 400, "empty"),
    ("POST", "/api/catalog/register", {"json": {"content": "- just\n- a list\n"}}, 422, ""),
    ("POST", "/api/catalog/resource", {"json": {}}, 400, "catalog_id or path"),
    ("POST", "/api/catalog/resource", {"json": {"catalog_id": "abc"}}, 422, "catalog_id"),
    ("POST", "/api/catalog/resource", {"json": {"catalog_id": 99}}, 404, "not found"),
    ("POST", "/api/catalog/resource", {"json": {"path": "x", "version": "v2"}}, 400, "version"),
    ("POST", "/api/run/playbook", {"json": {}}, 400, "path or catalog_id"),
    ("POST", "/api/run/playbook", {"json": {"path": "nope"}}, 404, "nope"),
    ("POST", "/api/run/playbook", {"json": {"path": "p", "args": [1]}}, 422, "args"),
    ("POST", "/api/run/playbook", {"json": {"path": "p", "version": -1}}, 422, "version"),
    ("POST", "/api/run/playbook", {"json": {"catalog_id": 2**70}}, 422, "catalog_id"),
    ("POST", "/api/run/dataset", {"json": {"path": "p"}}, 404, "resource type"),
    # a body that is not JSON by its content type is not read as JSON (a browser sends text
    # and forms to any origin without asking), on the hot routes as on FastAPI's
    ("POST", "/api/run/playbook",
     {"content": b'{"path": "nope"}', "headers": {"content-type": "text/plain"}}, 422,
     "dictionary"),
    ("POST", "/api/run/playbook", {"data": {"path": "nope"}}, 422, "dictionary"),
    ("POST", "/api/run/playbook",
     {"content": b'{"path": "nope"}', "headers": {"content-type": "application/x+json"}}, 404,
     "nope"),
    ("POST", "/api/queue/lease",
     {"content": b'{"worker_id": "w"}', "headers": {"content-type": "text/plain"}}, 422,
     "dictionary"),
    ("POST", "/api/catalog/register",
     {"content": b'{"content": "x"}', "headers": {"content-type": "text/plain"}}, 422,
     "dictionary"),
    ("GET", "/api/executions", {"params": {"limit": 0}}, 422, "limit"),
    ("GET", "/api/executions", {"params": {"limit": 1001}}, 422, "limit"),
    ("GET", "/api/executions", {"params": {"limit": "ten"}}, 422, "limit"),
    ("GET", "/api/executions", {"params": {"offset": -1}}, 422, "offset"),
    ("GET", "/api/executions", {"params": {"offset": "9" * 20}}, 422, "offset"),
    ("GET", "/api/executions", {"params": {"parent_execution_id": "9" * 20}}, 400, "parent"),
    ("GET", "/api/executions", {"params": {"status": "DANCING"}}, 400, "unknown status"),
    ("GET", "/api/executions", {"params": {"parent_execution_id": "x"}}, 400, "parent"),
    ("GET", "/api/executions/abc", {}, 404, "not found"),
    ("GET", "/api/executions/-5", {}, 404, "not found"),
    ("GET", "/api/executions/99999999999999999999999", {}, 404, "not found"),
    ("GET", "/api/executions/12345", {}, 404, "12345"),
    ("GET", "/api/executions/12345/events", {}, 404, "12345"),
    ("GET", "/api/executions/12345/events", {"params": {"since_seq": -1}}, 422, "since_seq"),
    ("POST", "/api/executions/12345/cancel", {}, 404, "12345"),
    ("POST", "/api/executions/zz/cancel", {}, 404, "zz"),
    ("POST", "/api/events", {"json": {"event_type": "info"}}, 422, "execution_id"),
    ("POST", "/api/events", {"json": {"execution_id": 1, "event_type": "info"}}, 404, "1"),
    ("POST", "/api/events", {"json": {"execution_id": "x1", "event_type": "info"}}, 422, "id"),
    ("POST", "/api/events", {"json": {"execution_id": 1, "event_type": "a b"}}, 422, "event_type"),
    ("POST", "/api/queue/lease", {"json": {}}, 422, "worker_id"),
    ("POST", "/api/queue/lease", {"json": {"worker_id": "w", "wait_seconds": 31}}, 422, "wait"),
    ("POST", "/api/queue/lease", {"json": {"worker_id": "w", "limit": 0}}, 422, "limit"),
    ("POST", "/api/queue/lease", {"json": {"worker_id": "w", "lease_seconds": -1}}, 422, "lease"),
    ("POST", "/api/queue/123/complete", {"json": {"worker_id": "w"}}, 404, "123"),
    ("POST", "/api/queue/abc/complete", {"json": {}}, 404, "abc"),
    ("POST", "/api/queue/123/complete", {"json": {"status": "weird"}}, 422, "status"),
    ("POST", "/api/queue/123/fail", {"json": {"status": "ok"}}, 400, "fail"),
    ("POST", "/api/queue/report", {"json": {}}, 422, "reports"),
    ("POST", "/api/queue/report", {"json": {"reports": [{"job_id": "x", "status": "ok"}]}}, 422,
     "job_id"),
    ("POST", "/api/queue/report", {"json": {"reports": [{"job_id": 5}]}}, 422, "status"),
    ("POST", "/api/queue/report", {"json": {"reports": [], "lease_next": -1}}, 422, "lease_next"),
    ("POST", "/api/queue/123/heartbeat", {"json": {}}, 422, "worker_id"),
    ("POST", "/api/queue/123/heartbeat", {"json": {"worker_id": "w"}}, 404, "123"),
    ("POST", "/api/queue/123/release", {"json": {"worker_id": "w"}}, 409, "123"),
    ("GET", "/api/queue", {"params": {"status": "nope"}}, 400, "queue status"),
    ("GET", "/api/queue", {"params": {"limit": 0}}, 422, "limit"),
    ("GET", "/api/queue/size", {"params": {"status": "nope"}}, 400, "queue status"),
    ("POST", "/api/context/render", {"json": {"execution_id": 7, "template": "x"}}, 404, "7"),
    ("POST", "/api/context/render", {"json": {"template": "x"}}, 422, "execution_id"),
    ("POST", "/api/credentials", {"json": {"name": "a"}}, 422, "data"),
    ("POST", "/api/credentials", {"json": {"name": "a b", "data": {}}}, 422, "name"),
    ("POST", "/api/credentials", {"json": {"name": "a", "data": "s"}}, 422, "data"),
    ("GET", "/api/credentials/missing", {}, 404, "missing"),
    ("GET", "/api/credentials/missing", {"params": {"include_data": "maybe"}}, 422, "include"),
    ("DELETE", "/api/credentials/missing", {}, 404, "missing"),
]


@pytest.mark.parametrize(("method", "path", "kw", "status", "text"), BAD_REQUESTS,
                         ids=[f"{m} {p} {i}" for i, (m, p, *_r) in enumerate(BAD_REQUESTS)])
def test_bad_request_is_a_clear_4xx(shared_api: Running, method: str, path: str,
                                     kw: dict[str, Any], status: int, text: str) -> None:
    with shared_api.client() as c:
        r = c.request(method, path, **kw)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail
    assert text.lower() in detail.lower(), detail


def test_bad_requests_change_nothing_and_server_keeps_serving(api: Running) -> None:
    with api.client() as c:
        for method, path, kw, _s, _t in BAD_REQUESTS:
            assert c.request(method, path, **kw).status_code < 500
        assert c.get("/api/executions").json()["total"] == 0
        assert c.post("/api/catalog/list", json={}).json()["entries"] == []
        assert c.post("/api/catalog/register", json={"content": HELLO}).status_code == 200
        assert c.get("/health").json() == {"status": "ok"}


VALUES: list[Any] = [None, 0, -1, 1.5, 2**64, "x", "", "1", "latest", [], [1], {}, {"a": 1}, True,
                     "é", "{{ x }}", "{% for %}", "9" * 30]
FIELDS = ["content", "content_base64", "resource_type", "catalog_id", "path", "version", "args",
          "merge", "execution_id", "event_type", "event_id", "status", "context", "worker_id",
          "limit", "lease_seconds", "wait_seconds", "report_id", "error", "data", "duration",
          "extend_seconds", "template", "extra_context", "name", "type", "tags",
          "parent_event_id", "latest_only"]


def test_random_bodies_never_cause_a_5xx(api: Running) -> None:
    """Every write route, with bodies of every JSON type and random field mixes (fixed seed),
    with real ids in play: always an answer below 500."""
    rnd = random.Random(7)
    with api.client() as c:
        c.post("/api/catalog/register", json={"content": HELLO})
        eid = c.post("/api/run/playbook",
                     json={"path": "tests/fixtures/playbooks/hello_world"}).json()["execution_id"]
        job = c.post("/api/queue/lease", json={"worker_id": "w"}).json()["jobs"][0]["job_id"]
        values = [*VALUES, eid, job]
        routes = ["/api/catalog/register", "/api/catalog/list", "/api/catalog/resource",
                  "/api/run/playbook", "/api/events", "/api/queue/lease",
                  f"/api/queue/{job}/complete", f"/api/queue/{job}/fail",
                  f"/api/queue/{job}/heartbeat", f"/api/queue/{job}/release",
                  "/api/context/render", "/api/credentials", f"/api/executions/{eid}/cancel"]
        bad = []
        for path in routes:
            bodies: list[Any] = list(values)
            for _ in range(30):
                body = {f: rnd.choice(values) for f in rnd.sample(FIELDS, rnd.randint(1, 6))}
                if rnd.random() < 0.5:
                    body["execution_id"] = eid
                if rnd.random() < 0.3:
                    body["worker_id"] = "w"
                bodies.append(body)
            for body in bodies:
                r = c.post(path, content=json.dumps(body),
                           headers={"content-type": "application/json"})
                if r.status_code >= 500:
                    bad.append((path, body, r.status_code, r.text[:200]))
        assert bad == []
        assert c.get("/health").json() == {"status": "ok"}
