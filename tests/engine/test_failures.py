"""A failed step never looks successful; retries are events; errors carry type and traceback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_yaml, types_for


def test_step_that_raises_fails_the_execution(sqlite_url: str) -> None:
    desc, events = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: boom}
        workflow:
          - step: start
            next: [{step: explode}]
          - step: explode
            type: python
            code: |
              def main():
                  raise ValueError("the answer is not 42")
            next: [{step: after}]
          - step: after
            type: python
            code: |
              def main():
                  return 1
    """, sqlite_url)
    assert desc["status"] == "FAILED"
    failed = [e for e in events if e.event_type == "action_failed"]
    assert len(failed) == 1
    assert failed[0].error_type == "ValueError"
    assert failed[0].error == "the answer is not 42"
    assert "Traceback" in failed[0].stack_trace and "raise ValueError" in failed[0].stack_trace
    assert desc["error"]["step"] == "explode"
    assert desc["error"]["type"] == "ValueError"
    assert types_for(events, "after") == []  # no later step ran
    assert desc["steps"]["after"]["status"] == "SKIPPED"
    assert desc["steps"]["explode"]["status"] == "FAILED"
    tail = [e.event_type for e in events[-4:]]
    assert tail == ["action_failed", "step_failed", "workflow_failed", "execution_failed"]


def test_retry_fails_twice_then_succeeds(sqlite_url: str, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    desc, events = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: flaky}
        workload: {counter: COUNTER}
        workflow:
          - step: start
            next: [{step: flaky}]
          - step: flaky
            type: python
            retry: {max_attempts: 5, initial_delay: 0.01, backoff_multiplier: 1, jitter: false}
            args: {path: "{{ workload.counter }}"}
            code: |
              def main(path):
                  import os
                  n = int(open(path).read()) if os.path.exists(path) else 0
                  open(path, "w").write(str(n + 1))
                  if n < 2:
                      raise RuntimeError(f"transient failure {n + 1}")
                  return {"ok": True, "attempt": n + 1}
            next: [{step: done}]
          - step: done
            type: python
            args: {v: "{{ flaky.attempt }}"}
            code: |
              def main(v):
                  return {"seen": v}
    """.replace("COUNTER", str(counter)), sqlite_url)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["steps"]["flaky"]["attempts"] == 3
    assert desc["steps"]["done"]["result"] == {"seen": 3}
    flaky = types_for(events, "flaky")
    assert flaky.count("action_retry") == 2
    assert flaky.count("action_failed") == 2
    assert flaky.count("action_started") == 3
    retries = [e for e in events if e.event_type == "action_retry"]
    assert [r.context["next_attempt"] for r in retries] == [2, 3]


def test_retry_exhausted_fails(sqlite_url: str) -> None:
    desc, events = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: always}
        workflow:
          - step: start
            type: python
            retry: {max_attempts: 3, initial_delay: 0.0}
            code: |
              def main():
                  raise KeyError("nope")
    """, sqlite_url)
    assert desc["status"] == "FAILED"
    assert desc["steps"]["start"]["attempts"] == 3
    assert types_for(events, "start").count("action_retry") == 2
    assert desc["error"]["type"] == "KeyError"


def test_retry_when_false_stops_retrying(sqlite_url: str) -> None:
    desc, events = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: picky}
        workflow:
          - step: start
            type: python
            retry:
              max_attempts: 4
              initial_delay: 0
              retry_when: "{{ 'transient' in error }}"
            code: |
              def main():
                  raise RuntimeError("permanent")
    """, sqlite_url)
    assert desc["status"] == "FAILED"
    assert desc["steps"]["start"]["attempts"] == 1
    assert "action_retry" not in types_for(events, "start")


def test_undefined_template_name_fails_and_names_it(sqlite_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`noetl validate` catches this now (tests/dsl); the run-time check stays, for names a
    validator cannot see: with the deep checks off, the step still fails, never runs."""
    monkeypatch.setattr("noetl.dsl.deep.check_deep", lambda *a, **k: None)
    desc, events = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: typo}
        workload: {table: users}
        workflow:
          - step: start
            next: [{step: use}]
          - step: use
            type: python
            args: {t: "{{ worklod.table }}"}
            code: |
              def main(t):
                  return t
    """, sqlite_url)
    assert desc["status"] == "FAILED"
    err = desc["error"]
    assert err["type"] == "TemplateError"
    assert "worklod" in err["message"] and "use" in err["message"]
    assert types_for(events, "use").count("action_completed") == 0


def test_missing_attribute_is_none(sqlite_url: str) -> None:
    desc, _ = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: soft}
        workload: {cfg: {a: 1}}
        workflow:
          - step: start
            type: python
            args: {b: "{{ workload.cfg.b or 7 }}"}
            code: |
              def main(b):
                  return b
    """, sqlite_url)
    assert desc["status"] == "COMPLETED"
    assert desc["result"] == 7


