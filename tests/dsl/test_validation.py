"""Bad playbooks get errors that name the file, the line and the field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from noetl.dsl import load_playbook, parse_playbook
from noetl.errors import PlaybookError
from noetl.plan import compile_plan


def problems(text: str) -> list[str]:
    with pytest.raises(PlaybookError) as info:
        parse_playbook(textwrap.dedent(text), "pb.yaml")
    return [str(p) for p in info.value.problems]


def checks(text: str) -> list[tuple[str, int | None, str]]:
    """(severity, line, message) of each problem of an invalid playbook."""
    with pytest.raises(PlaybookError) as info:
        parse_playbook(textwrap.dedent(text), "pb.yaml")
    return [(p.severity, p.line, p.message) for p in info.value.problems]


HEAD = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: t}
"""


def test_unknown_target_names_step_edge_and_line() -> None:
    out = problems(HEAD + textwrap.dedent("""\
        workflow:
          - step: start
            next: [{step: load}]
          - step: load
            type: python
            code: "def main(): return 1"
            next:
              - step: end
              - step: lod
          - step: end
        """))
    assert out == ["step 'load' → next[1] (line 12): unknown step 'lod' (did you mean 'load'?)"]


def test_missing_start_and_duplicate_names() -> None:
    out = problems(HEAD + textwrap.dedent("""\
        workflow:
          - step: a
          - step: a
        """))
    assert any("duplicate step name" in p and "line 6" in p for p in out)
    assert any("no step named 'start'" in p for p in out)


def test_unknown_type_and_bad_retry_and_save() -> None:
    out = problems(HEAD + textwrap.dedent("""\
        workflow:
          - step: start
            type: pythn
          - step: b
            type: python
            code: "def main(): return 1"
            retry: {max_attempts: 0, backoff: 2}
            save: {storage: mongodb}
        """))
    joined = "\n".join(out)
    assert "step 'start' (line 6): unknown type 'pythn' (did you mean 'python'?)" in joined
    assert "step 'b' → retry → max_attempts" in joined
    assert "unknown key 'backoff'" in joined
    assert "step 'b' → save → storage" in joined and "mongodb" in joined


def test_bad_retry_shape_and_workbook_reference() -> None:
    out = problems(HEAD + textwrap.dedent("""\
        workbook:
          - name: real
            type: python
            code: "def main(): return 1"
        workflow:
          - step: start
            type: workbook
            name: imaginary
            retry: "often"
        """))
    joined = "\n".join(out)
    assert "unknown workbook task 'imaginary'" in joined
    assert "retry" in joined and "must be true, a number of attempts, or a mapping" in joined


def test_yaml_syntax_error_has_line() -> None:
    out = problems("apiVersion: noetl.io/v1\nkind: Playbook\nworkflow: [\n  - step: x\n")
    assert len(out) == 1 and out[0].startswith("yaml (line")


