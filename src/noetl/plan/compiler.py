"""Compile a validated :class:`~noetl.dsl.model.Playbook` into an immutable :class:`Plan`.

The plan resolves workbook references, decides which steps are joins, precomputes for each join
the set of steps that can still reach it, and lists for every step the step results its
templates reference (so the engine fetches only those).
"""

from __future__ import annotations

import ast
import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from noetl.dsl import tools_spec
from noetl.dsl.gcpause import without_gc
from noetl.dsl.loader import SNAPSHOT_KEY, build_playbook
from noetl.dsl.model import Edge, Playbook, RetryPolicy
from noetl.errors import NoetlError
from noetl.templates import names_in

# Keys of a step mapping that are not tool configuration.
NON_ACTION_KEYS = frozenset({"step", "desc", "description", "next", "retry", "save", "args",
                             "with", "input", "payload", "assert", "timeout", "metadata"})
ACTIONLESS = frozenset({None, "router", "noop", "end"})


@dataclass(frozen=True)
class PlanStep:
    """One step as the engine runs it (workbook references resolved, references listed)."""

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
    code_line: int | None = None  # the YAML line where its python code starts (tracebacks)
    item_code_line: int | None = None  # iterators: where the task's python code starts

    @property
    def actionable(self) -> bool:
        return self.type is not None


@dataclass(frozen=True)
class Plan:
    """A compiled playbook: its steps, the start step and their order."""

    path: str
    name: str
    version: str | None
    workload: dict[str, Any]
    steps: dict[str, PlanStep]
    start: str
    order: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    digest: str = ""
    source: str = "<playbook>"  # the file it was loaded from (named in run-time tracebacks)
    code_lines: dict[str, int] = field(repr=False, default_factory=dict)  # Playbook.code_lines

    def step(self, name: str) -> PlanStep:
        return self.steps[name]

    def snapshot(self) -> dict[str, Any]:
        """What an execution stores of its playbook (:func:`plan_from_raw` compiles it again,
        in any process): the playbook's document and, under :data:`SNAPSHOT_KEY`, the file it
        came from and where each python ``code`` starts in it, so a traceback names the file's
        lines whichever process runs or resumes the execution."""
        if not self.code_lines:
            return self.raw
        return {**self.raw, SNAPSHOT_KEY: {"source": self.source,
                                           "code_lines": dict(self.code_lines)}}


# SNAPSHOT_KEY (noetl.dsl.loader, which refuses it in a playbook): the key of a stored snapshot
# that is not the playbook's own (see Plan.snapshot); snapshots stored before it existed have
# none and compile as before, without line numbers


# `type: save` steps: these top-level keys are the step's save (same forms as an inline save)
SAVE_STEP_KEYS = tools_spec.SAVE_STEP_KEYS
_B64 = (("command_b64", "command"), ("commands_b64", "commands"), ("code_b64", "code"))


def decode_b64(cfg: dict[str, Any]) -> dict[str, Any]:
    """``command_b64`` / ``commands_b64`` / ``code_b64`` decoded into their plain forms, which
    are then rendered (SQL) or run (code) exactly like text written in the playbook."""
    if not any(k in cfg for k, _ in _B64):
        return cfg
    out = dict(cfg)
    for k, plain_key in _B64:
        if k in out:
            encoded = out.pop(k)
            if plain_key not in out:
                out[plain_key] = b64_text(encoded, k)
    return out


