"""Load and validate playbooks. Every problem names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from noetl.dsl import checks
from noetl.dsl.auth_forms import auth_problem, unknown_auth_keys
from noetl.dsl.checks import (
    EDGE_KEYS,
    HTTP_METHODS,
    MAX_COUNT,
    MAX_SECONDS,
    did_you_mean,
)
from noetl.dsl.gcpause import without_gc
from noetl.dsl.model import (
    ALL_STEP_KEYS,
    COMMON_STEP_KEYS,
    MEANING_KEYS,
    STEP_TYPES,
    TOOL_KEYS,
    Edge,
    Playbook,
    Step,
)
from noetl.dsl.stepparts import (
    _check_b64,
    _check_key_kinds,
    _check_retry,
    _check_save,
)
from noetl.dsl.tools_spec import spec
from noetl.dsl.triggers import check_triggers
from noetl.dsl.yamlsrc import LimitError, LineDict, load_yaml, plain
from noetl.errors import PlaybookError, Problem

TOP_KEYS = frozenset({"apiVersion", "kind", "metadata", "workload", "workbook", "workflow",
                      "name", "path", "description", "schedule", "hooks", "notify"})
MAX_STEPS = 100_000


def _line(obj: Any, key: str | None = None) -> int | None:
    if isinstance(obj, LineDict):
        return obj.line_of(key) if key else obj.line
    return getattr(obj, "line", None)


class _Checker:
    def __init__(self, source: str):
        self.source = source
        self.problems: list[Problem] = []
        self.warnings: list[str] = []
        self.warning_problems: list[Problem] = []

    def error(self, where: str, message: str, line: int | None) -> None:
        self.problems.append(Problem(where, message, line))

    def warn(self, where: str, message: str, line: int | None) -> None:
        at = f" (line {line})" if line else ""
        self.warnings.append(f"{self.source}: {where}{at}: {message}")
        self.warning_problems.append(Problem(where, message, line, "warning"))


def load_playbook(path: str | Path) -> Playbook:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise PlaybookError(str(p), [Problem("file", f"cannot read: {exc.strerror}")]) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise PlaybookError(str(p), [Problem("file", f"not UTF-8 text: byte 0x{data[exc.start]:02x} "
                                             f"at offset {exc.start}", line)]) from None
    return parse_playbook(text, source=str(p))


@without_gc
def parse_playbook(text: str, source: str = "<playbook>") -> Playbook:
    try:
        doc = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else getattr(exc, "line", None)
        msg = getattr(exc, "problem", None) or str(exc)
        kind = "too large" if isinstance(exc, LimitError) else "syntax error"
        raise PlaybookError(source, [Problem("yaml", f"{kind}: {msg}", line)]) from None
    except (RecursionError, MemoryError, ValueError, TypeError, OverflowError) as exc:
        raise PlaybookError(source, [Problem("yaml", f"cannot be loaded: {type(exc).__name__}: "
                                             f"{str(exc)[:200]}")]) from None
    try:
        return build_playbook(doc, source)
    except PlaybookError:
        raise
    except (RecursionError, MemoryError, ValueError, TypeError, AttributeError, KeyError,
            OverflowError) as exc:  # a validator bug must still be a clear problem, not a traceback
        raise PlaybookError(source, [Problem("document", f"cannot be validated: "
                                             f"{type(exc).__name__}: {str(exc)[:200]}")]) from None


def build_playbook(doc: Any, source: str = "<playbook>") -> Playbook:
    c = _Checker(source)
    if not isinstance(doc, dict):
        raise PlaybookError(source, [Problem("document", "a playbook must be a YAML mapping", 1)])
    if not isinstance(doc, LineDict):  # plain dict (from JSON/API): no line numbers
        doc = _to_linedict(doc)
    _check_header(c, doc)
    meta = _metadata(c, doc)
    name = meta.get("name") or doc.get("name")
    path = meta.get("path") or doc.get("path") or name
    if meta and not name and not meta.get("path"):
        c.error("metadata", "needs 'name' or 'path'", _line(meta))
    workload = doc.get("workload") or {}
    if not isinstance(workload, dict):
        c.error("workload", "must be a mapping", doc.line_of("workload"))
        workload = {}
    workbook = _check_workbook(c, doc.get("workbook"), doc.line_of("workbook"))
    steps = _check_workflow(c, doc.get("workflow"), doc.line_of("workflow"), workbook)
    from noetl.dsl.deep import check_deep, check_graph

    if not c.problems:
        check_deep(c, steps, workload, workbook, doc.get("workflow"))
        check_graph(c, steps)
    else:  # every problem in one pass: the steps' templates and code too, where they parsed
        shaped = len(c.problems)
        try:
            check_deep(c, steps, workload, workbook, doc.get("workflow"))
        except Exception:  # a shape the deep checks cannot read: its error says enough
            del c.problems[shaped:]
    if c.problems:
        raise PlaybookError(source, c.problems + c.warning_problems)
    version = meta.get("version")
    return Playbook(
        path=str(path), name=str(name or path), version=None if version is None else str(version),
        workload=plain(workload), workbook=workbook, steps=steps, raw=plain(doc), source=source,
        warnings=tuple(c.warnings), warning_problems=tuple(c.warning_problems),
        description=meta.get("description") or doc.get("description"),
        code_lines=_code_lines(doc),
    )


# a stored snapshot's own key beside the playbook (noetl.plan.compiler: its file and code
# lines); a playbook may not use it, else a rebuilt plan would read it as ours
SNAPSHOT_KEY = "_noetl_source"


def _check_header(c: _Checker, doc: LineDict) -> None:
    """The top-level keys, the triggers, ``apiVersion`` and ``kind``."""
    for key in doc:
        if key == SNAPSHOT_KEY:
            c.error(key, "reserved for NoETL's stored copy of a playbook", doc.line_of(key))
        elif key not in TOP_KEYS:
            c.warn(key, "unknown top-level key (ignored)" + did_you_mean(str(key), TOP_KEYS),
                   doc.line_of(key))
    check_triggers(c, doc)
    if "apiVersion" not in doc:
        c.error("apiVersion", "missing (expected 'noetl.io/v1')", doc.line)
    kind = doc.get("kind")
    if kind is None:
        c.error("kind", "missing (expected 'Playbook')", doc.line)
    elif str(kind).lower() != "playbook":
        c.error("kind", f"expected 'Playbook', got {kind!r}", doc.line_of("kind"))


def _metadata(c: _Checker, doc: LineDict) -> Any:
    """``metadata`` (an empty mapping when absent or not a mapping), with every ``name``,
    ``path`` and ``version`` that is not a string (there or at the top) reported and dropped."""
    meta = doc.get("metadata")
    if meta is None:
        meta = LineDict()
        if "name" not in doc and "path" not in doc:
            c.error("metadata", "missing (needs 'name' or 'path')", doc.line)
    elif not isinstance(meta, dict):
        c.error("metadata", "must be a mapping", doc.line_of("metadata"))
        meta = LineDict()
    for holder in (meta, doc):
        for key in ("name", "path", "version"):
            val = holder.get(key)
            if (val is not None and not isinstance(val, str | int | float)) or isinstance(val, bool):
                kind = {list: "list", bool: "boolean"}.get(type(val), "mapping")
                if isinstance(val, list):
                    kind = "list"
                c.error(key if holder is doc else f"metadata → {key}",
                        f"must be a string, got a {kind}", _line(holder, key))
                holder.pop(key, None)
    return meta


def _code_lines(doc: LineDict) -> dict[str, int]:
    """The YAML line where each python ``code`` block starts (see :attr:`Playbook.code_lines`)."""
    out: dict[str, int] = {}
    for kind, items, name_key in (("step", doc.get("workflow"), "step"),
                                  ("workbook", doc.get("workbook"), "name")):
        for m in items if isinstance(items, list) else ():
            if not isinstance(m, LineDict):
                continue
            if m.code_line:
                out[f"{kind}:{m.get(name_key)}"] = m.code_line
            task = m.get("task") if kind == "step" else None
            if isinstance(task, LineDict) and task.code_line:
                out[f"task:{m.get(name_key)}"] = task.code_line
    return out


def _to_linedict(value: Any) -> Any:
    if isinstance(value, dict):
        out = LineDict({str(k): _to_linedict(v) for k, v in value.items()})
        return out
    if isinstance(value, list):
        return [_to_linedict(v) for v in value]
    return value


def _item_line(seq: Any, i: int) -> int | None:
    lines = getattr(seq, "item_lines", None)
    return lines[i] if lines and i < len(lines) else _line(seq)


def _check_workbook(c: _Checker, wb: Any, line: int | None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if wb is None:
        return out
    if not isinstance(wb, list):
        c.error("workbook", "must be a list of named tasks", line)
        return out
    for i, task in enumerate(wb):
        where = f"workbook[{i}]"
        if not isinstance(task, dict):
            c.error(where, "must be a mapping with 'name' and 'type'", _item_line(wb, i) or line)
            continue
        name = task.get("name")
        if not name or not isinstance(name, str):
            c.error(where, "missing 'name' (a string)", _line(task))
            continue
        where = f"workbook '{name}'"
        ttype = task.get("type", task.get("tool"))
        if ttype is None:
            ttype = "python"
        if not isinstance(ttype, str) or ttype.lower() not in STEP_TYPES:
            hint = checks.did_you_mean(ttype.lower(), STEP_TYPES) if isinstance(ttype, str) else ""
            c.error(where, f"unknown type {ttype!r}{hint}", _line(task, "type"))
        elif ttype.lower() == "workbook":
            c.error(where, "a workbook task cannot itself be of type 'workbook'", _line(task, "type"))
        if name in out:
            c.error(where, "duplicate workbook task name", _line(task, "name"))
        _check_retry(c, where, task)
        _check_save(c, where, task)
        for obj, key, msg in unknown_auth_keys(task.get("auth")):
            c.warn(where + " → auth", msg, _line(obj, key))
        out[str(name)] = plain(task)
    return out


def _check_workflow(c: _Checker, wf: Any, line: int | None,
                    workbook: dict[str, dict[str, Any]]) -> dict[str, Step]:
    steps: dict[str, Step] = {}
    if not isinstance(wf, list) or not wf:
        c.error("workflow", "missing or empty (needs a list of steps)", line)
        return steps
    if len(wf) > MAX_STEPS:
        c.error("workflow", f"more than {MAX_STEPS:,} steps ({len(wf):,})", line)
        return steps
    raw_steps: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, s in enumerate(wf):
        if not isinstance(s, dict):
            c.error(f"workflow[{i}]", "a step must be a mapping", _item_line(wf, i))
            continue
        name = s.get("step")
        if not name or not isinstance(name, str):
            c.error(f"workflow[{i}]", "missing 'step' (the step name)", _line(s))
            continue
        if name in seen:
            c.error(f"step '{name}'", "duplicate step name", _line(s, "step"))
            continue
        seen.add(name)
        raw_steps.append(s)
    names = {str(s["step"]) for s in raw_steps}
    starts = [n for n in names if n.lower() == "start"]
    if not starts:
        c.error("workflow", "no step named 'start'", line)
    elif len(starts) > 1:
        c.error("workflow", f"more than one start step: {sorted(starts)}", line)
    for s in raw_steps:
        step = _check_step(c, s, names, workbook)
        if step is not None:
            steps[step.name] = step
    return steps


def _step_type(c: _Checker, where: str, s: LineDict) -> str | None:
    if "type" in s and "tool" in s and s["type"] != s["tool"]:
        c.error(where, "both 'type' and 'tool' given with different values", _line(s, "tool"))
    ttype = s.get("type", s.get("tool"))
    if ttype is None:
        return None
    if isinstance(ttype, dict):  # v2-style tool: {kind: ...}
        ttype = ttype.get("kind")
    if not isinstance(ttype, str) or ttype.lower() not in STEP_TYPES:
        key = "type" if "type" in s else "tool"
        near = checks.did_you_mean(ttype.lower(), STEP_TYPES) if isinstance(ttype, str) else ""
        c.error(where, f"unknown type {ttype!r}" + (near or
                f" (known: {', '.join(sorted(STEP_TYPES))})"), _line(s, key))
        return None
    return ttype.lower()


def _step_args(c: _Checker, where: str, s: LineDict) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for alias in ("payload", "input", "with"):
        v = s.get(alias)
        if isinstance(v, dict):
            args.update(plain(v))
    v = s.get("args")
    if isinstance(v, dict):
        args.update(plain(v))
    elif v is not None and not isinstance(v, str):
        c.error(where + " → args", "must be a mapping (or a template string)", _line(s, "args"))
    elif isinstance(v, str):
        args["__whole__"] = v  # a template rendering to the whole args mapping
    if "args" not in s and isinstance(s.get("data"), dict) and \
            str(_step_type_raw(s)).lower() not in ("http", "save"):
        for k, val in plain(s["data"]).items():
            args.setdefault(k, val)
    return args


def _step_type_raw(s: dict[str, Any]) -> Any:
    return s.get("type", s.get("tool"))


def _check_step(c: _Checker, s: Any, names: set[str],
                workbook: dict[str, dict[str, Any]]) -> Step | None:
    name = str(s["step"])
    where = f"step '{name}'"
    ttype = _step_type(c, where, s)
    if ttype is None and s.get("name") and s.get("name") in workbook:
        ttype = "workbook"  # NoETL's planner: a step with 'name' and no type is a workbook call
    _check_own_keys(c, where, s, ttype)
    _check_required(c, where, s, ttype, workbook)
    if ttype == "iterator":
        _check_iterator(c, where, s, workbook)
    if ttype is not None:
        _check_tool_values(c, where, s, ttype)
    retry = _check_retry(c, where, s)
    _check_save(c, where, s)
    if ttype == "save":
        _check_save_step(c, where, s)
    _check_b64(c, where, s)
    _check_auths(c, where, s, ttype)
    timeout = _check_timeout(c, where, s)
    edges = _check_next(c, where, s, names)
    return Step(
        name=name, type=ttype, args=_step_args(c, where, s), next=tuple(edges), config=plain(s),
        save=plain(s["save"]) if isinstance(s.get("save"), dict) else None, retry=retry,
        timeout=float(timeout) if timeout else None, desc=s.get("desc") or s.get("description"),
        line=_line(s),
    )


def _check_own_keys(c: _Checker, where: str, s: LineDict, ttype: str | None) -> None:
    """Unknown keys: errors on a step of a strict tool (did-you-mean from its own keys),
    otherwise warnings against the keys of every step type, except a near miss of a missing
    key that changes what runs (:data:`MEANING_KEYS`): an error."""
    sp = spec(ttype)
    if sp is not None and sp.strict:
        checks.check_keys(c, where, s, COMMON_STEP_KEYS | sp.key_names, error=True)
        return
    # a near miss of an absent key that decides what runs, or what comes next, is an error:
    # `nxt:` would end the workflow at this step, `typ:` make it a router, `retyr:` drop its
    # retries; any other unknown key is a warning (NoETL's playbooks carry keys of their own)
    missing = set(MEANING_KEYS.difference(s))
    if "type" in s or "tool" in s:
        missing -= {"type", "tool"}
    if any(k in s for k in EDGE_ARG_KEYS):
        missing.discard("args")
    for key in s:
        if key in ALL_STEP_KEYS:
            continue
        meant = checks.near_miss(str(key), missing) if missing else None
        if meant:
            c.error(where, f"unknown key '{key}' (did you mean '{meant}'?)", _line(s, key))
        else:
            c.warn(where, f"unknown key '{key}'{checks.did_you_mean(str(key), ALL_STEP_KEYS)} "
                   "(ignored)", _line(s, key))


def _check_required(c: _Checker, where: str, s: LineDict, ttype: str | None,
                    workbook: dict[str, dict[str, Any]]) -> None:
    """What a step of its type cannot run without: the tool spec's ``requires``, the workbook
    task a workbook call names, the playbook a playbook step runs."""
    if ttype == "workbook":
        ref = s.get("name") or s.get("task")
        if not ref:
            c.error(where, "a workbook step needs 'name' (the workbook task)", _line(s))
        elif ref not in workbook:
            c.error(where + " → name", f"unknown workbook task '{ref}'", _line(s, "name"))
    sp = spec(ttype)
    if sp is not None and sp.requires is not None and not any(s.get(k) for k in sp.requires[0]):
        c.error(where, sp.requires[1], _line(s))
    if ttype == "playbook" and not (s.get("path") or s.get("resource_path")
                                    or s.get("playbook_path") or s.get("content")):
        c.error(where, "a playbook step needs 'path'", _line(s))


def _check_iterator(c: _Checker, where: str, s: LineDict,
                    workbook: dict[str, dict[str, Any]]) -> None:
    if "collection" not in s and "data" not in s:
        c.error(where, "an iterator needs 'collection'", _line(s))
    task = s.get("task")
    if not isinstance(task, dict):
        c.error(where + " → task", "an iterator needs a 'task' mapping", _line(s, "task"))
    else:
        _check_task(c, where + " → task", task, workbook)
    mode = s.get("mode", "sequential")
    if not isinstance(mode, str) or mode.lower() not in ("sequential", "async", "parallel"):
        c.error(where + " → mode", f"must be sequential or async, got {mode!r}", _line(s, "mode"))
    checks.check_number(c, where, s, "concurrency", integer=True, minimum=1, maximum=10_000)
    checks.check_number(c, where, s, "limit", integer=True, minimum=0, maximum=MAX_COUNT * 100)
    checks.check_number(c, where, s, "chunk", integer=True, minimum=1, maximum=MAX_COUNT)
    for key in ("element", "iterator"):
        if key in s and not isinstance(s[key], str):
            c.error(f"{where} → {key}", "must be a name (a string)", _line(s, key))


def _check_task(c: _Checker, where: str, task: dict[str, Any],
                workbook: dict[str, dict[str, Any]]) -> None:
    """An iterator's ``task``: a step of a known type without a name or edges of its own."""
    tt = task.get("type", task.get("tool"))
    if tt is None or not isinstance(tt, str) or tt.lower() not in STEP_TYPES:
        c.error(where, f"unknown task type {tt!r}",
                _line(task, "type" if "type" in task else "tool"))
    else:
        known = COMMON_STEP_KEYS | TOOL_KEYS.get(tt.lower(), frozenset())
        checks.check_keys(c, where, task, known, error=True)
        _check_tool_values(c, where, task, tt.lower())
        if tt.lower() == "workbook" and task.get("name") not in workbook:
            c.error(where + " → name",
                    f"unknown workbook task {task.get('name')!r}", _line(task, "name"))
    _check_retry(c, where, task)
    _check_save(c, where, task)
    _check_b64(c, where, task)