def test_failure_routed_by_error_edge_is_handled(sqlite_url: str) -> None:
    desc, _ = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: handled}
        workflow:
          - step: start
            type: python
            code: |
              def main():
                  raise OSError("disk gone")
            next:
              - when: "{{ error is not none }}"
                step: cleanup
                args: {why: "{{ error.message }}"}
              - step: normal
          - step: cleanup
            type: python
            code: |
              def main(why):
                  return {"cleaned": why}
          - step: normal
            type: python
            code: |
              def main():
                  return "normal"
    """, sqlite_url)
    assert desc["status"] == "COMPLETED"
    assert desc["steps"]["start"]["status"] == "FAILED"
    assert desc["steps"]["cleanup"]["result"] == {"cleaned": "disk gone"}
    assert desc["steps"]["normal"]["status"] == "SKIPPED"


def test_python_main_errors_are_clear(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("noetl.dsl.deep.check_deep", lambda *a, **k: None)  # see above
    desc, _ = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: params}
        workflow:
          - step: start
            type: python
            code: |
              def main(missing):
                  return missing
    """, sqlite_url)
    assert desc["status"] == "FAILED"
    assert "missing" in desc["error"]["message"]
    assert desc["error"]["type"] == "TypeError"


def test_python_timeout_really_stops_the_code(sqlite_url: str, tmp_path: Path) -> None:
    # the timeout leaves the child process time to start and write its pid on a loaded
    # machine (0.5 s did not: an attempt was killed before its code ran)
    pidfile = tmp_path / "pids"
    desc, events = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: slow}
        workload: {pidfile: PIDFILE}
        workflow:
          - step: start
            type: python
            timeout: 3
            retry: {max_attempts: 2, initial_delay: 0}
            args: {p: "{{ workload.pidfile }}"}
            code: |
              def main(p):
                  import os, time
                  with open(p, "a") as f:
                      f.write(f"{os.getpid()}\\n")
                  time.sleep(60)
                  return 1
    """.replace("PIDFILE", str(pidfile)), sqlite_url)
    assert desc["status"] == "FAILED"
    assert desc["error"]["type"] == "TimeoutError"
    assert desc["steps"]["start"]["attempts"] == 2
    assert types_for(events, "start").count("action_retry") == 1
    pids = [int(x) for x in pidfile.read_text().split()]
    assert len(pids) == 2
    for pid in pids:  # both attempts' processes were killed, not left sleeping
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_python_with_timeout_returns_normally(sqlite_url: str) -> None:
    desc, events = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: quick}
        workflow:
          - step: start
            type: python
            timeout: 20
            args: {x: 2}
            code: |
              def main(x):
                  print("in child")
                  return {"sq": x * x}
    """, sqlite_url)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"] == {"sq": 4}
    done = [e for e in events if e.event_type == "action_completed"]
    assert done[0].result["meta"]["stdout"] == "in child"


