"""Issue 10: every compatibility reproduction (tests/compat/repro, copied from
shared/compat-repro) behaves as its header comment says, on the embedded runner, against the
local stand-ins (HTTP echo server, the test PostgreSQL)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

import pytest

from noetl.dsl import load_playbook, parse_playbook
from noetl.errors import PlaybookError
from tests.compat.conftest import REPROS, Compat, events_of

pytestmark = pytest.mark.postgres
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def run_text(compat: Compat, text: str) -> tuple[dict[str, Any], Any]:
    """Run playbook text on the module's runner; (description, events)."""
    return compat.finish(compat.runner.engine.start(parse_playbook(text)).execution_id)


def ok(compat: Compat, name: str, args: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any]:
    desc, events = compat.run(f"repro:{name}", args)
    assert desc["status"] == "COMPLETED", desc["error"]
    return desc, events


def test_r01_a_save_step_runs_its_save(compat: Compat) -> None:
    desc, events = ok(compat, "r01_save_step_type.yaml")
    done = events_of(events, "end", "action_completed")
    assert len(done) == 1
    assert done[0].meta["save"] == {"storage": "event_log", "saved": "event",
                                    "data": {"message": "hi"}}
    assert desc["steps"]["end"]["result"] == {"message": "hi"}  # what it saved
    assert events_of(events, "end", "step_started")[0].node_type == "save"


def test_r02_a_steps_args_are_bare_names_in_its_sql(compat: Compat) -> None:
    desc, _ = ok(compat, "r02_args_in_tool_templates.yaml")
    assert desc["result"]["command_0"]["rows"] == [{"greeting": "hello Ada"}]


def test_r02_an_arg_wins_over_a_step_result_of_the_same_name(compat: Compat) -> None:
    desc, _ = run_text(compat, """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: precedence}
workflow:
  - step: start
    type: python
    code: |
      def main():
          return {"v": "from the step"}
    next: [who]
  - step: who
    type: python
    code: |
      def main():
          return "from the step"
    next: [use]
  - step: use
    type: duckdb
    database: ":memory:"
    args: {who: "from the arg", shown: "{{ start.v }}"}
    command: "SELECT '{{ who }}' AS who, '{{ args.who }}' AS via_args, '{{ shown }}' AS shown;"
""")
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"]["command_0"]["rows"] == [
        {"who": "from the arg", "via_args": "from the arg", "shown": "from the step"}]


def test_r03_edge_args_are_names_in_the_targets_args(compat: Compat) -> None:
    desc, _ = ok(compat, "r03_edge_args_as_names.yaml")
    assert desc["result"] == {"city": "Oslo", "t": 21}


def test_r04_a_loop_save_sees_results_and_count(compat: Compat) -> None:
    desc, events = ok(compat, "r04_loop_save_results_count.yaml")
    assert desc["result"] == [1, 2, 3]
    saves = [e.meta["save"] for e in events_of(events, "start", "action_completed")
             if e.meta and "save" in e.meta]
    assert saves == [{"storage": "event", "saved": "event", "data": {"n": 3, "sum": 6}}]


def test_r05_a_loop_tasks_data_is_its_input(compat: Compat) -> None:
    desc, _ = ok(compat, "r05_loop_task_data_ignored.yaml")
    assert desc["result"] == [{"sq": 1}, {"sq": 4}]


def test_r05b_a_playbook_tasks_data_is_the_childs_workload(compat: Compat) -> None:
    desc, _ = ok(compat, "r05b_loop_playbook_task_data.yaml")
    assert desc["result"] == ["hi Oslo", "hi Rome"]


def test_r06_b64_sql_is_decoded_then_rendered(compat: Compat) -> None:
    desc, _ = ok(compat, "r06_command_b64_unrendered.yaml")
    assert desc["result"]["command_0"]["rows"] == [{"msg": "say hi"}]


def test_r07_params_in_a_save_statement_are_the_saves_data_bound(compat: Compat) -> None:
    compat.execute("DROP TABLE IF EXISTS public.r07")
    ok(compat, "r07_save_statement_params.yaml")
    assert compat.query("SELECT id, v FROM public.r07") == [("k1", "v1")]
    # a value that would break string-built SQL is stored verbatim: it was bound
    evil = "x'); DROP TABLE public.r07; --"
    text = (REPROS / "r07_save_statement_params.yaml").read_text().replace(
        'return {"v": "v1"}', f"return {{'v': {evil!r}}}").replace("id: k1", "id: k2")
    eid = compat.runner.engine.start(parse_playbook(text)).execution_id
    desc, _ = compat.finish(eid)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert compat.query("SELECT id, v FROM public.r07 ORDER BY id") == [("k1", "v1"), ("k2", evil)]