def _check_save_step(c: _Checker, where: str, s: LineDict) -> None:
    """A ``type: save`` step: its top-level keys are the save's."""
    body = LineDict({k: v for k, v in s.items() if k not in
                     ("step", "type", "tool", "next", "desc", "description",
                      "retry", "timeout", "save", "with", "input", "payload", "metadata")})
    body.line, body.key_lines = _line(s), getattr(s, "key_lines", {})
    holder = LineDict({"save": body})
    holder.line, holder.key_lines = _line(s), {"save": _line(s) or 0}
    _check_save(c, where, holder, "")


def _check_auths(c: _Checker, where: str, s: LineDict, ttype: str | None) -> None:
    """``auth`` on the step, its save and (an iterator) its task."""
    holders: list[tuple[Any, str]] = [(s, where), (s.get("save"), where + " → save")]
    if ttype == "iterator":
        holders.append((s.get("task"), where + " → task"))
    for holder, w in holders:
        if isinstance(holder, dict):
            problem = auth_problem(holder.get("auth"))
            if problem:
                c.error(w + " → auth", problem.removeprefix("auth: "), _line(holder, "auth"))
            for obj, key, msg in unknown_auth_keys(holder.get("auth")):
                c.warn(w + " → auth", msg, _line(obj, key))


def _check_timeout(c: _Checker, where: str, s: LineDict) -> Any:
    """The step's ``timeout`` in seconds (None when absent or invalid)."""
    timeout = s.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                or not 0 < timeout <= MAX_SECONDS):
        c.error(where + " → timeout", f"must be a positive number of seconds (at most "
                f"{MAX_SECONDS:g}), got {timeout!r:.60}", _line(s, "timeout"))
        timeout = None
    return timeout


