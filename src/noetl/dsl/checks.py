"""Checks that go past the shape of a playbook: keys that change meaning, enumerated values,
bounded numbers, python code and Jinja templates compiled, template names resolved.

Each check reports through the loader's checker (``error``/``warn`` with a line), never raises.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Container, Iterable, Iterator, Mapping
from typing import Any, Protocol

from noetl.dsl.yamlsrc import LineDict

# Keys an edge (an item of `next`) may carry. An unknown key on an edge is an error: `wehn:`
# instead of `when:` would otherwise make a guarded edge unconditional.
EDGE_KEYS = frozenset({"step", "when", "then", "else", "args", "with", "data", "input", "payload",
                       "desc", "description", "name"})
SAVE_KEYS = frozenset({"storage", "data", "args", "table", "statement", "key", "mode", "auth",
                       "credential", "type", "tool", "kind", "name", "path", "params", "commands",
                       "command", "database", "url", "endpoint", "method", "headers", "format",
                       "columns", "code", "schema", "connection", "db", "desc", "description"})
SAVE_MODES = frozenset({"insert", "upsert", "update", "replace", "append", "overwrite", "merge",
                        "delete"})
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
# Names the run-time context gives every template (besides workload keys, step names, args).
CONTEXT_NAMES = frozenset({
    "workload", "execution_id", "result", "args", "env", "job", "context", "params", "results",
    "items", "count", "errors", "error", "input", "data", "item", "index", "loop", "step",
    "vars", "secret", "secrets", "credential", "credentials", "catalog_id", "parent_execution_id",
    "playbook", "path", "now", "input_data", "this", "response", "status", "_loop", "meta",
    "workbook", "attempt", "iteration", "event", "_meta", "status_code", "success", "headers",
    "body", "text", "json", "rows", "row_count", "elapsed", "attempts", "ok", "value", "key",
})
# Upper bounds for numbers the engine schedules with (seconds, counts, sizes).
MAX_SECONDS = 7 * 24 * 3600.0
MAX_COUNT = 1_000_000


class Reporter(Protocol):
    def error(self, where: str, message: str, line: int | None) -> None: ...
    def warn(self, where: str, message: str, line: int | None) -> None: ...


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    import difflib  # only for a problem's hint: not loaded when a playbook is valid

    near = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{near[0]}'?)" if near else ""


def near_miss(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` is most likely a typo of: the same first letter and close
    (difflib ratio ≥ 0.75: `nxt`, `tpye`, `retyr`), never just a word of the same length
    (`tags` is not `args`, `text` not `next`). Stricter than :func:`did_you_mean`: it makes
    an error of what would be a warning."""
    import difflib

    w = word.lower()
    best, score = None, 0.75
    for c in sorted(choices):
        if c[:1] == w[:1]:
            r = difflib.SequenceMatcher(None, w, c).ratio()
            if r >= score:
                best, score = c, r
    return best


def _line(obj: Any, key: str | None = None) -> int | None:
    if isinstance(obj, LineDict):
        return obj.line_of(key) if key else obj.line
    return getattr(obj, "line", None)


def check_keys(c: Reporter, where: str, obj: dict[str, Any], known: frozenset[str], *,
               error: bool, what: str = "key") -> None:
    for key in obj:
        if key not in known:
            msg = f"unknown {what} '{key}'{did_you_mean(str(key), known)}"
            if error:
                c.error(where, msg, _line(obj, key))
            else:
                c.warn(where, msg + " (ignored)", _line(obj, key))


def check_number(c: Reporter, where: str, obj: dict[str, Any], key: str, *, integer: bool,
                 minimum: float, maximum: float, templated: bool = True) -> None:
    """``obj[key]`` (if present) must be a finite number in [minimum, maximum]."""
    if key not in obj or obj[key] is None:
        return
    val = obj[key]
    if templated and isinstance(val, str) and "{{" in val:
        return
    kind = "a whole number" if integer else "a number"
    ok = (not isinstance(val, bool)) and (isinstance(val, int) if integer else isinstance(val, int | float))
    if ok and isinstance(val, float) and not math.isfinite(val):
        ok = False
    if not ok:
        c.error(f"{where} → {key}", f"must be {kind} between {minimum:g} and {maximum:g}, "
                f"got {_short(val)}", _line(obj, key))
        return
    if not minimum <= val <= maximum:
        c.error(f"{where} → {key}", f"must be between {minimum:g} and {maximum:g}, got "
                f"{_short(val)}", _line(obj, key))


def _short(val: Any) -> str:
    if isinstance(val, int) and not isinstance(val, bool) and abs(val) > 10**15:
        return f"a number of about {int(val.bit_length() * 0.30103) + 1} digits"
    text = repr(val)
    return text if len(text) <= 60 else text[:57] + "..."


