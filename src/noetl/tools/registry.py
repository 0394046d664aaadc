"""Step type → tool. Tools for optional backends are imported on first use.

Which tools exist, and where each one's code is, is :mod:`noetl.dsl.tools_spec` (``TOOLS``):
the registry only resolves those ``module:function`` targets (and tools a worker registers
itself with :func:`register_tool`)."""

from __future__ import annotations

import importlib
from typing import cast

from noetl.dsl.tools_spec import TOOLS, builtin_targets
from noetl.errors import ToolError
from noetl.tools.base import Tool

# type -> "module:function", read from the tool spec
BUILTIN: dict[str, str] = builtin_targets()

_loaded: dict[str, Tool] = {}
_custom: dict[str, Tool] = {}


def register_tool(name: str, tool: Tool) -> None:
    _custom[name] = tool


def get_tool(name: str) -> Tool:
    if name in _custom:
        return _custom[name]
    tool = _loaded.get(name)
    if tool is not None:
        return tool
    target = BUILTIN.get(name)
    if target is None:
        raise ToolError(f"no tool for step type '{name}' on this worker", "UnknownTool")
    module, func = target.split(":")
    try:
        tool = cast(Tool, getattr(importlib.import_module(module), func))
    except ImportError as exc:
        extra = TOOLS[name].extra if name in TOOLS else None
        hint = f" (install it: pip install 'noetl[{extra}]')" if extra else ""
        raise ToolError(f"tool '{name}' is not available: {exc}{hint}",
                        "ToolUnavailable") from exc
    _loaded[name] = tool
    return tool
