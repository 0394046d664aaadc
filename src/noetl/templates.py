"""Jinja2 templates, sandboxed.

Rules (docs/semantics.md):
- a value that is exactly one ``{{ expression }}`` renders to the native object (also when it
  ends in ``| tojson``: the value itself, not its JSON text, as NoETL's fixtures expect);
- an undefined top-level name is an error naming the template and the name;
- a missing attribute or key of an existing object is ``None``;
- step results are seen through :class:`StepView`: ``s.data.x``, ``s.result.x`` and ``s.x`` agree;
- helpers ``now()``, ``uuid()``, filters ``tojson`` and ``b64encode``; no process environment.

Templates are compiled once and cached; :func:`names_in` lists the top-level names a value
references, so callers can fetch only the step results a template needs.
"""

from __future__ import annotations

import base64
import datetime as _dt
import enum
import json
import re
import sys
import uuid as _uuid
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from jinja2 import StrictUndefined, Undefined, meta, nodes
from jinja2.exceptions import TemplateSyntaxError, UndefinedError

from noetl import sandbox
from noetl.errors import TemplateError
from noetl.sandbox import BoundedNamespace, BoundedSandbox, TemplateTimeout, arm, disarm
from noetl.settings import Settings

_TOJSON_TAIL = re.compile(r"\|\s*tojson\s*(\(\s*\))?\s*$")
_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)


def json_default(o: Any) -> Any:
    if isinstance(o, _dt.datetime | _dt.date | _dt.time):
        return o.isoformat()
    # a Decimal exists only once something imported decimal (a database driver, a step's
    # code): not imported here, which would cost every `noetl run` its import
    decimal = sys.modules.get("decimal")
    if decimal is not None and isinstance(o, decimal.Decimal):
        return int(o) if o == o.to_integral_value() and abs(o) < 2**63 else float(o)
    if isinstance(o, _uuid.UUID):
        return str(o)
    if isinstance(o, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(o)).decode()
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    if isinstance(o, StepView):
        return dict(o)
    if isinstance(o, enum.Enum):  # its value, as orjson (the wire codec) writes it
        return o.value
    return str(o)


# one encoder for every call (json.dumps with options builds a new one each time); encode()
# keeps no state on the encoder, so threads share it
_COMPACT = json.JSONEncoder(default=json_default, ensure_ascii=False, separators=(",", ":"))


def dumps(value: Any) -> str:
    """Compact JSON text (UTF-8 characters kept, values JSON lacks via :func:`json_default`)."""
    return _COMPACT.encode(value)


# The wire codec of the queue routes and the remote worker (orjson: the work packages and
# outcomes cross it once per step each way). Same text as :func:`dumps` up to spacing of
# numbers: datetimes and dataclasses go through :func:`json_default` as there; what orjson
# refuses (an integer beyond 64 bits, a key that is not a string, a lone surrogate, nesting
# deeper than 254) is encoded by :func:`dumps` instead. NaN and infinities, which the worker
# never reports (``worker/recordable.py``), become ``null`` where :func:`dumps` writes NaN.
ORJSON_OPTS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
# an integer orjson would read as a float (more than 64 bits): the stdlib reads it exactly.
# Found as a run of 20 digits in the text with every digit mapped to "0" and every other byte
# to " " (two passes in C: a regex took 20 times orjson's parse on a 500 KB workload)
_DIGIT_MAP = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * 20


def dumpb(value: Any) -> bytes:
    """:func:`dumps` as UTF-8 bytes, fast (orjson)."""
    try:
        return orjson.dumps(value, default=json_default, option=ORJSON_OPTS)
    except TypeError:  # orjson.JSONEncodeError: beyond orjson, not beyond JSON
        return _COMPACT.encode(value).encode()


def loadb(data: bytes | str) -> Any:
    """JSON text to Python values, fast (orjson); exactly as ``json.loads`` reads it: a long
    integer stays an integer, NaN and lone-surrogate escapes are read by the stdlib."""
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_RUN not in raw.translate(_DIGIT_MAP):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # NaN, Infinity, a lone surrogate escape; or not JSON (the stdlib says why)
    return json.loads(raw)


class StepView(dict[str, Any]):
    """A step result as templates see it: ``.data`` and ``.result`` return itself when absent."""