def check_python(c: Reporter, where: str, s: dict[str, Any], fillable: Container[str],
                 args: dict[str, Any], loop_task: bool = False) -> None:
    code = s.get("code")
    if not isinstance(code, str) or "{{" in code or "{%" in code:
        return
    base = _line(s, "code") or 0
    multi = "\n" in code.rstrip("\n")
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        line = base + (exc.lineno or 1) if multi and base else base or None
        c.error(where + " → code", f"python syntax error: {exc.msg} (code line {exc.lineno})", line)
        return
    except (ValueError, RecursionError, MemoryError) as exc:
        c.error(where + " → code", f"python code cannot be parsed: {type(exc).__name__}", base or None)
        return
    mains = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
             and n.name == "main"]
    if not mains:
        bound = any(isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "main"
                                                      for t in n.targets) for n in tree.body)
        bound = bound or any(isinstance(n, ast.Import | ast.ImportFrom)
                             and any((al.asname or al.name) == "main" for al in n.names)
                             for n in tree.body)
        if not bound:
            c.error(where + " → code", "python code does not define main()", base or None)
        return
    fn = mains[-1]
    if "__whole__" in args or fn.args.kwarg is not None:
        return
    a = fn.args
    positional = a.posonlyargs + a.args
    required = positional[:len(positional) - len(a.defaults)]
    required += [k for k, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is None]
    names = [p.arg for p in required]
    if len(names) == 1 and (names[0] == "input_data" or (loop_task and not args)):
        return
    for p in names:
        if p in args or p in fillable or p == "context":
            continue
        line = base + fn.lineno if multi and base else base or None
        c.error(where + " → code", f"main() parameter '{p}' has no value: add '{p}' to the step's "
                f"args (or to the args of an edge into this step){did_you_mean(p, set(args))}",
                line)


def iter_strings(obj: Any, line: int | None, skip: frozenset[str] = frozenset()
                 ) -> Iterator[tuple[str, str, int | None]]:
    """(key path, string, line) for every string inside ``obj`` (iteratively, no recursion)."""
    stack: list[tuple[str, Any, int | None]] = [("", obj, line)]
    while stack:
        path, val, ln = stack.pop()
        if isinstance(val, str):
            yield path, val, ln
        elif isinstance(val, dict):
            for k, v in val.items():
                if k in skip and not path:
                    continue
                stack.append((f"{path}.{k}" if path else str(k), v, _line(val, k) or ln))
        elif isinstance(val, list):
            base = getattr(val, "line", None) or ln
            for i, v in enumerate(val):
                stack.append((f"{path}[{i}]", v, _line(v) or base))


class TemplateChecker:
    """Parses every template once (no constant folding: parse only) and resolves its names."""

    def __init__(self, c: Reporter, known: set[str]):
        from noetl.templates import ENV

        self.c = c
        self.env = ENV
        self.known = known

    def check(self, where: str, text: str, line: int | None, local: Iterable[str] = (),
              absent: Mapping[str, str] | None = None) -> None:
        """``absent``: context names this field does not see, with why (a use is an error,
        or a warning where the template tests or defaults it)."""
        if "{{" not in text and "{%" not in text:
            return
        from jinja2.exceptions import TemplateSyntaxError

        from noetl.templates import template_facts

        if len(text) > 100_000:
            self.c.error(where, "template longer than 100,000 characters", line)
            return
        try:
            facts = template_facts(text)
        except TemplateSyntaxError as exc:
            self.c.error(where, f"template syntax error: {exc.message} in {_short(text)}", line)
            return
        except (RecursionError, MemoryError):
            self.c.error(where, f"template nested too deeply: {_short(text)}", line)
            return
        for name in sorted(facts.filters):
            if name not in self.env.filters:
                self.c.error(where, f"unknown filter '{name}'"
                             f"{did_you_mean(name, self.env.filters)} in {_short(text)}", line)
        for name in sorted(facts.tests):
            if name not in self.env.tests:
                self.c.error(where, f"unknown test '{name}'"
                             f"{did_you_mean(name, self.env.tests)} in {_short(text)}", line)
        names = facts.names
        local = set(local)
        if absent and not absent.keys().isdisjoint(names):
            self._absent(where, text, line, names & absent.keys() - local, absent, facts)
        for name in sorted(names):
            if name in self.known or name in local or name in self.env.globals:
                continue
            hint = did_you_mean(name, self.known | local | set(self.env.globals))
            msg = f"unknown name '{name}' in template {_short(text)}"
            if hint:
                self.c.error(where, msg + hint, line)
            else:
                self.c.warn(where, msg + " (not a workload key, step or context name)", line)


    def _absent(self, where: str, text: str, line: int | None, used: Iterable[str],
                absent: Mapping[str, str], facts: Any) -> None:
        guarded = bool({"defined", "undefined"} & facts.tests or {"default", "d"} & facts.filters)
        for name in sorted(used):
            msg = f"'{name}' is not defined here, in template {_short(text)}: {absent[name]}"
            if guarded:
                self.c.warn(where, msg + f" (this template's test or default of '{name}' "
                            "always finds it undefined)", line)
            else:
                self.c.error(where, msg + ", so rendering it fails the step", line)
