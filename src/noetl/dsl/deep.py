"""Whole-playbook checks: templates and python code compiled,
template names resolved, router cycles, unreachable steps and joins missing a branch found
(these last once the shape is valid). Linear in steps."""

from __future__ import annotations

from collections import deque
from typing import Any

from noetl.dsl.checks import CONTEXT_NAMES, Reporter, TemplateChecker, check_python, iter_strings
from noetl.dsl.model import Step
from noetl.dsl.scopes import (
    absent_names,
    bare_when_problem,
    edge_targets,
    is_edge,
    is_router,
    is_when,
    router_result_problem,
    router_result_reads,
)
from noetl.dsl.tools_spec import all_unrendered

# Keys whose strings are not Jinja templates: every tool's unrendered keys (code is run, not
# rendered), base64 text, a child playbook's content (its templates are the child's own).
NOT_TEMPLATES = all_unrendered() | frozenset({"command_b64", "commands_b64", "content", "step",
                                              "desc", "description", "type", "tool"})


def check_deep(c: Reporter, steps: dict[str, Step], workload: dict[str, Any],
               workbook: dict[str, dict[str, Any]], raw_workflow: Any) -> None:
    """The steps' and workbook tasks' templates and python code (see :func:`check_graph`
    for the rest)."""
    raw = {str(s.get("step")): s for s in raw_workflow if isinstance(s, dict)}
    incoming: dict[str, set[str]] = {n: set() for n in steps}
    arg_names: set[str] = set()
    for st in steps.values():
        arg_names |= set(st.args)
        for e in st.next:
            incoming.setdefault(e.target, set()).update(e.args)
            arg_names |= set(e.args)
    loop_vars: set[str] = set()
    for st in steps.values():
        if st.type == "iterator":
            for key in ("element", "iterator"):
                if isinstance(st.config.get(key), str):
                    loop_vars.add(st.config[key])
    known = (set(CONTEXT_NAMES) | set(map(str, workload)) | set(steps) | set(workbook)
             | loop_vars | arg_names)
    tc = TemplateChecker(c, known)
    base = set(map(str, workload)) | set(steps) | loop_vars | set(CONTEXT_NAMES)
    defined = set(map(str, workload)) | set(steps) | loop_vars  # the playbook's own names
    preds = _actionable_preds(steps)
    # what a python main() parameter can be filled from: a step's code never sees `error`
    code_base = base if "error" in defined else base - {"error"}
    for name, st in steps.items():
        s = raw.get(name, {})
        where = f"step '{name}'"
        own = set(st.args) | incoming.get(name, set())
        _step_templates(c, tc, st, s, own, "error" in own or "error" in defined,
                        preds.get(name, []) if is_router(st) else None)
        if st.type == "python":
            check_python(c, where, s, _Either(own, code_base), st.args)
        task = s.get("task")
        if st.type == "iterator" and isinstance(task, dict):
            targs = dict(task.get("args") or {}) if isinstance(task.get("args"), dict) else {}
            if isinstance(task.get("data"), dict):
                targs.update(task["data"])
            if str(task.get("type", task.get("tool", ""))).lower() == "python":
                check_python(c, where + " → task", task, _Either(own | set(targs), code_base),
                             targs, loop_task=True)
    shadowed = "error" in defined or "error" in arg_names
    for wname, task in workbook.items():
        for path, text, line in iter_strings(task, None, skip=NOT_TEMPLATES):
            tc.check(f"workbook '{wname}' → {path}", text, line, (), absent_names(path, shadowed))


def _step_templates(c: Reporter, tc: TemplateChecker, st: Step, s: dict[str, Any],
                    own: set[str], shadowed: bool, router_preds: list[str] | None) -> None:
    """One step's templates: names resolved, names its field does not see (``error``, unless
    the playbook defines that name: ``shadowed``), a ``when`` that is no template, a router's
    edges reading a result it does not have (``router_preds``: None when it is no router)."""
    where = f"step '{st.name}'"
    for path, text, line in iter_strings(s, st.line, skip=NOT_TEMPLATES):
        if "{{" not in text and "{%" not in text:
            if not is_when(path):
                continue  # plain text
            problem = bare_when_problem(text, edge_targets(s, path), tc.known)
            if problem:
                c.error(f"{where} → {path}", problem, line)
                continue
            text = "{{ " + text + " }}"  # how the engine reads it
        field = f"{where} → {path}"
        tc.check(field, text, line, own, absent_names(path, shadowed))
        if router_preds is not None and is_edge(path) and ("result" in text or "this" in text):
            words = router_result_reads(text)
            if words:
                c.warn(field, router_result_problem(st.name, words, router_preds), line)