def view(value: Any) -> Any:
    """Wrap a stored step result for templates (a list result is presented as ``{result: list}``)."""
    if isinstance(value, StepView):
        return value
    if isinstance(value, dict):
        return StepView(value)
    if isinstance(value, list):
        return _ListView(value)
    return value


class EnvelopeView(StepView):
    """``this``: the result envelope ``{id, status, data, meta}``, where a name the envelope
    lacks is looked up in the output (``data``): ``this.data.url`` and ``this.score`` both work,
    as NoETL's fixtures use both."""


def envelope_view(envelope: Any) -> Any:
    if isinstance(envelope, dict) and "data" in envelope:
        return EnvelopeView(envelope)
    return view(envelope)


class _ListView(list[Any]):
    """A list result; ``.data``/``.result`` return the list itself."""


# the view types (_unview undoes them; a type outside this set is plain data to it)
_VIEWS = frozenset({StepView, EnvelopeView, _ListView})


class EnvView(dict[str, Any]):
    """``env``: the process environment variables a deployment allows templates to read
    (``NOETL_TEMPLATE_ENV=NAME,NAME``). A name that is not there is undefined, so
    ``{{ env.X | default('y') }}`` falls back and ``{{ env.X }}`` alone is an error."""


def configure(settings: Settings) -> None:
    """Apply the process's template settings (the render time limit); a composition root
    calls it once."""
    sandbox.RENDER_SECONDS = settings.template_timeout


def allowed_env(names: Iterable[str]) -> EnvView:
    """``env`` for templates: the variables ``names`` (``NOETL_TEMPLATE_ENV``) that are set."""
    import os

    return EnvView({n: os.environ[n] for n in names if n in os.environ})


class _Env(BoundedSandbox):
    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Undefined):
            obj._fail_with_undefined_error()
        if isinstance(obj, EnvView) and attribute not in obj:
            return self.undefined(
                hint=f"env.{attribute} is not set, or not allowed by NOETL_TEMPLATE_ENV",
                obj=obj, name=attribute)
        if isinstance(obj, dict | list) and attribute in ("data", "result", "results"):
            if isinstance(obj, StepView | _ListView) and not (isinstance(obj, dict) and attribute in obj):
                return obj
        if isinstance(obj, dict) and attribute in obj:
            return _wrap(obj[attribute])
        if isinstance(obj, EnvelopeView):
            inner = dict.get(obj, "data")
            if isinstance(inner, dict) and attribute in inner:
                return _wrap(inner[attribute])
            return None
        try:
            value = super().getattr(obj, attribute)
        except UndefinedError:
            return None
        if isinstance(value, StrictUndefined):
            return None
        return _wrap(value)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Undefined):
            obj._fail_with_undefined_error()
        try:
            value = obj[argument]
        except (KeyError, IndexError, TypeError):
            if isinstance(argument, str):
                return self.getattr(obj, argument)
            return None
        return _wrap(value)


def _wrap(value: Any) -> Any:
    if type(value) is dict:
        return StepView(value)
    return value


def _tojson(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, default=json_default, ensure_ascii=False, indent=indent)


def _b64encode(value: Any) -> str:
    data = value.encode() if isinstance(value, str) else dumps(value).encode()
    return base64.b64encode(data).decode()


def _now(fmt: str | None = None) -> str:
    now = _dt.datetime.now(_dt.UTC)
    return now.strftime(fmt) if fmt else now.isoformat()


