"""Compile a validated :class:`~noetl.dsl.model.Playbook` into an immutable :class:`Plan`.

The plan resolves workbook references, decides which steps are joins, precomputes for each join
the set of steps that can still reach it, and lists for every step the step results its
templates reference (so the engine fetches only those).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from noetl.dsl.loader import build_playbook
from noetl.dsl.model import Edge, Playbook, RetryPolicy
from noetl.templates import names_in

# Keys of a step mapping that are not tool configuration.
NON_ACTION_KEYS = frozenset({"step", "desc", "description", "next", "retry", "save", "args",
                             "with", "input", "payload", "assert", "timeout", "metadata"})
ACTIONLESS = frozenset({None, "router", "noop", "end"})


@dataclass(frozen=True)
class PlanStep:
    name: str
    type: str | None  # effective tool type; None for routers
    action: dict[str, Any]  # tool configuration (workbook-expanded), templates unrendered
    args: dict[str, Any]
    edges: tuple[Edge, ...]
    save: dict[str, Any] | None
    retry: RetryPolicy | None
    timeout: float | None
    refs: frozenset[str]  # step names referenced by this step's action/args/save/retry
    edge_refs: frozenset[str]  # step names referenced by its edges (when + args)
    is_join: bool = False
    ancestors: frozenset[str] = frozenset()  # for joins: steps that can reach this one
    error_edges: tuple[int, ...] = ()  # edges whose `when` reads the name `error`
    task: dict[str, Any] | None = None  # iterators: the nested task (workbook-expanded)
    item_retry: RetryPolicy | None = None
    item_refs: frozenset[str] = frozenset()  # iterators: step results the task reads

    @property
    def actionable(self) -> bool:
        return self.type is not None


@dataclass(frozen=True)
class Plan:
    path: str
    name: str
    version: str | None
    workload: dict[str, Any]
    steps: dict[str, PlanStep]
    start: str
    order: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    digest: str = ""

    def step(self, name: str) -> PlanStep:
        return self.steps[name]


def _expand(pb: Playbook, s_name: str) -> tuple[str | None, dict[str, Any], dict[str, Any],
                                               dict[str, Any] | None, RetryPolicy | None]:
    s = pb.steps[s_name]
    action = {k: v for k, v in s.config.items() if k not in NON_ACTION_KEYS}
    args = dict(s.args)
    save, retry, ttype = s.save, s.retry, s.type
    if ttype == "workbook":
        ref = s.config.get("name") or s.config.get("task")
        entry = dict(pb.workbook[str(ref)])
        ttype = str(entry.get("type", entry.get("tool", "python"))).lower()
        entry_args = {}
        for key in ("payload", "input", "with", "args"):
            if isinstance(entry.get(key), dict):
                entry_args.update(entry[key])
        args = {**entry_args, **args}
        base = {k: v for k, v in entry.items() if k not in NON_ACTION_KEYS}
        action = {**base, **{k: v for k, v in action.items() if k not in ("type", "tool", "name")}}
        action["name"] = ref
        if save is None and isinstance(entry.get("save"), dict):
            save = entry["save"]
        if retry is None and entry.get("retry") is not None:
            retry = _retry_of("workbook", entry)
    if ttype in ACTIONLESS:
        ttype = "noop" if save else None
    if ttype is not None:
        action["type"] = ttype
        action.pop("tool", None)
    return ttype, action, args, save, retry


def _retry_of(where: str, cfg: dict[str, Any]) -> RetryPolicy | None:
    from noetl.dsl.loader import _check_retry, _Checker

    return _check_retry(_Checker(where), where, cfg)


def _expand_task(pb: Playbook, task: dict[str, Any]) -> tuple[dict[str, Any], RetryPolicy | None]:
    """An iterator's nested task, with a workbook reference resolved."""
    out = dict(task)
    ttype = str(out.get("type", out.get("tool", "python"))).lower()
    if ttype == "workbook":
        ref = str(out.get("name") or out.get("task"))
        entry = dict(pb.workbook[ref])
        merged = {**entry, **{k: v for k, v in out.items() if k not in ("type", "tool", "name")}}
        if isinstance(entry.get("args"), dict) and isinstance(out.get("args"), dict):
            merged["args"] = {**entry["args"], **out["args"]}
        merged["type"] = str(entry.get("type", entry.get("tool", "python"))).lower()
        merged["name"] = ref
        out = merged
    else:
        out["type"] = ttype
    out.pop("tool", None)
    return out, _retry_of("task", out)


def compile_plan(pb: Playbook) -> Plan:
    names = set(pb.steps)
    start = next(n for n in pb.steps if n.lower() == "start")
    incoming: dict[str, set[str]] = {n: set() for n in names}
    for s in pb.steps.values():
        for e in s.next:
            incoming[e.target].add(s.name)
    parents: dict[str, set[str]] = incoming
    built: dict[str, PlanStep] = {}
    for name, s in pb.steps.items():
        ttype, action, args, save, retry = _expand(pb, name)
        refs_src: list[Any] = [action, args, save]
        if retry is not None:
            refs_src += [retry.retry_when or "", retry.stop_when or ""]
        task = item_retry = None
        item_refs: frozenset[str] = frozenset()
        if ttype == "iterator" and isinstance(action.get("task"), dict):
            task, item_retry = _expand_task(pb, action["task"])
            # an item reads what its task references, not the collection's source
            item_refs = names_in({k: v for k, v in task.items()
                                  if k not in ("code", "code_b64")}) & names
            refs_src[0] = {**{k: v for k, v in action.items() if k != "task"},
                           "task": {k: v for k, v in task.items() if k not in ("code", "code_b64")}}
        if ttype == "python":
            refs_src[0] = {k: v for k, v in action.items() if k not in ("code", "code_b64")}
        edge_src = [[e.when or "", e.args] for e in s.next]
        is_join = len(incoming[name]) > 1
        built[name] = PlanStep(
            name=name, type=ttype, action=action, args=args, edges=s.next, save=save,
            retry=retry, timeout=s.timeout,
            refs=names_in(refs_src) & names, edge_refs=names_in(edge_src) & names,
            is_join=is_join, ancestors=_ancestors(name, parents) if is_join else frozenset(),
            error_edges=tuple(i for i, e in enumerate(s.next)
                              if e.when and "error" in names_in(e.when)),
            task=task, item_retry=item_retry, item_refs=item_refs,
        )
    raw_json = json.dumps(pb.raw, sort_keys=True, default=str)
    return Plan(path=pb.path, name=pb.name, version=pb.version, workload=pb.workload,
                steps=built, start=start, order=tuple(pb.steps), raw=pb.raw,
                digest=hashlib.sha256(raw_json.encode()).hexdigest()[:16])


def _ancestors(name: str, parents: dict[str, set[str]]) -> frozenset[str]:
    seen: set[str] = set()
    stack = list(parents[name])
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack.extend(parents[n])
    return frozenset(seen)


@lru_cache(maxsize=256)
def _plan_cached(raw_json: str) -> Plan:
    return compile_plan(build_playbook(json.loads(raw_json), "<stored plan>"))


def plan_from_raw(raw: dict[str, Any] | str) -> Plan:
    """Compile (with a cache) the plan of a stored playbook snapshot."""
    text = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True, default=str)
    return _plan_cached(text)
