"""The http tool, the http save and retry-on-status against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import textwrap
from typing import Any

import pytest

from noetl.credentials import put_credential, store_credentials
from noetl.dsl import parse_playbook
from noetl.errors import ToolError
from noetl.local import LocalRunner
from noetl.settings import Settings
from noetl.store import open_store
from noetl.tools import http
from noetl.tools.base import Services, ToolCall
from tests.helpers import assert_one_terminal


@pytest.fixture
def services(sqlite_url: str, noetl_home: Any) -> Any:
    store = open_store(sqlite_url)
    put_credential(store, "tok", "bearer", {"token": "tok-123"})
    put_credential(store, "bas", "basic", {"username": "ann", "password": "pw:1"})
    put_credential(store, "key", "api_key", {"key": "X-API-Key", "value": "k-9"})
    put_credential(store, "hdr", "header", {"headers": {"X-Custom": "c-1"}})
    yield Services(credentials=store_credentials(store))
    store.close()


def call(action: dict[str, Any], services: Services | None = None,
         args: dict[str, Any] | None = None) -> Any:
    return http.run(ToolCall(action=action, args=args or {}, ctx={}, execution_id="1",
                             step="s", services=services or Services()))


def test_get_data_is_query_and_json_is_parsed(stub: Any) -> None:
    out = call({"endpoint": f"{stub.url}/json", "data": {"a": 1, "b": "x y", "t": True}})
    assert out["status_code"] == 200
    assert out["data"] == {"method": "GET", "path": "/json", "body": None,
                           "query": {"a": "1", "b": "x y", "t": "true"}}
    assert out["url"].startswith(f"{stub.url}/json?") and out["elapsed"] >= 0
    assert out["headers"]["content-type"] == "application/json"


def test_post_data_is_json_body_and_query_body_override(stub: Any) -> None:
    out = call({"url": f"{stub.url}/json", "method": "post", "data": {"n": [1, 2], "s": "é"}})
    assert out["data"]["method"] == "POST" and out["data"]["body"] == {"n": [1, 2], "s": "é"}
    out = call({"endpoint": f"{stub.url}/json", "method": "PUT",
                "data": {"query": {"q": "1"}, "body": {"b": 2}}})
    assert out["data"]["query"] == {"q": "1"} and out["data"]["body"] == {"b": 2}
    out = call({"endpoint": f"{stub.url}/json", "method": "POST", "params": {"p": "v"},
                "json": {"j": 1}})
    assert out["data"]["query"] == {"p": "v"} and out["data"]["body"] == {"j": 1}


def test_args_are_the_query_when_no_data(stub: Any) -> None:
    out = call({"endpoint": f"{stub.url}/json"}, args={"latitude": 51.5, "hourly": "t"})
    assert out["data"]["query"] == {"latitude": "51.5", "hourly": "t"}


def test_text_response(stub: Any) -> None:
    assert call({"endpoint": f"{stub.url}/text"})["data"] == "plain text ✓"


def test_non_2xx_is_an_error_envelope_with_the_result(stub: Any) -> None:
    out = call({"endpoint": f"{stub.url}/status/404"})
    assert out["status"] == "error"
    assert out["data"]["status_code"] == 404 and out["data"]["data"] == {"status": 404}
    assert out["error"].startswith("HTTP 404 Not Found from GET ")


def test_unreachable_server_is_a_clean_error(stub: Any) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ToolError) as exc:
        call({"endpoint": f"http://127.0.0.1:{port}/x"})
    assert exc.value.error_type == "ConnectError"


@pytest.mark.parametrize("auth,field,expected,secret", [
    ("tok", "authorization", "Bearer tok-123", "tok-123"),
    ({"source": "credential", "key": "tok"}, "authorization", "Bearer tok-123", "tok-123"),
    ("bas", "authorization", "Basic " + base64.b64encode(b"ann:pw:1").decode(), "pw:1"),
    ("key", "x_api_key", "k-9", "k-9"),
    ("hdr", "x_custom", "c-1", "c-1"),
    ({"type": "bearer", "token": "inline-1"}, "authorization", "Bearer inline-1", "inline-1"),
])
def test_auth_forms(stub: Any, services: Services, auth: Any, field: str,
                    expected: str, secret: str) -> None:
    out = call({"endpoint": f"{stub.url}/json", "auth": auth}, services)
    assert out["status_code"] == 200
    assert stub.requests[-1][field] == expected
    assert secret in services.secrets  # registered for redaction
    assert secret not in str(out)


def test_missing_credential(stub: Any, services: Services) -> None:
    with pytest.raises(ToolError, match="credential 'nope' not found"):
        call({"endpoint": f"{stub.url}/json", "auth": "nope"}, services)


def test_rewrite_setting_and_connection_reuse(stub: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("NOETL_HTTP_REWRITE",
                       f"https://other.invalid=http://x.invalid, https://api.invalid={stub.url}")
    services = Services(settings=Settings.from_env())  # as a worker process builds them
    a = call({"endpoint": "https://api.invalid/json"}, services)
    b = call({"endpoint": "https://api.invalid/text"}, services)
    assert a["url"].startswith(stub.url) and b["data"] == "plain text ✓"
    assert http.client() is http.client()
    ports = [r["client_port"] for r in stub.requests]
    assert len(ports) == 2 and ports[0] == ports[1]  # one kept-alive connection


RETRY = """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: http_retry}
workload: {base: "http://unused"}
workflow:
  - step: start
    next: [{step: fetch}]
  - step: fetch
    type: http
    endpoint: "{{ workload.base }}/flaky/{{ workload.key }}/{{ workload.fails }}"
    retry: {max_attempts: 3, initial_delay: 0.01, retry_when: "{{ status_code >= 500 }}"}
    next: [{step: end}]
  - step: end
