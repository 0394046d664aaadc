"""NoETL corpus: the retry_test set, all started at once on one embedded runner (their backoff
delays overlap, so the module takes as long as the slowest fixture, ~3-5 s)."""

from __future__ import annotations

from typing import Any

import pytest

from noetl.dsl import load_playbook
from noetl.plan import compile_plan
from tests.compat.conftest import CORPUS, Compat, events_of

pytestmark = pytest.mark.postgres
PYTHON_RUNS = 6  # python_retry_exception is random (69 % failure per attempt): run it 6 times


@pytest.fixture(scope="module")
def runs(compat: Compat) -> dict[str, Any]:
    starts: dict[str, Any] = {
        "duckdb": compat.start("retry_test/duckdb_retry_query.yaml"),
        "status": compat.start("retry_test/http_retry_status_code.yaml"),
        "stop": compat.start("retry_test/http_retry_with_stop.yaml"),
        "postgres": compat.start("retry_test/postgres_retry_connection.yaml"),
        "simple": compat.start("retry_test/retry_simple_config.yaml"),
        # the same fixture with its workload URL pointed at a 503: `retry: true` retries
        "simple_503": compat.start("retry_test/retry_simple_config.yaml",
                                   args={"test_url": "https://httpbin.org/status/503"}),
        "python": [compat.start("retry_test/python_retry_exception.yaml")
                   for _ in range(PYTHON_RUNS)],
    }
    out: dict[str, Any] = {}
    for key, eid in starts.items():
        out[key] = ([compat.finish(e) for e in eid] if isinstance(eid, list)
                    else compat.finish(eid))
    return out


def check_retries(events: list[Any], node: str, attempts: int, initial: float, mult: float,
                  max_delay: float = 60.0) -> list[Any]:
    """``attempts`` starts, one action_retry between consecutive ones, each delay within the
    jitter band [0.5, 1.5) x min(max_delay, initial * mult ** (n - 1))."""
    started = events_of(events, node, "action_started")
    retries = events_of(events, node, "action_retry")
    assert [e.context["attempt"] for e in started] == list(range(1, attempts + 1))
    assert len(retries) == attempts - 1
    for n, r in enumerate(retries, start=1):
        base = min(max_delay, initial * mult ** (n - 1))
        assert r.context["attempt"] == n and r.context["next_attempt"] == n + 1
        assert 0.5 * base <= r.context["delay"] < 1.5 * base, (n, r.context)
        # the next attempt did not start before the delay had passed
        assert started[n].created_at - r.created_at >= r.context["delay"] - 0.05
    return retries


def test_duckdb_retry_query(runs: dict[str, Any]) -> None:
    """NoETL's duckdb tool ignored `query:` (so the fixture only exercised exhausted retries);
    here `query` is an accepted alias of `command`, and the step succeeds at once."""
    desc, events = runs["duckdb"]
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["steps"]["start"]["attempts"] == 1
    assert desc["steps"]["start"]["result"]["command_0"]["rows"] == [
        {"answer": 42, "status": "success"}]
    assert not events_of(events, "start", "action_retry")


def test_http_retry_status_code(runs: dict[str, Any], compat: Compat) -> None:
    desc, events = runs["status"]
    assert desc["status"] == "FAILED"
    assert desc["steps"]["start"]["attempts"] == 3
    assert desc["error"]["step"] == "start"
    assert "HTTP 503" in desc["error"]["message"]
    retries = check_retries(events, "start", 3, 0.5, 2.0, 5.0)
    assert all("503" in r.context["error"] for r in retries)
    failed = events_of(events, "start", "action_failed")
    assert [e.result["data"]["status_code"] for e in failed] == [503, 503, 503]
    assert desc["steps"]["end"]["status"] == "SKIPPED"


def test_http_retry_with_stop(runs: dict[str, Any]) -> None:
    desc, events = runs["stop"]
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["steps"]["start"]["attempts"] == 1
    assert desc["steps"]["start"]["result"]["status_code"] == 200
    assert not events_of(events, "start", "action_retry")


def test_postgres_retry_connection(runs: dict[str, Any]) -> None:
    """By design it cannot succeed: credential `test_postgres` does not exist. NoETL could not
    even resolve its `auth: {type, credential}` form and hid the failure; here the form resolves,
    the missing credential is reported, and the 3 attempts are on record."""
    desc, events = runs["postgres"]
    assert desc["status"] == "FAILED"
    assert desc["steps"]["start"]["attempts"] == 3
    assert desc["error"]["message"] == "auth: credential 'test_postgres' not found"
    assert desc["error"]["type"] == "CredentialNotFound"
    retries = check_retries(events, "start", 3, 1.0, 2.0)
    assert {r.context["error"] for r in retries} == {"auth: credential 'test_postgres' not found"}


def test_python_retry_exception(runs: dict[str, Any]) -> None:
    """Random by design: each run ends with exactly one terminal event, at most 5 attempts, one
    action_retry per failed attempt but the last, and the status of its last attempt."""
    seen = set()
    for desc, events in runs["python"]:
        step = desc["steps"]["start"]
        attempts = step["attempts"]
        assert 1 <= attempts <= 5
        started = events_of(events, "start", "action_started")
        failed = events_of(events, "start", "action_failed")
        assert len(started) == attempts
        assert len(events_of(events, "start", "action_retry")) == attempts - 1
        assert all("Random failure (value: " in e.result["error"] for e in failed)
        last = [e for e in events if e.node_name == "start"
                and e.event_type in ("action_completed", "action_failed")][-1]
        if desc["status"] == "COMPLETED":
            assert last.event_type == "action_completed"
            assert len(failed) == attempts - 1
            assert step["result"]["success"] is True and step["result"]["data"]["value"] >= 70
        else:
            assert desc["status"] == "FAILED" and attempts == 5
            assert last.event_type == "action_failed" and len(failed) == 5
            assert desc["error"]["message"].startswith("Random failure (value: ")
        seen.add(desc["status"])
    print(f"python_retry_exception x{PYTHON_RUNS}: statuses {sorted(seen)}")


def test_retry_simple_config(runs: dict[str, Any]) -> None:
    plan = compile_plan(load_playbook(CORPUS / "retry_test/retry_simple_config.yaml"))
    policies = {n: plan.step(n).retry for n in ("boolean_retry", "integer_retry",
                                                "full_config_retry")}
    assert policies["boolean_retry"] is not None
    assert policies["boolean_retry"].max_attempts == 3  # the defaults
    assert policies["integer_retry"] is not None
    assert policies["integer_retry"].max_attempts == 5
    full = policies["full_config_retry"]
    assert full is not None and (full.max_attempts, full.max_delay, full.jitter) == (3, 10.0, True)

    desc, events = runs["simple"]
    assert desc["status"] == "COMPLETED", desc["error"]
    for name in policies:
        assert desc["steps"][name]["attempts"] == 1
        assert desc["steps"][name]["result"]["status_code"] == 200
    assert not [e for e in events if e.event_type == "action_retry"]

    # `retry: true` really retries: default policy, 3 attempts, 1 s then 2 s (jittered)
    desc, events = runs["simple_503"]
    assert desc["status"] == "FAILED"
    assert desc["error"]["step"] == "boolean_retry"
    assert desc["steps"]["boolean_retry"]["attempts"] == 3
    check_retries(events, "boolean_retry", 3, 1.0, 2.0)
    assert desc["steps"]["integer_retry"]["status"] == "SKIPPED"