def test_file_name_in_error(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("kind: Playbook\n")
    with pytest.raises(PlaybookError) as info:
        load_playbook(f)
    assert str(f) in str(info.value)
    text = str(info.value)
    assert "apiVersion" in text and "workflow" in text and "metadata" in text


def test_type_and_tool_are_the_same_key() -> None:
    pb = parse_playbook(HEAD + textwrap.dedent("""\
        workflow:
          - step: start
            tool: python
            code: "def main(): return 1"
        """))
    assert pb.steps["start"].type == "python"


def test_unknown_keys_are_warnings_not_errors() -> None:
    pb = parse_playbook(HEAD + "colour: blue\nworkflow:\n  - step: start\n    colour: red\n",
                        "pb.yaml")
    assert any("colour" in w and "line 4" in w for w in pb.warnings)
    assert any("unknown top-level key" in w for w in pb.warnings)


def test_edge_forms_and_plan() -> None:
    pb = parse_playbook(HEAD + textwrap.dedent("""\
        workflow:
          - step: start
            next:
              - when: "{{ workload.x }}"
                then: [a, {step: b, args: {k: 1}}]
              - else: [c]
          - step: a
            next: end
          - step: b
            next: [end]
          - step: c
            next: [end]
          - step: end
        """))
    edges = pb.steps["start"].next
    assert [(e.target, e.when, e.is_else) for e in edges] == [
        ("a", "{{ workload.x }}", False), ("b", "{{ workload.x }}", False), ("c", None, True)]
    assert edges[1].args == {"k": 1}
    plan = compile_plan(pb)
    assert plan.steps["end"].is_join
    assert plan.steps["end"].ancestors == {"start", "a", "b", "c"}
    assert not plan.steps["a"].is_join


def test_fixture_corpus_validates() -> None:
    """The 23 upstream fixtures: no errors, and every warning is listed in
    docs/compatibility.md (with the fixture's name and the warning's message)."""
    root = Path(__file__).resolve().parents[1] / "fixtures" / "noetl"
    compat = (Path(__file__).resolve().parents[2] / "docs" / "compatibility.md").read_text()
    files = sorted(root.rglob("*.yaml"))
    assert len(files) == 23
    unlisted = []
    for f in files:
        pb = load_playbook(f)
        compile_plan(pb)
        unlisted += [(f.name, w.message) for w in pb.warning_problems
                     if not (f.name in compat and w.message in compat)]
    assert not unlisted, f"warnings not listed in docs/compatibility.md: {unlisted}"


def _warnings(text: str) -> list[str]:
    return [w.removeprefix("pb.yaml: ")
            for w in parse_playbook(HEAD + textwrap.dedent(text), "pb.yaml").warnings]


def test_warnings_elsewhere_say_did_you_mean() -> None:
    out = _warnings("""\
        workflow:
          - step: start
            type: http
            url: http://127.0.0.1:9/x
            metod: POST
        """)
    assert out == ["step 'start' (line 8): unknown key 'metod' (did you mean 'method'?) "
                   "(ignored)"]


def test_auth_keys_nothing_reads_are_warnings_with_did_you_mean() -> None:
    out = _warnings("""\
        workbook:
          - name: call
            type: http
            url: http://127.0.0.1:9/x
            auth: {type: api_key, vaule: k}
        workflow:
          - step: start
            type: http
            url: http://127.0.0.1:9/x
            auth:
              type: basic
              usernme: me
              password: pw
            save:
              storage: postgres
              table: t
              auth: {source: credential, key: pg, feilds: {db_name: x}}
            next: [loop]
          - step: loop
            type: iterator
            collection: [1]
            element: i
            task:
              type: http
              url: http://127.0.0.1:9/x
              auth: {type: bearer, tokn: abc}
            next: [wb]
          - step: wb
            type: workbook
            name: call
        """)
    assert out == [
        "workbook 'call' → auth (line 8): unknown key 'vaule' for api_key auth "
        "(did you mean 'value'?) (ignored)",
        "step 'start' → auth (line 15): unknown key 'usernme' for basic auth "
        "(did you mean 'username'?) (ignored)",
        "step 'start' → save → auth (line 20): unknown auth key 'feilds' (did you mean "
        "'fields'?) (ignored: credential fields go under 'fields')",
        "step 'loop' → task → auth (line 29): unknown key 'tokn' for bearer auth "
        "(did you mean 'token'?) (ignored)",
    ]
    # the forms every key of which something reads give no warning
    assert not _warnings("""\
        workflow:
          - step: start
            type: http
            url: http://127.0.0.1:9/x
            auth: {type: bearer, token: "{{ workload.t }}"}
            save: {storage: postgres, table: t, auth: {source: credential, key: pg,
                                                       fields: {db_name: x}}}
        workload: {t: x}
        """)


def test_unreachable_steps_and_joins_missing_a_branch_are_warnings() -> None:
    out = _warnings("""\
        workflow:
          - step: start
            next: [a]
          - step: a
            next: [join]
          - step: orphan
            next: [join]
          - step: join
        """)
    assert out == [
        "step 'orphan' (line 9): unreachable: no edge leads here from 'start'",
        "step 'join' (line 11): join: 'orphan' leads here but is never reached from 'start', "
        "so this join never gets its arrival (it runs without it)",
    ]


def test_one_pass_reports_shape_template_code_and_warnings_together(tmp_path: Path) -> None:
    """All problems at once (the docs' promise): an unknown edge target does not hide the
    step's bad template or main() parameter, nor the warnings; no graph check guesses from
    the broken edge (no 'unreachable' for the step the typo meant)."""
    f = tmp_path / "two.yaml"
    f.write_text(textwrap.dedent("""\
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: two}
        workflow:
          - step: start
            type: python
            args: {v: "{{ strat }}"}
            code: |
              def main(v, w):
                  return v
            next: [Done]
            timout: 5
          - step: done
        """))
    with pytest.raises(PlaybookError) as e:
        load_playbook(f)
    got = [(p.severity, p.line, p.message) for p in e.value.problems]
    assert ("error", 11, "unknown step 'Done' (did you mean 'done'?)") in got
    assert ("error", 7, "unknown name 'strat' in template '{{ strat }}' "
            "(did you mean 'start'?)") in got
    assert any(s == "error" and line == 9 and "'w' has no value" in m for s, line, m in got)
    # (a timeout meant and lost: an error, see the near-miss test below)
    assert ("error", 12, "unknown key 'timout' (did you mean 'timeout'?)") in got
    assert not any("unreachable" in m for _, _, m in got)
    assert "step 'start' (line 12): unknown key 'timout'" in str(e.value)


def test_the_stored_snapshot_key_is_reserved() -> None:
    """A playbook's own top-level ``_noetl_source`` would be read back as the stored file and
    code lines when its plan is rebuilt from the store: refused, with its line."""
    got = problems(HEAD + "_noetl_source: {source: x.yaml}\nworkflow:\n  - step: start\n")
    assert got == ["_noetl_source (line 4): reserved for NoETL's stored copy of a playbook"]


def test_error_is_fine_where_the_engine_defines_it_or_the_playbook_does() -> None:
    """`error` in a step's edges (when and args) and retry predicates, a workload key or an
    arg named `error`: no problem; a default of it in a step's args: a warning (it is never
    defined there, so the default always wins)."""
    out = _warnings("""\
        workload: {limit: 2}
        workflow:
          - step: start
            type: python
            code: "def main(): return 1"
            retry: {max_attempts: 2, retry_when: "{{ 'x' in error }}", stop_when: "{{ error }}"}
            next:
              - step: handle
                when: "{{ error is not none }}"
                args: {error: "{{ error.message }}"}
              - step: end
          - step: handle
            type: python
            args: {note: "{{ error }}", other: "{{ error | default('none') }}"}
            code: "def main(note, error): return note"
            next: [end]
          - step: end
        """)
    assert out == []  # handle's own `error` arg comes from its incoming edge
    out = _warnings("""\
        workflow:
          - step: start
            type: python
            args: {why: "{{ error | default('none') }}"}
            code: "def main(why): return why"
        """)
    assert out == ["step 'start' → args.why (line 7): 'error' is not defined here, in template "
                   "\"{{ error | default('none') }}\": only a step's edges (next → when/args) "
                   "and its retry predicates (retry_when, stop_when) see 'error' (this "
                   "template's test or default of 'error' always finds it undefined)"]
    assert _warnings("""\
        workload: {error: none yet}
        workflow:
          - step: start
            type: python
            args: {why: "{{ error }}"}
            code: "def main(why): return why"
        """) == []


def test_a_when_that_is_no_template_is_read_as_an_expression() -> None:
    """Jinja's own literals and expressions without braces are fine; a boolean word Jinja
    does not know is an error (see the broken corpus); an unknown name a warning."""
    out = _warnings("""\
        workload: {ready: true}
        workflow:
          - step: start
            type: python
            code: "def main(): return {'n': 1}"
            next:
              - {step: a, when: "False"}
              - {step: a, when: "true"}
              - {step: a, when: "result.n > 0 and ready"}
              - {step: end, when: "finished"}
          - step: a
            type: python
            code: "def main(): return 2"
            next: [end]
          - step: end
        """)
    assert out == ["step 'start' → next[3].when (line 13): unknown name 'finished' in template "
                   "'{{ finished }}' (not a workload key, step or context name)"]
    assert problems(HEAD + """\
workflow:
  - step: start
    next:
      - {step: end, when: "result.n >"}
  - step: end
""")[0].startswith("step 'start' → next[0].when (line 7): template syntax error")


def test_result_on_a_router_is_a_warning_naming_the_step_whose_result_it_may_be() -> None:
    out = _warnings("""\
        workflow:
          - step: start
            type: python
            code: "def main(): return {'ok': True}"
            next: [check]
          - step: check
            next:
              - step: a
                when: "{{ result.ok }}"
                args: {n: "{{ this['n'] }}", fine: "{{ start.ok }}"}
              - else: [end]
          - step: a
            type: python
            code: "def main(): return 1"
            next: [end]
          - step: end
            save: {storage: event, data: {r: "{{ result.x }}"}}
        """)
    assert sorted(out) == [
        "step 'check' → next[0].args.n (line 13): 'check' is a router (a step with no action), "
        "so it has no result: 'this.n' is always None here (did you mean 'start.n'?)",
        "step 'check' → next[0].when (line 12): 'check' is a router (a step with no action), "
        "so it has no result: 'result.ok' is always None here (did you mean 'start.ok'?)",
    ]  # `end` has a save: it runs (its args are its result)
    out = _warnings("""\
        workload: {go: true}
        workflow:
          - step: start
            next:
              - {step: end, when: "result.go"}
          - step: end
        """)
    assert out == ["step 'start' → next[0].when (line 8): 'start' is a router (a step with no "
                   "action), so it has no result: 'result.go' is always None here: name the "
                   "step whose result it is, or read the workload"]


def test_a_near_miss_of_a_missing_key_that_changes_what_runs_is_an_error() -> None:
    """`nxt:` would end the workflow at its step, `typ:` make it a router, `retyr:` drop its
    retries: errors, with the key meant; another unknown key stays a warning."""
    got = checks(HEAD + textwrap.dedent("""\
        workflow:
          - step: start
            type: python
            code: "def main(): return 1"
            nxt: [{step: drop}]
            retyr: {max_attempts: 3}
            colour: blue
          - step: drop
            typ: python
            code: "def main(): return 2"
          - step: kept
            type: python
            code: "def main(): return 3"
            next: [{step: drop}]
            nxt: [{step: start}]
        """))
    assert ("error", 8, "unknown key 'nxt' (did you mean 'next'?)") in got
    assert ("error", 9, "unknown key 'retyr' (did you mean 'retry'?)") in got
    assert ("error", 12, "unknown key 'typ' (did you mean 'type'?)") in got
    assert ("warning", 10, "unknown key 'colour' (ignored)") in got
    # the step has `next`: its `nxt` changes nothing it would otherwise do
    assert any(kind == "warning" and line == 18 and "'nxt'" in msg for kind, line, msg in got)


def test_a_key_merely_like_one_the_step_lacks_stays_a_warning() -> None:
    """`tags` is not a typo of `args`, nor `text` of `next`, `alert` of `assert`: only a
    close word with the same first letter is taken for the key meant."""
    pb = parse_playbook(HEAD + textwrap.dedent("""\
        workflow:
          - step: start
            type: python
            code: "def main(): return 1"
            tags: [nightly]
            text: the first step
            alert: ops
        """), "pb.yaml")
    assert [(w.severity, w.line, w.message.split(" (")[0]) for w in pb.warning_problems] == [
        ("warning", 8, "unknown key 'tags'"), ("warning", 9, "unknown key 'text'"),
        ("warning", 10, "unknown key 'alert'")]


def test_an_unknown_type_names_the_type_meant() -> None:
    out = problems(HEAD + textwrap.dedent("""\
        workflow:
          - step: start
            type: pyhton
            code: "def main(): return 1"
        """))
    assert out == ["step 'start' (line 6): unknown type 'pyhton' (did you mean 'python'?)"]