"""


def _run(text: str, url: str, args: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    with LocalRunner(url) as runner:
        desc = runner.run(parse_playbook(textwrap.dedent(text), "<t>"), args=args, timeout=30)
        with runner.store.read() as tx:
            events = tx.get_events(int(desc["execution_id"]), 0, 10000)
    assert_one_terminal(events)
    return desc, events


def test_retry_on_503_then_success(stub: Any, sqlite_url: str, noetl_home: Any) -> None:
    desc, events = _run(RETRY, sqlite_url, {"base": stub.url, "key": "a", "fails": 2})
    assert desc["status"] == "COMPLETED", desc["error"]
    assert stub.hits["a"] == 3
    assert desc["steps"]["fetch"]["attempts"] == 3
    assert desc["steps"]["fetch"]["result"]["data"] == {"ok": True, "hit": 3}
    retries = [e for e in events if e.event_type == "action_retry"]
    assert len(retries) == 2
    failed = [e for e in events if e.event_type == "action_failed"]
    assert len(failed) == 2 and all(e.result["data"]["status_code"] == 503 for e in failed)


def test_retry_exhausted_fails_with_status(stub: Any, sqlite_url: str, noetl_home: Any) -> None:
    desc, _ = _run(RETRY, sqlite_url, {"base": stub.url, "key": "b", "fails": 9})
    assert desc["status"] == "FAILED"
    assert stub.hits["b"] == 3
    assert "HTTP 503" in desc["error"]["message"]


SAVE = """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: http_save}
workflow:
  - step: start
    next: [{step: make}]
  - step: make
    type: python
    code: |
      def main():
          return {"rows": [1, 2], "name": "n ✓"}
    save:
      storage: http
      endpoint: "{{ workload.base }}/{{ workload.route }}"
      data: {rows: "{{ result.rows }}", name: "{{ result.name }}"}
    next: [{step: end}]
  - step: end
"""


def test_http_save_posts_the_data(stub: Any, sqlite_url: str, noetl_home: Any) -> None:
    desc, events = _run(SAVE, sqlite_url, {"base": stub.url, "route": "collect"})
    assert desc["status"] == "COMPLETED", desc["error"]
    assert stub.bodies == [{"rows": [1, 2], "name": "n ✓"}]
    done = next(e for e in events if e.event_type == "action_completed"
                and e.node_name == "make")
    assert done.result["meta"]["save"]["status_code"] == 201


def test_http_save_non_2xx_fails_the_step(stub: Any, sqlite_url: str, noetl_home: Any) -> None:
    desc, _ = _run(SAVE, sqlite_url, {"base": stub.url, "route": "status/500"})
    assert desc["status"] == "FAILED"
    assert "HTTP 500" in desc["error"]["message"] and desc["error"]["step"] == "make"


def test_shared_client_under_concurrent_steps(stub: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> Any:
        return call({"endpoint": f"{stub.url}/json", "data": {"i": i}})["data"]["query"]["i"]

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(one, range(160)))
    assert got == [str(i) for i in range(160)]
    ports = {r["client_port"] for r in stub.requests}
    assert len(ports) <= 8  # connections are reused across threads, not one per request
