"""``type: python``: run ``main`` from the step's ``code``.

With a step ``timeout`` the code runs in a child process that is killed when the time is up
(:mod:`noetl.tools.python_isolated`); without one it runs in the worker thread.

Calling rules (docs/semantics.md): parameters are filled from ``args`` by name (then from the
render context: loop variables, step results, ``workload``); a single parameter ``input_data``
with no ``input_data`` arg receives the whole args dict (in a loop task with no args: the
item); ``**kwargs`` receives every arg.
``print`` output is captured per call.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import inspect
import json
import linecache
import re
import traceback
import types
import uuid
from functools import lru_cache
from typing import Any

from noetl.errors import ToolError
from noetl.tools.base import ToolCall
from noetl.tools.output import capture
from noetl.tools.step_env import StepExit, step_builtins, step_os

_MISSING = object()


def code_name(code: str) -> str:
    """The file name the step's code is compiled under (it names the code, not the step)."""
    return "<step code " + hashlib.sha1(code.encode()).hexdigest()[:8] + ">"


@lru_cache(maxsize=1024)
def _compile(code: str) -> Any:
    name = code_name(code)
    # register the source so tracebacks show the user's lines
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    return compile(code, name, "exec")


def user_traceback(exc: BaseException, strict: bool = False) -> str:
    """The traceback from the first frame of the step's own code (engine frames dropped).
    With no such frame: the whole traceback, or with ``strict`` an empty string."""
    if isinstance(exc, SyntaxError) and str(exc.filename).startswith("<step code"):
        return "".join(traceback.format_exception_only(type(exc), exc))
    tb = exc.__traceback__
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<step code"):
        tb = tb.tb_next
    if tb is None and strict:
        return ""
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


def at_yaml_lines(text: str, code: str | None, at: Any) -> str:
    """``text`` (a traceback or a message) with the lines of ``code`` — the step's code block,
    whose first line is line ``at[1]`` of the YAML file ``at[0]`` — given as that file's lines:
    ``File "<step code 1a2b3c4d>", line 3`` becomes ``File "flow.yaml", line 14``."""
    if not code or not at or "<step code" not in text:
        return text
    source, first = str(at[0]), int(at[1])
    name = re.escape(code_name(code))

    def line(m: re.Match[str]) -> str:
        return f"{m[1]}{source}{m[2]}{first + int(m[3]) - 1}"

    return re.sub(rf'(File "|\(){name}("?, line )(\d+)', line, text)


def raised_at(text: str, at: Any) -> str | None:
    """``flow.yaml, line 14``: the innermost line of the step's code in a traceback mapped by
    :func:`at_yaml_lines` (the line that raised, or the line with a syntax error)."""
    if not at:
        return None
    source = str(at[0])
    found = re.findall(rf'(?:File "|\(){re.escape(source)}"?, line (\d+)', text)
    return f"{source}, line {found[-1]}" if found else None


def _code(action: dict[str, Any]) -> str:
    code = action.get("code")
    if code is None and action.get("code_b64"):
        code = base64.b64decode(action["code_b64"]).decode()
    if not isinstance(code, str) or not code.strip():
        raise ToolError("python step has no code", "ValueError")
    return code


def _unview(v: Any) -> Any:
    # imported on use, not at the top: importing this module does not load Jinja
    from noetl.templates import _unview as u

    return u(v)


_P = inspect.Parameter
_SIGNATURES: dict[tuple[Any, ...], tuple[tuple[str, Any, bool], ...]] = {}


def parameters(main: Any) -> tuple[tuple[str, Any, bool], ...]:
    """``(name, kind, has a default)`` of each parameter of ``main``. ``inspect.signature``
    cost as much as the rest of a small step: for a plain function (no ``__wrapped__`` or
    ``__signature__``) the answer is kept per code object, number of defaults and keyword-only
    defaults, which is all it depends on; each step's ``exec`` makes a new function of the
    same code."""
    key = None
    if type(main) is types.FunctionType and "__wrapped__" not in main.__dict__ \
            and "__signature__" not in main.__dict__:
        key = (main.__code__, len(main.__defaults__ or ()), tuple(main.__kwdefaults__ or ()))
        got = _SIGNATURES.get(key)
        if got is not None:
            return got
    params = tuple((p.name, p.kind, p.default is not p.empty)
                   for p in inspect.signature(main).parameters.values())
    if key is not None:
        if len(_SIGNATURES) >= 1024:
            _SIGNATURES.clear()
        _SIGNATURES[key] = params
    return params