ENV = _Env(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
ENV.filters["tojson"] = _tojson
ENV.filters["b64encode"] = _b64encode
ENV.globals.update(now=_now, uuid=lambda: str(_uuid.uuid4()), namespace=BoundedNamespace)
GLOBAL_NAMES = frozenset(ENV.globals) | {"range", "dict", "lipsum", "cycler", "joiner", "namespace"}


@lru_cache(maxsize=4096)
def _compile(text: str) -> tuple[Any, bool, frozenset[str]]:
    """Return (callable, is_native_expression, top-level names)."""
    m = _SINGLE.match(text)
    if m and "{{" not in m.group("expr") and "{%" not in text:
        # a whole value `{{ x | tojson }}` is x itself: JSON is only how NoETL carried it
        expr = _TOJSON_TAIL.sub("", m.group("expr")) or m.group("expr")
        ast = ENV.parse("{{" + expr + "}}")
        return ENV.compile_expression(expr, undefined_to_none=False), True, _names(ast)
    ast = ENV.parse(text)
    return ENV.from_string(ast), False, _names(ast)


def _names(ast: nodes.Template) -> frozenset[str]:
    return frozenset(meta.find_undeclared_variables(ast))


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def has_template(value: Any) -> bool:
    """Is there a template string anywhere inside ``value``?"""
    if isinstance(value, str):
        return is_template(value)
    if isinstance(value, dict):
        return any(has_template(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_template(v) for v in value)
    return False


def free_names(tree: nodes.Template) -> set[str]:
    """Top-level names a template reads and never sets (an AST walk: no code generation, so no
    constant folding of hostile arithmetic, and fast)."""
    loaded: set[str] = set()
    stored: set[str] = set()
    for n in tree.find_all(nodes.Name):
        (stored if n.ctx in ("store", "param") else loaded).add(n.name)
    for m in tree.find_all(nodes.Macro):
        stored.add(m.name)
    return loaded - stored


_SIMPLE_EXPR = re.compile(r"\{\{\s*([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*)*)\s*\}\}")
_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "if", "else", "elif", "for", "true",
                       "false", "none", "True", "False", "None", "recursive", "with", "without",
                       "import", "include", "from", "as", "block", "set"})


def _simple_names(text: str) -> frozenset[str] | None:
    """The names of a template made only of text and ``{{ a.b.c }}`` expressions (most
    templates), without the Jinja parser; None for any other template."""
    names: set[str] = set()

    def one(m: re.Match[str]) -> str:
        parts = [m.group(1), *m.group(2).split(".")[1:]]
        if _KEYWORDS.intersection(parts):
            raise ValueError
        names.add(m.group(1))
        return ""

    try:
        rest = _SIMPLE_EXPR.sub(one, text)
    except ValueError:
        return None
    if "{{" in rest or "{%" in rest or "{#" in rest or "}}" in rest:
        return None
    return frozenset(names)


class TemplateFacts(NamedTuple):
    names: frozenset[str]  # top-level names read and never set
    filters: frozenset[str]
    tests: frozenset[str]


@lru_cache(maxsize=1 << 16)  # a 40,000-step playbook's templates: validated, then planned
def template_facts(text: str) -> TemplateFacts:
    """What a template uses, from one parse (its syntax tree alone: validating and planning a
    playbook generates no code for templates it may never render). Raises
    ``TemplateSyntaxError`` (and ``RecursionError`` when nested too deeply)."""
    simple = _simple_names(text)
    if simple is not None:
        return TemplateFacts(simple, frozenset(), frozenset())
    tree = ENV.parse(text)
    return TemplateFacts(frozenset(free_names(tree)),
                         frozenset(f.name for f in tree.find_all(nodes.Filter)),
                         frozenset(t.name for t in tree.find_all(nodes.Test)))


def names_in(value: Any) -> frozenset[str]:
    """Top-level names referenced by every template string inside ``value``."""
    out: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, str):
            if is_template(v):
                try:
                    out.update(template_facts(v).names)
                except (TemplateSyntaxError, RecursionError):
                    pass  # reported when rendered
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)

    walk(value)
    return frozenset(out - GLOBAL_NAMES)


def render_str(text: str, ctx: Mapping[str, Any], where: str = "template") -> Any:
    try:
        fn, native, _ = _compile(text)
    except TemplateSyntaxError as exc:
        raise _error(where, text, f"template syntax error: {exc.message}",
                     f"template syntax error in {text!r}: {exc.message}") from exc
    deadline = arm()  # TemplateTimeout in this thread past NOETL_TEMPLATE_TIMEOUT
    try:
        try:
            if native:
                result = fn(**ctx)
                if isinstance(result, StrictUndefined):
                    str(result)  # raises UndefinedError naming the variable
                return _unview(result)
            return fn.render(ctx)
        finally:
            disarm(deadline)
    except TemplateTimeout as exc:
        reason = f"took longer than the {sandbox.RENDER_SECONDS:g} s template time limit"
        raise _error(where, text, reason, f"rendering {text[:200]!r} {reason}") from exc
    except UndefinedError as exc:
        raise _error(where, text, str(exc.message), f"cannot render {text!r}: {exc.message}") from exc
    except TemplateError:
        raise
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        raise _error(where, text, reason, f"cannot render {text!r}: {reason}") from exc


