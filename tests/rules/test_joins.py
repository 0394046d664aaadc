"""Joins, pure: which steps the plan makes joins, which steps a join waits for (its ancestors),
and when a held join fires (noetl.engine.flow.ready_joins) given what is still in flight. No
store: plans compiled from YAML, the execution's state as plain values."""

from __future__ import annotations

import textwrap

from noetl.dsl import parse_playbook
from noetl.engine.flow import ready_joins
from noetl.plan import Plan, compile_plan


def _plan(steps: str) -> Plan:
    head = "apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: joins}\nworkflow:\n"
    return compile_plan(parse_playbook(head + textwrap.indent(textwrap.dedent(steps), "  "),
                                       "<test>"))


def _py(name: str, nxt: str = "") -> str:
    return (f"- step: {name}\n  type: python\n  code: |\n    def main():\n        return 1\n"
            + (f"  next: {nxt}\n" if nxt else ""))


DIAMOND = _plan(
    "- step: start\n  next: [{step: left}, {step: right}, {step: side}]\n"
    + _py("left", "[{step: join}]") + _py("right", "[{step: join}]") + _py("side")
    + _py("join"))


def test_a_step_reached_from_two_steps_is_a_join_waiting_for_all_that_can_reach_it() -> None:
    join = DIAMOND.step("join")
    assert join.is_join and join.ancestors == {"start", "left", "right"}
    for name in ("start", "left", "right", "side"):
        assert not DIAMOND.step(name).is_join and DIAMOND.step(name).ancestors == set()


def test_two_edges_from_one_step_make_no_join() -> None:
    plan = _plan("- step: start\n  next: [{step: a, when: '{{ 1 }}'}, {step: a}]\n" + _py("a"))
    assert not plan.step("a").is_join


def test_a_join_waits_while_any_of_its_ancestors_has_work_in_flight() -> None:
    assert ready_joins(["join"], {"right": 1}, DIAMOND) == []
    assert ready_joins(["join"], {"left": 2, "right": 1}, DIAMOND) == []
    assert ready_joins(["join"], {"start": 1}, DIAMOND) == []  # start may still fan out
    # nothing in flight: it fires, whichever of its predecessors arrived (a branch not taken
    # is not waited for)
    assert ready_joins(["join"], {}, DIAMOND) == ["join"]


def test_a_step_that_cannot_reach_the_join_does_not_hold_it_back() -> None:
    assert ready_joins(["join"], {"side": 1}, DIAMOND) == ["join"]


CHAINED = _plan(
    "- step: start\n  next: [{step: a}, {step: b}, {step: d}]\n"
    + _py("a", "[{step: j1}]") + _py("b", "[{step: j1}]") + _py("j1", "[{step: c}]")
    + _py("c", "[{step: j2}]") + _py("d", "[{step: j2}]") + _py("j2"))


def test_a_join_waits_for_an_earlier_join_still_holding_arrivals() -> None:
    assert CHAINED.step("j1").ancestors == {"start", "a", "b"}
    assert CHAINED.step("j2").ancestors == {"start", "a", "b", "j1", "c", "d"}
    assert ready_joins(["j2", "j1"], {}, CHAINED) == ["j1"]
    assert ready_joins(["j2"], {}, CHAINED) == ["j2"]
    assert ready_joins(["j2", "j1"], {"a": 1}, CHAINED) == []


CYCLE = _plan(
    "- step: start\n  next: [{step: x}, {step: y}]\n"
    + _py("y", "[{step: j2}]") + _py("x", "[{step: j1}]")
    + _py("j2", "[{step: j1, when: '{{ false }}'}]")
    + _py("j1", "[{step: j2, when: '{{ false }}'}]"))


def test_joins_blocking_each_other_fire_in_plan_order_once_nothing_runs() -> None:
    assert {"j1", "x", "y"} <= CYCLE.step("j2").ancestors
    assert {"j2", "x", "y"} <= CYCLE.step("j1").ancestors
    assert ready_joins(["j1", "j2"], {"x": 1}, CYCLE) == []  # work in flight: wait
    assert ready_joins(["j1", "j2"], {}, CYCLE) == ["j2"]  # j2 comes first in the plan
    assert ready_joins([], {}, CYCLE) == []