def call_main(main: Any, args: dict[str, Any], ctx: dict[str, Any]) -> Any:
    params = parameters(main)
    if not params:
        return main()
    if len(params) == 1 and params[0][0] == "input_data" and "input_data" not in args:
        loop = ctx.get("_loop")
        if not args and isinstance(loop, dict) and "item" in loop:
            return main(_unview(loop["item"]))  # a loop task with no args: its input is the item
        return main(args)
    kwargs: dict[str, Any] = {}
    positional: list[Any] = []
    for name, kind, has_default in params:
        if kind is _P.VAR_KEYWORD:  # every arg, and `context` (as NoETL passed it)
            for k, v in args.items():
                if k not in kwargs:
                    kwargs[k] = v
            if "context" not in kwargs and all(p[0] != "context" for p in params):
                kwargs["context"] = {k: _unview(v) for k, v in ctx.items()}
            continue
        if kind is _P.VAR_POSITIONAL:
            continue
        value = args.get(name, _MISSING)
        if value is _MISSING and name in ctx:
            value = _unview(ctx[name])
        if value is _MISSING:
            if has_default:
                continue
            if name == "context":
                value = ctx
            else:
                raise TypeError(f"main() parameter '{name}' has no value: no arg "
                                f"'{name}' (args: {sorted(args) or 'none'})")
        if kind is _P.POSITIONAL_ONLY:
            positional.append(value)
        else:
            kwargs[name] = value
    return main(*positional, **kwargs)


def step_globals(ctx: dict[str, Any]) -> dict[str, Any]:
    """Names the step's code sees without importing (NoETL's set): ``context`` (the render
    context as plain data), ``json``, ``os``, ``datetime``, ``uuid``."""
    from noetl.templates import _unview as plain  # (see _unview)

    os = step_os()  # scrubbed environment; os._exit fails the step
    return {"__name__": "__noetl_step__", "__builtins__": step_builtins(os), "json": json,
            "os": os, "datetime": datetime, "uuid": uuid,
            "context": {k: plain(v) for k, v in ctx.items()}}


def isolated(call: ToolCall) -> bool:
    """A child process for the step: with a ``timeout``, with ``isolate: true``, or when the
    step's previous attempt lost its worker (so a step that kills its process kills one
    worker at most)."""
    flag = call.action.get("isolate")
    return bool(call.timeout or call.isolate or flag is True
                or str(flag).lower() in ("true", "yes", "1"))


def run(call: ToolCall) -> Any:
    code = _code(call.action)
    if isolated(call):
        from noetl.tools.python_isolated import run_isolated

        result, text = run_isolated(code, call.args, call.ctx, call.timeout,
                                    call.services.cancelled)
        if text:
            call.services.extra["stdout"] = text
        return result
    try:
        compiled = _compile(code)
    except SyntaxError as exc:
        raise ToolError(f"python code does not compile: {exc}", "SyntaxError",
                        traceback.format_exc(), user_traceback=user_traceback(exc, True)) from exc
    ns = step_globals(call.ctx)
    with capture() as out:
        try:
            exec(compiled, ns)
            main = ns.get("main")
            if not callable(main):
                raise ToolError("python code does not define main()", "ValueError")
            result = call_main(main, call.args, call.ctx)
        except ToolError:
            raise
        except (Exception, SystemExit, KeyboardInterrupt, StepExit) as exc:
            # SystemExit, KeyboardInterrupt and os._exit() end the step, not the worker thread
            raise ToolError(str(exc) or type(exc).__name__, type(exc).__name__,
                            traceback.format_exc(), user_traceback=user_traceback(exc, True)) from exc
        finally:
            text = out.getvalue()
            if text:
                call.services.extra["stdout"] = text
    return result
