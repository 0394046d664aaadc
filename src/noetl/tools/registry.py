"""Step type → tool. Tools for optional backends are imported on first use."""

from __future__ import annotations

import importlib
from typing import cast

from noetl.errors import ToolError
from noetl.tools.base import Tool

# type -> "module:function"; extended by later tools without touching the engine
BUILTIN: dict[str, str] = {
    "python": "noetl.tools.python:run",
    "noop": "noetl.tools.noop:run",
    "http": "noetl.tools.http:run",
    "postgres": "noetl.tools.postgres:run",
    "duckdb": "noetl.tools.duckdb:run",
    "secrets": "noetl.tools.secrets:run",
    "transfer": "noetl.tools.transfer:run",
}

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
        raise ToolError(f"tool '{name}' is not available: {exc}", "ToolUnavailable") from exc
    _loaded[name] = tool
    return tool