def _error(where: str, text: str, reason: str, message: str) -> TemplateError:
    """The error of one template: the whole message, and its parts for the error record."""
    return TemplateError(f"{where}: {message}", where=where, template=text, reason=reason)


def _unview(value: Any) -> Any:
    """A view as plain data: its own container copied, the views in it (at any depth of
    views) undone. A container holding no view is copied in C (a workload's list of 5,000
    items was 5,000 calls for every python step)."""
    if isinstance(value, StepView):
        if _VIEWS.isdisjoint(map(type, value.values())):
            return dict(value)
        return {k: _unview(v) for k, v in value.items()}
    if isinstance(value, _ListView):
        if _VIEWS.isdisjoint(map(type, value)):
            return list(value)
        return [_unview(v) for v in value]
    return value


def render(value: Any, ctx: Mapping[str, Any], where: str = "template") -> Any:
    """Render every template string inside ``value`` (dicts and lists recursively)."""
    if isinstance(value, str):
        return render_str(value, ctx, where) if is_template(value) else value
    if isinstance(value, dict):
        return {k: render(v, ctx, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, ctx, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


FALSY_STRINGS = frozenset({"", "false", "0", "none", "null", "no", "off"})


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in FALSY_STRINGS
    return bool(value)


def evaluate(condition: str | bool, ctx: Mapping[str, Any], where: str = "when") -> bool:
    if isinstance(condition, bool):
        return condition
    text = condition if is_template(condition) else "{{ " + condition + " }}"
    return truthy(render_str(text, ctx, where))


# Names a step's args never shadow: they are the frame every template relies on.
RESERVED_NAMES = frozenset({"workload", "work", "execution_id", "args", "input", "env", "job"})


def with_names(ctx: Mapping[str, Any], names: Mapping[str, Any] | None) -> dict[str, Any]:
    """``ctx`` with ``names`` (a step's args, an edge's args) on top as bare names, as NoETL
    rendered tool templates with ``{**context, **args}``: a bare name that is both an arg and a
    step result is the arg. The names in :data:`RESERVED_NAMES` are never shadowed."""
    out = dict(ctx)
    if names:
        for k, v in names.items():
            if k not in RESERVED_NAMES:
                out[k] = v
    return out


def tool_context(ctx: Mapping[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """The context of a step's own templates (tool config, save, collection): its args as bare
    names and as ``args`` / ``input``."""
    out = with_names(ctx, args)
    out["args"] = args
    out["input"] = args
    return out


def context(base: Mapping[str, Any], results: Mapping[str, Any],
            extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Build a render context: workload keys, step results wrapped in StepView, extras on top."""
    ctx: dict[str, Any] = {}
    workload = base.get("workload")
    if isinstance(workload, dict):
        # workload keys are also bare names (as in NoETL), below everything else
        for k, v in workload.items():
            if k not in RESERVED_NAMES:
                ctx[k] = view(v)
        wl = view(workload)
        ctx["workload"] = wl
        ctx["work"] = wl
    for k, v in base.items():
        if k != "workload":
            ctx[k] = v
    for name, res in results.items():
        ctx[name] = view(res)
    if extra:
        for k, v in extra.items():
            if k == "this" and isinstance(v, EnvelopeView):
                ctx[k] = v
            else:
                ctx[k] = view(v) if k in ("result", "this", "data") else v
    return ctx


def render_step_args(args: dict[str, Any], edge: dict[str, Any], ctx: dict[str, Any],
                     where: str) -> dict[str, Any]:
    """A step's ``args`` rendered with the incoming edge's values as bare names; the edge's
    values win over the step's own. ``__whole__`` (args given as one template) must render to
    a mapping, which the other keys then extend. Used by the worker (steps it runs) and the
    engine (loops, sub-playbooks) alike."""
    if edge:
        ctx = with_names(ctx, edge)
    raw = dict(args)
    base: dict[str, Any] = {}
    whole = raw.pop("__whole__", None)
    if whole is not None:
        value = render(whole, ctx, where)
        if not isinstance(value, dict):
            reason = f"rendered to {type(value).__name__}, not a mapping"
            raise TemplateError(f"{where}: {whole!r} {reason}", where=where, template=whole,
                                reason=reason)
        base = value
    return {**base, **render(raw, ctx, where), **edge}

