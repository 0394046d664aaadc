"""Names that exist only in some of a step's fields, and conditions that are no templates.

What the engine gives a template depends on the field (docs/semantics.md, "Names a template
sees"): ``error`` exists only in a step's edges (``next`` → ``when``/``args``: None, or the
step's error after a failure) and in its retry predicates; everywhere else (args, tool
settings, save, loop settings) it is undefined, and rendering it fails the step. A router (a
step with no action) has no result: ``result``/``this`` are None in its edges. A ``when``
without ``{{ }}`` is read as the expression inside ``{{ }}``: ``when: "No"`` reads the
undefined name ``No`` and fails the run when the edge is evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from typing import Any

# key paths of a step's edges (`next: {...}` or `next: [...]`)
_EDGE_PREFIXES = ("next[", "next.")
# fields that see `error`: a step's edges, its retry predicates (a loop task's too)
_ERROR_PREFIXES = (*_EDGE_PREFIXES, "retry.", "task.retry.")
_WHEN_FIELD = re.compile(r"next(?:\[(\d+)\])?\.when")
ERROR_ABSENT = ("only a step's edges (next → when/args) and its retry predicates (retry_when, "
                "stop_when) see 'error'")
# words YAML 1.1 or people read as booleans; Jinja knows only these spellings of them
_BOOLISH = {"yes": True, "y": True, "on": True, "true": True, "no": False, "n": False,
            "off": False, "false": False, "null": False, "none": False}
_JINJA_LITERALS = frozenset({"true", "True", "false", "False", "none", "None"})
# step types that run no action (a router), unless a save gives them one (noetl.plan)
ACTIONLESS = frozenset({None, "router", "noop", "end"})


_NONE_ABSENT: Mapping[str, str] = {}
_ERROR_ABSENT_MAP: Mapping[str, str] = {"error": ERROR_ABSENT}


def absent_names(path: str, shadowed: bool) -> Mapping[str, str]:
    """The context names a template at ``path`` (a key path inside a step) cannot see, with
    why; ``shadowed``: the playbook itself defines ``error`` (a workload key, step, arg or
    loop variable of that name), so it is not absent."""
    if shadowed or path.startswith(_ERROR_PREFIXES):
        return _NONE_ABSENT
    return _ERROR_ABSENT_MAP




def edge_targets(raw_step: Mapping[str, Any], path: str) -> list[str]:
    """The targets of the edge whose ``when`` is at ``path`` (``next[2].when``)."""
    m = _WHEN_FIELD.fullmatch(path)
    nxt = raw_step.get("next")
    if m is None or nxt is None:
        return []
    item = nxt if m.group(1) is None else (nxt[int(m.group(1))] if isinstance(nxt, list)
                                           and int(m.group(1)) < len(nxt) else None)
    if not isinstance(item, dict):
        return []
    if isinstance(item.get("step"), str):
        return [item["step"]]
    thens = item.get("then")
    thens = thens if isinstance(thens, list) else [thens]
    return [t if isinstance(t, str) else str(t.get("step")) for t in thens
            if isinstance(t, str) or (isinstance(t, dict) and t.get("step"))]


def is_when(path: str) -> bool:
    return path.endswith(".when") and _WHEN_FIELD.fullmatch(path) is not None


def is_edge(path: str) -> bool:
    return path.startswith(_EDGE_PREFIXES)


def bare_when_problem(text: str, targets: list[str], known: Container[str]) -> str | None:
    """What is wrong with a ``when`` that is no template, when its word is a boolean of YAML
    or of people but no name and no Jinja literal (``"No"``, ``"yes"``, ``"TRUE"``, ``"off"``)."""
    word = text.strip()
    if word in _JINJA_LITERALS or word.lower() not in _BOOLISH or word in known:
        return None
    fix = "true" if _BOOLISH[word.lower()] else "false"
    edge = f" (edge to {', '.join(repr(t) for t in targets)})" if targets else ""
    return (f"{text!r} is not a template{edge}: a 'when' without {{{{ }}}} is read as the "
            f"expression {{{{ {word} }}}}, and '{word}' is not a defined name, so the run fails when this "
            f"edge is evaluated; write when: {fix} (or \"{{{{ {fix} }}}}\")")


def is_router(st: Any) -> bool:
    """Whether a step runs no action (so has no result): no type, or an actionless one,
    and no save (a save makes it run, with its args as its result)."""
    return st.type in ACTIONLESS and not st.save


def router_result_reads(text: str) -> list[str]:
    """``result.x`` / ``this.x`` / ``result['x']`` read by a template (the words as written)."""
    from jinja2 import nodes
    from jinja2.exceptions import TemplateSyntaxError

    from noetl.templates import ENV

    try:
        tree = ENV.parse(text)
    except (TemplateSyntaxError, RecursionError):
        return []  # reported by the template check
    out: list[str] = []
    for n in tree.find_all((nodes.Getattr, nodes.Getitem)):
        inner = getattr(n, "node", None)
        if isinstance(inner, nodes.Name) and inner.name in ("result", "this") \
                and inner.ctx == "load":
            arg = getattr(n, "arg", None)
            key = n.attr if isinstance(n, nodes.Getattr) else (
                arg.value if isinstance(arg, nodes.Const) else None)
            word = f"{inner.name}.{key}" if isinstance(key, str) else f"{inner.name}[...]"
            if word not in out:
                out.append(word)
    return out


def router_result_problem(name: str, words: list[str], preds: list[str]) -> str:
    key = words[0].split(".", 1)[1] if "." in words[0] else None
    if len(preds) == 1 and key:
        hint = f" (did you mean '{preds[0]}.{key}'?)"
    elif preds and key:
        hint = f": name the step whose result it is ({', '.join(f'{p}.{key}' for p in preds)})"
    else:
        hint = ": name the step whose result it is, or read the workload"
    return (f"'{name}' is a router (a step with no action), so it has no result: "
            f"'{words[0]}' is always None here{hint}")
