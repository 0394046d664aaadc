"""The tool spec (noetl.dsl.tools_spec) is the one list the DSL, the plan, the worker and the
registry read: every spec'd tool resolves in the registry, every registry tool has a spec, and
the lists that used to be kept by hand agree with it."""

from __future__ import annotations

import importlib

import pytest

from noetl.dsl import parse_playbook
from noetl.dsl.model import STEP_TYPES, TOOL_KEYS
from noetl.dsl.schema import playbook_schema
from noetl.dsl.tools_spec import ENGINE_STEPS, SAVE_STORAGES, TOOLS, unrendered
from noetl.errors import ToolError
from noetl.plan import compile_plan
from noetl.tools import registry
from noetl.tools.save import STORAGES


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_every_spec_tool_resolves_in_the_registry(name: str) -> None:
    spec = TOOLS[name]
    if spec.target is None:  # known to the DSL, no built-in tool (snowflake): UnknownTool
        with pytest.raises(ToolError) as exc:
            registry.get_tool(name)
        assert exc.value.error_type == "UnknownTool"
        return
    assert callable(registry.get_tool(name))
    module, func = spec.target.split(":")
    assert registry.get_tool(name) is getattr(importlib.import_module(module), func)


def test_every_registry_tool_has_a_spec() -> None:
    assert set(registry.BUILTIN) <= set(TOOLS)
    assert {n for n, s in TOOLS.items() if s.target} == set(registry.BUILTIN)


def test_tools_and_engine_constructs_are_the_step_types() -> None:
    assert not set(TOOLS) & set(ENGINE_STEPS)
    assert STEP_TYPES == set(TOOLS) | set(ENGINE_STEPS)
    for name in STEP_TYPES:
        own = TOOLS[name].key_names if name in TOOLS else set(ENGINE_STEPS[name])
        assert TOOL_KEYS[name] == own


def test_save_storages_are_one_list() -> None:
    assert STORAGES == dict(SAVE_STORAGES)
    for target in SAVE_STORAGES.values():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func))


def test_schema_has_every_tool_key_with_its_description() -> None:
    props = playbook_schema()["properties"]["workflow"]["items"]["properties"]
    for name, spec in TOOLS.items():
        for key, k in spec.keys.items():
            assert f"{name}: {k.desc}" in props[key]["description"]
    assert set(props["type"]["anyOf"][0]["enum"]) >= set(STEP_TYPES)


def _pb(step: str) -> str:
    return ("apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: t}\nworkflow:\n"
            "  - step: start\n" + "".join(f"    {line}\n" for line in step.splitlines()))


def test_python_isolate_is_a_known_key_and_module_is_not() -> None:
    """Two of the disagreements fixed: the python tool reads `isolate` (it used to warn
    "unknown key"), and never read `module` / `callable` (they used to pass silently)."""
    pb = parse_playbook(_pb("type: python\nisolate: true\ncode: 'def main(): return 1'"))
    assert pb.warnings == ()
    pb = parse_playbook(_pb("type: python\nmodule: x\ncode: 'def main(): return 1'"))
    assert any("unknown key 'module'" in w for w in pb.warnings)


def test_the_worker_leaves_python_code_unrendered_and_the_plan_reads_no_refs_in_it() -> None:
    assert {"code", "code_b64"} <= unrendered("python")
    assert "code" not in unrendered("http")
    text = ("apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: t}\nworkflow:\n"
            "  - step: start\n    next: [a]\n  - step: a\n    next: [b]\n"
            "  - step: b\n    type: python\n    code: |\n      def main():\n"
            "          return '{{ a }}'\n")
    plan = compile_plan(parse_playbook(text))
    assert plan.step("b").refs == frozenset()  # the name `a` in its code is not a reference


def test_an_unavailable_optional_tool_names_its_extra() -> None:
    assert TOOLS["duckdb"].extra == "duckdb"
    assert TOOLS["postgres"].extra == "postgres"


def test_a_tool_error_marked_not_retryable_fails_the_step_at_once(sqlite_url: str) -> None:
    """ToolError(retryable=False) makes the outcome final: the step's retry policy does not
    apply (one attempt, no action_retry) and the events say why."""
    from tests.helpers import run_yaml, types_for

    desc, events = run_yaml("""\
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: t}
        workflow:
          - step: start
            type: python
            retry: {max_attempts: 4, initial_delay: 0}
            code: |
              from noetl.errors import ToolError
              def main():
                  raise ToolError("the input file is malformed", "BadInput", retryable=False)
        """, sqlite_url)
    assert desc["status"] == "FAILED"
    assert desc["steps"]["start"]["attempts"] == 1
    assert types_for(events, "start").count("action_failed") == 1
    assert "action_retry" not in types_for(events, "start")
    failed = next(e for e in events if e.event_type == "step_failed" and e.node_name == "start")
    assert (failed.error, failed.error_type) == (
        "the input file is malformed (not retryable)", "BadInput")
    assert desc["steps"]["start"]["error"]["message"] == failed.error