def test_step_code_sees_noetl_globals(sqlite_url: str) -> None:
    desc, _ = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: globals}
        workload: {who: me}
        workflow:
          - step: start
            type: python
            code: |
              def main():
                  return {"who": context["workload"]["who"], "eid": context["execution_id"],
                          "mods": [os.sep, datetime.date(2020, 1, 2).isoformat(),
                                   len(str(uuid.uuid4()))]}
    """, sqlite_url)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"] == {"who": "me", "eid": desc["execution_id"],
                              "mods": ["/", "2020-01-02", 36]}


def test_resolved_secrets_are_redacted_from_outcomes() -> None:
    from noetl.tools.base import Services
    from noetl.tools.registry import register_tool
    from noetl.worker.runner import run_work

    def leaky(call):  # a careless tool that echoes its credential
        call.services.secrets.add("s3cr3t-value")
        raise RuntimeError("login failed for password s3cr3t-value")

    register_tool("leaky_test_tool", leaky)
    work = {"job_id": "1", "execution_id": "1", "step": "x", "action": {"type": "leaky_test_tool"},
            "args": {}, "edge_args": {}, "ctx": {"workload": {}, "results": {}, "extra": {}}}
    out = run_work(work, Services())
    assert out["status"] == "error"
    assert "s3cr3t-value" not in repr(out)
    assert out["error"]["message"] == "login failed for password ***"


def test_timeout_of_a_tool_without_its_own() -> None:
    """A step ``timeout`` on a tool that does not enforce one itself: the worker stops waiting
    for it (the tool's thread runs on, here until released) and the step fails."""
    import threading

    from noetl.tools.base import Services
    from noetl.tools.registry import register_tool
    from noetl.worker.runner import run_work

    release = threading.Event()
    register_tool("blocking_test_tool", lambda call: release.wait(60) and {"late": True})
    register_tool("quick_test_tool", lambda call: {"args": call.args})

    def work(tool: str) -> dict[str, Any]:
        return {"job_id": "1", "execution_id": "1", "step": "x", "action": {"type": tool},
                "args": {"a": 1}, "edge_args": {}, "timeout": 0.2,
                "ctx": {"workload": {}, "results": {}, "extra": {}}}

    try:
        out = run_work(work("blocking_test_tool"), Services())
    finally:
        release.set()
    assert out["status"] == "error"
    assert out["error"]["type"] == "TimeoutError"
    assert out["error"]["message"] == "step 'x' timed out after 0.2 s"
    done = run_work(work("quick_test_tool"), Services())
    assert done["status"] == "ok" and done["data"] == {"args": {"a": 1}}, done

    def own_timeout(call: Any) -> Any:
        raise TimeoutError("socket read timed out")

    register_tool("own_timeout_test_tool", own_timeout)  # raised at once: the tool's error
    own = run_work(work("own_timeout_test_tool"), Services())
    assert (own["error"]["type"], own["error"]["message"]) == (
        "TimeoutError", "socket read timed out"), own["error"]


def test_edge_reading_error_count_is_not_a_failure_handler(sqlite_url: str) -> None:
    """Only edges whose `when` reads the name `error` handle a failure; `result.error_count`
    merely contains the letters."""
    desc, _ = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: not_a_handler}
        workflow:
          - step: start
            type: python
            code: |
              def main():
                  raise RuntimeError("boom")
            next:
              - when: "{{ error is not none and 'disk' in error.message }}"
                step: cleanup
              - when: "{{ (result.error_count or 0) == 0 }}"
                step: after
          - step: cleanup
            type: python
            code: "def main():\n    return 0"
          - step: after
            type: python
            code: "def main():\\n    return 1"
    """, sqlite_url)
    assert desc["status"] == "FAILED"  # the real handler declined: nothing handled it
    assert desc["steps"]["after"]["status"] == "SKIPPED"
    assert desc["steps"]["cleanup"]["status"] == "SKIPPED"


def test_engine_run_step_args_error_names_its_template(sqlite_url: str) -> None:
    """A loop's args (rendered by the engine, not a worker) that don't make a mapping fail the
    step with the same user-facing keys as a worker-run step's: field, template, reason."""
    desc, _ = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: loop_args}
        workload: {x: [1, 2]}
        workflow:
          - step: start
            next: [{step: each}]
          - step: each
            type: iterator
            args: "{{ workload.x }}"
            collection: [1]
            element: i
            task:
              type: python
              code: |
                def main(**kw):
                    return 1
            next: [{step: end}]
          - step: end
        """, sqlite_url)
    assert desc["status"] == "FAILED"
    err = desc["error"]
    assert (err["step"], err["field"], err["template"]) == ("each", "args", "{{ workload.x }}")
    assert err["reason"] == "rendered to list, not a mapping"
