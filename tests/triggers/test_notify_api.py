"""Notifications through a real server on SQLite, to a real receiving HTTP server on loopback:
a failing run posts one notification per target with the execution id, path, failed step and
error; a receiver that answers 500 twice gets the third attempt; every attempt is an event
after the one terminal event, and the run's status is unaffected."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import SplitResult

import pytest

from noetl.worker.http_backend import HttpBackend
from noetl.worker.pool import WorkerPool
from tests.api.conftest import Running
from tests.helpers import wait_until as wait_for
from tests.httpstub import StubHandler, serving

TERMINAL = ("execution_completed", "execution_failed", "execution_cancelled")


class Receiver(StubHandler):
    posts: dict[str, list[tuple[dict[str, str], Any]]] = {}
    lock = threading.Lock()

    def route(self, parts: SplitResult, query: dict[str, str], body: Any) -> None:
        with self.lock:
            got = self.posts.setdefault(parts.path, [])
            got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            n = len(got)
        if parts.path == "/down" or (parts.path == "/flaky" and n <= 2):
            self.send(500, {"error": "down for a moment"})
        else:
            self.send(200, {"ok": True})


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.posts = {}
    with serving(Receiver) as url:
        yield url


def playbook(receiver: str, failing: bool) -> str:
    code = 'raise ValueError("disk is full")' if failing else "return {'ok': 1}"
    return f"""\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {{name: {"nightly/fails" if failing else "nightly/works"}}}
notify:
  - credential: alerts
  - url: {receiver}/flaky
    format: slack
    name: team-channel
  - url: {receiver}/down
    max_attempts: 2
    name: pager
workflow:
  - step: start
    next: load
  - step: load
    type: python
    code: |
      def main():
          {code}
"""


def _events(c: Any, eid: str) -> list[dict[str, Any]]:
    return list(c.get(f"/api/executions/{eid}/events").json()["items"])


def test_failing_run_notifies_and_retries(serve: Callable[..., Running], store_url: str,
                                          receiver: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOETL_NOTIFY_RETRY_DELAY", "0.2")  # read by the server as it starts
    api = serve(store_url)
    c = api.client()
    r = c.post("/api/credentials", json={"name": "alerts", "type": "generic", "data": {
        "url": receiver + "/json", "headers": {"X-Alert-Key": "k-1"}}})
    assert r.status_code == 200, r.text
    for failing in (True, False):
        assert c.post("/api/catalog/register",
                      json={"content": playbook(receiver, failing)}).status_code == 200
    with HttpBackend(api.url, wait_seconds=1) as b, WorkerPool(b, 2, b.services()):
        fails = c.post("/api/run/playbook", json={"path": "nightly/fails"}).json()["execution_id"]
        works = c.post("/api/run/playbook", json={"path": "nightly/works"}).json()["execution_id"]

        def delivered() -> list[dict[str, Any]]:
            items = c.get(f"/api/executions/{fails}/notifications").json()["items"]
            return items if sorted(i["status"] for i in items) == [
                "delivered", "delivered", "failed"] else []

        notes = wait_for(delivered, 30, "two notifications delivered, one given up")
        wait_for(lambda: c.get(f"/api/executions/{works}").json()["status"] == "COMPLETED",
                 30, "the working run")
    assert sorted((n["status"], n["attempts"]) for n in notes) == [
        ("delivered", 1), ("delivered", 3), ("failed", 2)]
    assert all("url" not in n["target"] or n["target"]["url"].endswith("/…") for n in notes)

    (headers, body), = Receiver.posts["/json"]  # exactly one post
    assert headers["x-alert-key"] == "k-1"
    assert body["kind"] == "noetl.execution" and body["execution_id"] == fails
    assert (body["path"], body["status"], body["failed_step"]) == ("nightly/fails", "FAILED",
                                                                  "load")
    assert body["error"]["type"] == "ValueError" and "disk is full" in body["error"]["message"]
    flaky = Receiver.posts["/flaky"]
    assert len(flaky) == 3 and flaky[0][1] == flaky[2][1]
    text = flaky[2][1]["text"]
    assert fails in text and "`nightly/fails` FAILED in step `load`" in text
    assert "disk is full" in text

    desc = c.get(f"/api/executions/{fails}").json()
    assert desc["status"] == "FAILED" and desc["steps"]["load"]["status"] == "FAILED"
    events = _events(c, fails)
    kinds = [e["event_type"] for e in events]
    assert [k for k in kinds if k in TERMINAL] == ["execution_failed"]
    end = kinds.index("execution_failed")
    after = [(e["event_type"], e["context"]["target"], e["context"].get("will_retry"))
             for e in events[end + 1:]]
    assert sorted(after) == [
        ("notification_failed", "pager", False),  # its last attempt
        ("notification_failed", "pager", True),
        ("notification_failed", "team-channel", True),
        ("notification_failed", "team-channel", True),
        ("notification_sent", "credential:alerts", None),
        ("notification_sent", "team-channel", None)]
    assert all(e["event_type"].startswith("notification_") for e in events[end + 1:])
    failed = [e for e in events if e["event_type"] == "notification_failed"]
    assert all("HTTP 500" in (e["error"] or "") for e in failed)
    assert c.get(f"/api/executions/{works}/notifications").json()["items"] == []  # FAILED only
    assert [e["event_type"] for e in _events(c, works)][-1] == "execution_completed"
    m = c.get("/metrics").text
    assert "noetl_notification_failures_total 4.0" in m
    assert "noetl_notifications_given_up_total 1.0" in m
    assert 'noetl_notification_attempts_total{result="ok"} 2.0' in m