def _actionable_preds(steps: dict[str, Step]) -> dict[str, list[str]]:
    """Each step's predecessors that run an action (whose results a router's edges could
    have meant), in the playbook's order."""
    out: dict[str, list[str]] = {}
    for n, st in steps.items():
        if is_router(st):
            continue
        for e in st.next:
            if n not in out.setdefault(e.target, []):
                out[e.target].append(n)
    return out


def check_graph(c: Reporter, steps: dict[str, Step]) -> None:
    """Router cycles, unreachable steps, joins missing a branch: only meaningful once every
    edge names a step."""
    start = next((n for n in steps if n.lower() == "start"), None)
    if start is None:
        return
    seen = _reachable(steps, start)
    _unreached(c, steps, seen)
    alive = _router_cycles(steps)
    if alive:
        first = min(alive, key=lambda n: steps[n].line or 0)
        c.error(f"step '{first}'", "a cycle of routers with no action step on it "
                f"({', '.join(sorted(alive)[:10])}): it would loop for ever", steps[first].line)


def _reachable(steps: dict[str, Step], start: str) -> set[str]:
    seen = {start}
    todo = deque([start])
    while todo:
        for e in steps[todo.popleft()].next:
            if e.target not in seen and e.target in steps:
                seen.add(e.target)
                todo.append(e.target)
    return seen


def _unreached(c: Reporter, steps: dict[str, Step], seen: set[str]) -> None:
    """Warnings: steps no edge from ``start`` reaches, and joins such a step leads to."""
    preds: dict[str, set[str]] = {}
    for name, st in steps.items():
        if name not in seen:
            c.warn(f"step '{name}'", "unreachable: no edge leads here from 'start'", st.line)
        for e in st.next:
            preds.setdefault(e.target, set()).add(name)
    # A join whose predecessor no run reaches never gets that arrival (it runs without it).
    for name, sources in preds.items():
        if len(sources) > 1 and name in seen:
            for p in sorted(sources - seen):
                c.warn(f"step '{name}'", f"join: '{p}' leads here but is never reached from "
                       f"'start', so this join never gets its arrival (it runs without it)",
                       steps[name].line)


def _router_cycles(steps: dict[str, Step]) -> set[str]:
    """The routers on cycles made only of routers: nothing on them ever changes, so they loop
    for ever. Kahn from both sides: drop routers with no router successor / predecessor until
    stable; what is left lies on such a cycle."""
    routers = {n for n, st in steps.items() if st.is_router and st.type != "end"}
    out = {n: {e.target for e in steps[n].next if e.target in routers} for n in routers}
    rev: dict[str, set[str]] = {n: set() for n in routers}
    for n in routers:
        for t in out[n]:
            rev[t].add(n)
    indeg = {n: len(rev[n]) for n in routers}
    outdeg = {n: len(out[n]) for n in routers}
    alive = set(routers)
    queue = deque(n for n in routers if outdeg[n] == 0 or indeg[n] == 0)
    while queue:
        n = queue.popleft()
        if n not in alive:
            continue
        alive.discard(n)
        _drop_edges(rev[n], alive, outdeg, queue)
        _drop_edges(out[n], alive, indeg, queue)
    return alive


def _drop_edges(ends: set[str], alive: set[str], degree: dict[str, int],
                queue: deque[str]) -> None:
    for m in ends:
        if m in alive:
            degree[m] -= 1
            if degree[m] == 0:
                queue.append(m)


class _Either:
    """Membership in either of two sets without building their union (keeps checks linear)."""

    def __init__(self, a: set[str], b: set[str]):
        self.a, self.b = a, b

    def __contains__(self, item: object) -> bool:
        return item in self.a or item in self.b
