"""Typed, validated playbook model. Built by :mod:`noetl.dsl.loader`; immutable afterwards."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from noetl.dsl.tools_spec import ENGINE_STEPS, SAVE_STORAGES, TOOLS, step_keys

# Step types the DSL knows: the tools of noetl.dsl.tools_spec and the engine's own constructs
# (workbook, playbook, iterator, router, end). A step with no type is a router.
STEP_TYPES = frozenset(TOOLS) | frozenset(ENGINE_STEPS)
SAVE_KINDS = frozenset(SAVE_STORAGES)

COMMON_STEP_KEYS = frozenset({
    "step", "desc", "description", "type", "tool", "args", "with", "input", "payload", "data",
    "next", "save", "retry", "timeout", "auth", "credential", "credentials", "assert", "name",
    "task", "metadata",
})
# common keys whose absence changes what runs or what comes next: a near miss of one the step
# lacks (`nxt:`, `typ:`, `retyr:`) is an error on any step, not the unknown key's warning
MEANING_KEYS = frozenset({"next", "type", "tool", "args", "save", "retry", "timeout", "assert"})
# each step type's own keys (beyond the common ones), from the spec
TOOL_KEYS: dict[str, frozenset[str]] = {t: step_keys(t) for t in sorted(STEP_TYPES)}
# keys of any step type: an unknown one on a step of a non-strict type is a warning
ALL_STEP_KEYS = COMMON_STEP_KEYS.union(*TOOL_KEYS.values())


@dataclass(frozen=True)
class Edge:
    """One transition out of a step."""

    target: str
    when: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    is_else: bool = False
    line: int | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """A step's ``retry``: how many attempts, the delays between them, when to retry."""

    max_attempts: int = 3
    initial_delay: float = 1.0
    backoff_multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: bool = True
    retry_when: str | None = None
    stop_when: str | None = None

    def delay(self, attempt: int, rand: float = 1.0) -> float:
        """Delay before attempt ``attempt + 1`` after ``attempt`` failed (1-based)."""
        d = min(self.max_delay, self.initial_delay * self.backoff_multiplier ** (attempt - 1))
        return d * rand if self.jitter else d


@dataclass(frozen=True)
class Step:
    """One step of a playbook, validated."""

    name: str
    type: str | None  # None: router
    args: dict[str, Any]
    next: tuple[Edge, ...]
    config: dict[str, Any]  # the full step mapping (plain), for tools
    save: dict[str, Any] | None = None
    retry: RetryPolicy | None = None
    timeout: float | None = None
    desc: str | None = None
    line: int | None = None

    @property
    def is_router(self) -> bool:
        return self.type in (None, "router", "noop") or (self.type == "end")


@dataclass(frozen=True)
class Playbook:
    """A loaded, validated playbook (``raw``: its document as plain data)."""

    path: str
    name: str
    version: str | None
    workload: dict[str, Any]
    workbook: dict[str, dict[str, Any]]
    steps: dict[str, Step]
    raw: dict[str, Any]
    source: str = "<playbook>"
    warnings: tuple[str, ...] = ()
    description: str | None = None
    warning_problems: tuple[Any, ...] = ()  # the warnings as noetl.errors.Problem (where, line)
    # the YAML line of the first line of each python `code` (keys "step:NAME", "task:NAME" for
    # an iterator's task, "workbook:NAME"), so run-time tracebacks can name the file's lines
    code_lines: dict[str, int] = field(default_factory=dict)
