"""No run may complete while template text it should have rendered reached a tool.

Every embedded compat run is tapped (tests/compat/template_tap.py, installed for all of
tests/compat by its conftest): after each test, a run that COMPLETED with ``{{``/``{%`` in what
one of its tools received fails that test. That covers the upstream corpus tests
(test_corpus_*.py), the NoETL-style suite (test_noetl_style.py) and the ``rNN`` reproductions
below. Distributed runs are scanned from what the server keeps (test_noetl_style_distributed.py).
These tests show the scan itself can fail: it flags a completed run whose tool received
template text, and lets a failed one be.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from noetl.dsl import load_playbook, parse_playbook
from noetl.errors import NoetlError
from tests.compat.conftest import Compat
from tests.compat.template_tap import TAP, Tap, scan_run

pytestmark = pytest.mark.postgres
REPO = Path(__file__).resolve().parents[2]
REPRODUCTIONS = sorted(p for p in (REPO / "tests").rglob("r[0-9][0-9]*_*.yaml"))
RAW = "{% raw %}{{ left_as_is }}{% endraw %}"


def pb(name: str, steps: str) -> str:
    return f"apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {{name: {name}}}\n" \
           f"workload: {{who: Ada}}\nworkflow:\n{steps}"


def start(compat: Compat, text: str) -> dict:
    playbook = parse_playbook(text, "<scan test>")
    eid = compat.runner.engine.start(playbook).execution_id
    return compat.runner.wait(eid, 60)


def test_tap_sees_every_tool_call(compat: Compat, template_tap_installed: Tap) -> None:
    desc = start(compat, pb("clean", """\
  - step: start
    type: duckdb
    database: ":memory:"
    args: {who: "{{ workload.who }}"}
    command: "SELECT '{{ workload.who }}' AS w"
    next: [py]
  - step: py
    type: python
    args: {w: "{{ start.command_0.rows[0].w }}"}
    code: |
      def main(w):
          return "{{ not a template: python code is not rendered }}" and w
"""))
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"] == "Ada"
    assert template_tap_installed.seen[desc["execution_id"]] == 2  # duckdb, python
    assert template_tap_installed.leaks_of(desc["execution_id"]) == []


@pytest.mark.parametrize("form", ["command", "command_b64", "args"])
def test_completed_run_with_template_text_is_flagged(compat: Compat, form: str) -> None:
    since = len(TAP.leaks)
    sql = f"SELECT '{RAW}' AS t"
    key = {"command": f"command: \"{sql}\"",
           "command_b64": f"command_b64: {base64.b64encode(sql.encode()).decode()}",
           "args": f"args: {{t: \"{RAW}\"}}\n    command: \"SELECT 1 AS t\""}[form]
    desc = start(compat, pb("leaky", f"""\
  - step: start
    type: duckdb
    database: ":memory:"
    {key}
"""))
    eid = desc["execution_id"]
    assert desc["status"] == "COMPLETED", desc["error"]
    leaks = TAP.leaks_of(eid)
    assert [leak.step for leak in leaks] == ["start"]
    assert "{{" in leaks[0].text or "{%" in leaks[0].text
    bad = TAP.violations(since)
    assert len(bad) == 1 and eid in bad[0] and "COMPLETED" in bad[0]
    TAP.intended.add(eid)  # meant: the per-test check must not fail this test


def test_failed_run_is_not_a_violation(compat: Compat) -> None:
    since = len(TAP.leaks)
    desc = start(compat, pb("leaky_fails", f"""\
  - step: start
    type: python
    args: {{t: "{RAW}"}}
    code: |
      def main(t):
          raise ValueError("no")
"""))
    assert desc["status"] == "FAILED"
    assert [x.where for x in TAP.leaks_of(desc["execution_id"])] == ["python → args.t"]
    assert TAP.violations(since) == []


def test_server_side_scan_reads_inputs_and_saves(compat: Compat) -> None:
    desc = start(compat, pb("kept", f"""\
  - step: start
    type: python
    args: {{t: "{RAW}", ok: "{{{{ workload.who }}}}"}}
    code: |
      def main(t, ok):
          return ok
    save:
      storage: event
      data: {{again: "{RAW}"}}
"""))
    TAP.intended.add(desc["execution_id"])
    with compat.runner.store.read() as tx:
        events = [e.to_dict() for e in tx.get_events(int(desc["execution_id"]), 0, 1000)]
    found = scan_run(desc, events)
    assert len(found) == 2, found
    assert found[0] == "step 'start' input.t: '{{ left_as_is }}'"
    assert found[1].startswith("step 'start' meta.save.data.again:")
    clean = start(compat, pb("kept_clean", """\
  - step: start
    type: python
    args: {ok: "{{ workload.who }}"}
    code: |
      def main(ok):
          return ok
"""))
    with compat.runner.store.read() as tx:
        events = [e.to_dict() for e in tx.get_events(int(clean["execution_id"]), 0, 1000)]
    assert scan_run(clean, events) == []


@pytest.mark.parametrize("path", REPRODUCTIONS, ids=[p.stem for p in REPRODUCTIONS])
def test_reproduction_never_completes_with_template_text(compat: Compat, path: Path) -> None:
    """Whatever an rNN reproduction ends with, it does not complete with `{{ }}` in a tool
    (the per-test tap check is the assertion; this runs it)."""
    since = len(TAP.leaks)
    try:
        eid = compat.runner.engine.start(load_playbook(path)).execution_id
    except NoetlError:  # refused at validation or start: nothing reached a tool
        assert TAP.violations(since) == []
        return
    desc = compat.runner.wait(eid, 60)
    assert desc["status"] in ("COMPLETED", "FAILED"), desc
    assert TAP.violations(since) == []


def test_caller_given_text_is_data(compat: Compat) -> None:
    """Execution args are data: `{{ }}` text a caller passed reaches the tool as text and is
    not a template the run should have rendered; the same text written in the playbook is."""
    since = len(TAP.leaks)
    text = pb("echo_arg", """\
  - step: start
    type: python
    args: {who: "{{ workload.who }}"}
    code: |
      def main(who):
          return who
""")
    eid = compat.runner.engine.start(parse_playbook(text, "<scan test>"),
                                     args={"who": "{{ from_the_caller }}"}).execution_id
    desc = compat.runner.wait(eid, 60)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"] == "{{ from_the_caller }}"
    assert [x.text for x in TAP.leaks_of(eid)] == ["{{ from_the_caller }}"]
    assert TAP.violations(since) == []
