"""Typed, validated playbook model. Built by :mod:`noetl.dsl.loader`; immutable afterwards."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Step types the DSL knows. A step with no type is a router.
STEP_TYPES = frozenset({
    "python", "http", "postgres", "duckdb", "workbook", "playbook", "iterator", "secrets",
    "save", "transfer", "snowflake", "snowflake_transfer", "end", "router", "noop",
})
SAVE_KINDS = frozenset({"event", "event_log", "postgres", "duckdb", "http", "python"})

COMMON_STEP_KEYS = frozenset({
    "step", "desc", "description", "type", "tool", "args", "with", "input", "payload", "data",
    "next", "save", "retry", "timeout", "auth", "credential", "credentials", "assert", "name",
    "task", "metadata",
})
TOOL_KEYS: dict[str, frozenset[str]] = {
    "python": frozenset({"code", "code_b64", "module", "callable"}),
    "http": frozenset({"endpoint", "url", "method", "headers", "params", "json", "body", "verify"}),
    "postgres": frozenset({"command", "commands", "command_b64", "commands_b64", "query", "sql",
                           "db_host", "db_port", "db_user", "db_password", "db_name",
                           "db_conn_string", "params"}),
    "duckdb": frozenset({"command", "commands", "command_b64", "commands_b64", "query", "sql",
                         "database", "db_type", "require_cloud_output", "auto_secrets",
                         "params"}),
    "workbook": frozenset(),
    "playbook": frozenset({"path", "version", "return_step", "content", "resource_path",
                           "playbook_path"}),
    "iterator": frozenset({"collection", "element", "mode", "concurrency", "where", "order_by",
                           "limit", "chunk", "enumerate", "iterator"}),
    "secrets": frozenset({"provider", "project_id", "secret_name", "version"}),
    "transfer": frozenset({"source", "target", "chunk_size", "mapping", "mode"}),
    "snowflake": frozenset({"command", "commands", "command_b64", "commands_b64"}),
    "snowflake_transfer": frozenset({"direction", "source", "target", "chunk_size", "mode"}),
    "save": frozenset({"storage", "table", "mode", "key", "keys", "statement", "params",
                       "commands", "sql", "code", "script", "endpoint", "url", "method",
                       "headers", "database", "format"}),
}


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