EDGE_ARG_KEYS = ("payload", "input", "with", "data", "args")  # aliases of args, as on steps


def _edge_args(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in EDGE_ARG_KEYS:
        v = item.get(key)
        if isinstance(v, dict):
            out.update(plain(v))
    return out


def _check_next(c: _Checker, where: str, s: LineDict, names: set[str]) -> list[Edge]:
    nxt = s.get("next")
    if nxt is None:
        return []
    items = nxt if isinstance(nxt, list) else [nxt]
    edges: list[Edge] = []

    def target(item: Any, w: str, line: int | None, when: str | None, is_else: bool,
               extra: dict[str, Any] | None = None) -> None:
        if isinstance(item, str):
            name, args = item, dict(extra or {})
        elif isinstance(item, dict) and isinstance(item.get("step"), str):
            checks.check_keys(c, w, item, EDGE_KEYS, error=True, what="edge key")
            name, args = item["step"], {**(extra or {}), **_edge_args(item)}
            line = _line(item) or line
        elif isinstance(item, dict) and any(k not in EDGE_KEYS for k in item):
            # a misspelt key (`els: [end]`) is the mistake, not the missing step
            checks.check_keys(c, w, item, EDGE_KEYS, error=True, what="edge key")
            return
        else:
            c.error(w, "an edge needs 'step' (the target step name)", line)
            return
        if name not in names:
            near = [n for n in names if n.lower() == name.lower()]
            hint = f" (did you mean '{near[0]}'?)" if near else checks.did_you_mean(name, names)
            c.error(w, f"unknown step '{name}'{hint}", line)
            return
        edges.append(Edge(target=name, when=when, args=args, is_else=is_else, line=line))

    for i, item in enumerate(items):
        w = f"{where} → next[{i}]"
        line = _line(item) or _line(s, "next")
        if isinstance(item, dict) and "else" in item:
            for j, t in enumerate(item["else"] if isinstance(item["else"], list) else [item["else"]]):
                target(t, f"{w} → else[{j}]", _line(item, "else") or line, None, True)
        elif isinstance(item, dict) and "then" in item:
            checks.check_keys(c, w, item, EDGE_KEYS, error=True, what="edge key")
            when = item.get("when")
            if when is not None and not isinstance(when, str | bool):
                c.error(w + " → when", "must be a template string", line)
                continue
            thens = item["then"] if isinstance(item["then"], list) else [item["then"]]
            for j, t in enumerate(thens):
                target(t, f"{w} → then[{j}]", _line(item, "then") or line,
                       None if when is None else str(when), False,
                       _edge_args(item))
        else:
            when = item.get("when") if isinstance(item, dict) else None
            if when is not None and not isinstance(when, str | bool):
                c.error(w + " → when", "must be a template string", line)
                continue
            target(item, w, line, None if when is None else str(when), False)
    return edges


def _check_tool_values(c: _Checker, where: str, s: dict[str, Any], ttype: str) -> None:
    """Enumerated values and bounded numbers of one tool's own keys."""
    if ttype == "http":
        method = s.get("method")
        if method is not None and (not isinstance(method, str) or (
                "{{" not in method and method.upper() not in HTTP_METHODS)):
            c.error(where + " → method", f"unknown http method {method!r}"
                    f"{checks.did_you_mean(str(method).upper(), HTTP_METHODS)}", _line(s, "method"))
    sp = spec(ttype)
    if sp is not None:
        _check_key_kinds(c, where, s, sp)
    if sp is not None and sp.params and s.get("params") is not None:
        bound = s["params"]
        if not (isinstance(bound, str) and "{{" in bound) and not (
                isinstance(bound, dict) and all(isinstance(k, str) and k.isidentifier()
                                                for k in bound)):
            c.error(where + " → params", "must be a mapping of names (identifiers) to values, "
                    f"got {type(bound).__name__}", _line(s, "params"))
    if ttype == "playbook" and s.get("content") is not None:
        _check_inline_child(c, where, s)


def _check_inline_child(c: _Checker, where: str, s: dict[str, Any]) -> None:
    content, line = s["content"], _line(s, "content")
    try:
        if isinstance(content, str):  # never rendered: its templates are the child's own
            parse_playbook(content, source=f"{c.source} ({where} → content)")
        elif isinstance(content, dict):
            build_playbook(content, source=f"{c.source} ({where} → content)")
        else:
            c.error(where + " → content", "must be a playbook (YAML text or a mapping)", line)
    except PlaybookError as exc:
        for p in exc.problems[:20]:
            multi = isinstance(content, str) and "\n" in content.strip()
            at = (line or 0) + (p.line or 0) if multi and line and p.line else line
            c.error(f"{where} → content → {p.where}", p.message, at)