def test_r08_workload_templates_render_at_start(compat: Compat,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_HOST", "db.internal")  # set, but not allowed: the default applies
    engine = compat.runner.engine  # NOETL_TEMPLATE_ENV, as a process read it at its start:
    monkeypatch.setattr(engine, "settings", replace(engine.settings, template_env=()))
    desc, events = ok(compat, "r08_workload_templates_unrendered.yaml")
    assert desc["result"]["db_host"] == "localhost"
    assert UUID.match(desc["result"]["job_id"]), desc["result"]
    started = next(e for e in events if e.event_type == "execution_started")
    assert started.context["workload"] == desc["result"]  # rendered once, as stored
    monkeypatch.setattr(engine, "settings", replace(engine.settings, template_env=("DB_HOST",)))
    desc, _ = ok(compat, "r08_workload_templates_unrendered.yaml")
    assert desc["result"]["db_host"] == "db.internal"


def test_r08_a_workload_template_that_cannot_render_fails_the_start(compat: Compat) -> None:
    desc, events = run_text(compat, """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: bad_workload}
workload:
  host: "{{ env.NOT_ALLOWED_HOST }}"
workflow:
  - step: start
    type: python
    code: |
      def main():
          return "ran"
""")
    assert desc["status"] == "FAILED"
    assert "workload.host" in desc["error"]["message"]
    assert "NOETL_TEMPLATE_ENV" in desc["error"]["message"]
    assert not [e for e in events if e.event_type == "action_started"]  # nothing ran


def test_caller_args_are_data_never_rendered(compat: Compat) -> None:
    pb = load_playbook(REPROS / "r08_workload_templates_unrendered.yaml")
    eid = compat.runner.engine.start(pb, args={"db_host": "{{ literally }}"}).execution_id
    desc, _ = compat.finish(eid)
    # the arg is data: it reaches the step as text (the step renders only its own templates)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"]["db_host"] == "{{ literally }}"


def test_r09_python_context_sees_every_earlier_result(compat: Compat) -> None:
    desc, _ = ok(compat, "r09_python_context_lacks_results.yaml")
    assert desc["result"] == {"seen": 42}


def test_r10_workbook_step_data_feeds_the_tasks_own_query(compat: Compat) -> None:
    compat.api.clear()
    desc, _ = ok(compat, "r10_workbook_http_data_replaced.yaml")
    sent = [r for r in compat.api.requests if r["path"] == "/echo/forecast"]
    want = {"latitude": "51.5", "longitude": "-0.1", "hourly": "temperature_2m"}
    assert [r["query"] for r in sent] == [want]
    assert desc["result"] == want


def test_r11_input_on_an_edge_is_args(compat: Compat) -> None:
    desc, _ = ok(compat, "r11_edge_input_dropped.yaml")
    assert desc["result"] == {"city": "Oslo"}


def test_r12_an_auth_key_no_form_knows_is_named_with_the_likely_form() -> None:
    with pytest.raises(PlaybookError) as err:
        load_playbook(REPROS / "r12_auth_env_shorthand_message.yaml")
    text = str(err.value)
    assert "key 'env' is not understood" in text
    assert "{source: env, name: API_BEARER_TOKEN, type: bearer}" in text
    assert "(line 12)" in text


def test_r13_validation_reports_a_cycle_of_routers() -> None:
    with pytest.raises(PlaybookError) as err:
        load_playbook(REPROS / "r13_router_cycle.yaml")
    assert "a cycle of routers with no action step" in str(err.value)


def test_r13_a_cycle_of_routers_fails_instead_of_hanging(compat: Compat,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The run-time hop cap, for a cycle a validator misses (its graph checks off here)."""
    monkeypatch.setattr("noetl.dsl.deep.check_graph", lambda *a, **k: None)
    t0 = time.monotonic()
    desc, _events = compat.run("repro:r13_router_cycle.yaml")
    assert desc["status"] == "FAILED"
    assert "routers cycle without an action step" in desc["error"]["message"]
    assert time.monotonic() - t0 < 30


def test_r13_cli_run_of_a_router_cycle_ends(tmp_path: Any) -> None:
    """`noetl run` in a new process: refused at once (exit 2) with the message."""
    proc = subprocess.run(
        [sys.executable, "-m", "noetl", "run", str(REPROS / "r13_router_cycle.yaml"), "--json"],
        capture_output=True, text=True, timeout=60,
        env={"NOETL_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2, proc.stderr
    assert "cycle of routers" in proc.stdout + proc.stderr


def test_workload_keys_are_bare_names_below_everything_else(compat: Compat) -> None:
    """NoETL exposed workload keys at top level (suite finding F2); a step result or an arg of
    the same name wins over them."""
    desc, _ = run_text(compat, """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: workload_bare}
workload: {greeting: hello, start: "the workload's", who: workload}
workflow:
  - step: start
    type: python
    code: |
      def main():
          return {"n": 1}
    next: [show]
  - step: show
    type: python
    args:
      who: arg
      g: "{{ greeting }}"
      s: "{{ start.n }}"
      w: "{{ who }}"
    code: |
      def main(g, s, w, who):
          return [g, s, w, who]
""")
    assert desc["status"] == "COMPLETED", desc["error"]
    # `w` renders before the step's args exist, so it sees the workload's `who`
    assert desc["result"] == ["hello", 1, "workload", "arg"]


def test_a_python_loop_task_gets_value_as_noetl_did(compat: Compat) -> None:
    desc, _ = run_text(compat, """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: loop_value}
workflow:
  - step: start
    type: iterator
    collection: [1, 2]
    element: n
    task:
      type: python
      code: |
        def main(value, n):
            return value * 10 + n
""")
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"] == [11, 22]


def test_a_save_task_in_a_loop_saves_each_item(compat: Compat) -> None:
    desc, events = run_text(compat, """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: loop_save_task}
workflow:
  - step: start
    type: iterator
    collection: [a, b]
    element: x
    task:
      type: save
      storage: event
      data: {v: "{{ x }}"}
""")
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"] == [{"v": "a"}, {"v": "b"}]
    saved = sorted(e.meta["save"]["data"]["v"] for e in events_of(events, "start", "action_completed"))
    assert saved == ["a", "b"]