def b64_text(encoded: Any, key: str) -> str:
    try:
        return base64.b64decode(str(encoded), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise NoetlError(f"{key}: not valid base64 of UTF-8 text ({exc})") from None


def task_args(task: dict[str, Any]) -> dict[str, Any]:
    """An iterator task's inputs: ``args``, and its aliases ``with`` / ``input`` / ``payload``,
    and ``data`` (except for http tasks, where ``data`` is the request's query or body)."""
    args: dict[str, Any] = {}
    ttype = str(task.get("type", task.get("tool", "python"))).lower()
    if ttype != "http" and "args" not in task and isinstance(task.get("data"), dict):
        args.update(task["data"])
    for alias in ("payload", "input", "with", "args"):
        if isinstance(task.get(alias), dict):
            args.update(task[alias])
    return args


def reads_context(code: Any) -> bool:
    """Does python code read ``context`` (or take ``**kwargs``, which receives it)? Then it
    sees every earlier step's result, as in NoETL."""
    if not isinstance(code, str) or ("context" not in code and "**" not in code):
        return False  # neither can be there (no parse: 8,000 python steps are planned fast)
    return _reads_context(code)


@lru_cache(maxsize=1024)
def _reads_context(code: str) -> bool:
    """Cached per code text: parsing was most of a plan's compile time."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "context":
            return True
        if isinstance(node, ast.FunctionDef) and node.name == "main" and node.args.kwarg:
            return True
    return False


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
        # the step's `data` is its input (args), never a replacement of the task's own `data`
        action = {**base, **{k: v for k, v in action.items()
                             if k not in ("type", "tool", "name", "data")}}
        action["name"] = ref
        if save is None and isinstance(entry.get("save"), dict):
            save = entry["save"]
        if retry is None and entry.get("retry") is not None:
            retry = _retry_of("workbook", entry)
    if ttype == "save":
        own = {k: v for k, v in action.items() if k in SAVE_STEP_KEYS}
        save = {**own, **(save or {})} if own else save
        action = {}
    if ttype in ACTIONLESS:
        ttype = "noop" if save else None
    if ttype is not None:
        action = decode_b64(action)
        action["type"] = ttype
        action.pop("tool", None)
    return ttype, action, args, save, retry


def _retry_of(where: str, cfg: dict[str, Any]) -> RetryPolicy | None:
    from noetl.dsl.loader import _Checker
    from noetl.dsl.stepparts import _check_retry

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
    out = decode_b64(out)
    out["args"] = task_args(out)
    for alias in ("payload", "input", "with"):
        out.pop(alias, None)
    if out["type"] == "save":  # a save task: its top-level keys are its save
        own = {k: out.pop(k) for k in list(out) if k in SAVE_STEP_KEYS}
        out["save"] = {**own, **(out.get("save") or {})}
        out["args"] = {}
    elif out["type"] != "http" and "data" in out and isinstance(out["data"], dict):
        out.pop("data")
    return out, _retry_of("task", out)


@without_gc
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
            task_src = _templated(task, task.get("type"))
            item_refs = names_in(task_src) & names
            refs_src[0] = {**{k: v for k, v in action.items() if k != "task"}, "task": task_src}
        elif _unrendered(ttype):
            refs_src[0] = _templated(action, ttype)
        refs = names_in(refs_src) & names
        if ttype == "python" and reads_context(action.get("code")):
            refs = frozenset(names - {name})  # `context` holds every earlier result
        if task is not None and task.get("type") == "python" and reads_context(task.get("code")):
            item_refs = frozenset(names - {name})
        edge_src = [[e.when or "", e.args] for e in s.next]
        is_join = len(incoming[name]) > 1
        built[name] = PlanStep(
            name=name, type=ttype, action=action, args=args, edges=s.next, save=save,
            retry=retry, timeout=s.timeout,
            refs=refs, edge_refs=names_in(edge_src) & names,
            is_join=is_join, ancestors=_ancestors(name, parents) if is_join else frozenset(),
            error_edges=tuple(i for i, e in enumerate(s.next)
                              if e.when and "error" in names_in(e.when)),
            task=task, item_retry=item_retry, item_refs=item_refs,
            code_line=_code_line(pb, "step", name, s.config) if ttype == "python" else None,
            item_code_line=_code_line(pb, "task", name, s.config.get("task"))
            if task is not None and task.get("type") == "python" else None,
        )
    raw_json = json.dumps(pb.raw, sort_keys=True, default=str)
    return Plan(path=pb.path, name=pb.name, version=pb.version, workload=pb.workload,
                steps=built, start=start, order=tuple(pb.steps), raw=pb.raw,
                digest=hashlib.sha256(raw_json.encode()).hexdigest()[:16], source=pb.source,
                code_lines=dict(pb.code_lines))


def _unrendered(ttype: Any) -> frozenset[str]:
    """A tool's keys that are not templates (python code): their names are no step references."""
    sp = tools_spec.spec(ttype if isinstance(ttype, str) else None)
    return sp.unrendered if sp is not None else frozenset()


def _templated(cfg: dict[str, Any], ttype: Any) -> dict[str, Any]:
    skip = _unrendered(ttype)
    return {k: v for k, v in cfg.items() if k not in skip} if skip else cfg


def _code_line(pb: Playbook, kind: str, name: str, cfg: Any) -> int | None:
    """Where the python code a step (or an iterator's task) runs starts in the YAML file: its
    own ``code``, else that of the workbook task it names."""
    if not isinstance(cfg, dict) or not pb.code_lines:
        return None
    if "code" in cfg or "code_b64" in cfg:
        return pb.code_lines.get(f"{kind}:{name}")
    ref = cfg.get("name") or cfg.get("task")
    return pb.code_lines.get(f"workbook:{ref}") if isinstance(ref, str) else None


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
    doc = json.loads(raw_json)
    source, code_lines = _stored_source(doc.pop(SNAPSHOT_KEY, None) if isinstance(doc, dict)
                                        else None)
    pb = build_playbook(doc, source)
    return compile_plan(replace(pb, code_lines=code_lines) if code_lines else pb)


def _stored_source(meta: Any) -> tuple[str, dict[str, int]]:
    """The file name and code lines a snapshot carries (:meth:`Plan.snapshot`); none in one
    stored before they were, or in one whose entry is not of that shape."""
    if not isinstance(meta, dict) or not isinstance(meta.get("source"), str):
        return "<stored plan>", {}
    lines = meta.get("code_lines")
    if not isinstance(lines, dict):
        return meta["source"], {}
    return meta["source"], {str(k): v for k, v in lines.items()
                            if isinstance(v, int) and not isinstance(v, bool) and v > 0}


def plan_from_raw(raw: dict[str, Any] | str) -> Plan:
    """Compile (with a cache) the plan of a stored playbook snapshot (:meth:`Plan.snapshot`:
    its python steps' tracebacks name the playbook file's lines, as where it was compiled)."""
    text = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True, default=str)
    return _plan_cached(text)
