"""A step with no action that still has work to do (an ``end`` with a save): returns its args."""

from __future__ import annotations

from typing import Any

from noetl.tools.base import ToolCall


def run(call: ToolCall) -> Any:
    return call.args or None
