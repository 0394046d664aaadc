"""The tool contract: one :class:`ToolCall` in, a result (or an envelope) out."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from noetl.tools.output import StepLog

from noetl.settings import Settings

Credentials = Callable[[str], dict[str, Any]]


def _no_credentials(name: str) -> dict[str, Any]:
    from noetl.errors import NotFound

    raise NotFound(f"credential '{name}' is not available to this worker")


_DEFAULTS = Settings()


@dataclass
class Services:
    """What tools may use beyond their input: credentials, shared clients, the data dir."""

    credentials: Credentials = _no_credentials
    data_dir: str = ".noetl/data"
    http_client: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)  # values to redact from events
    cancelled: threading.Event | None = None  # set when the job's execution was cancelled
    log: StepLog | None = None  # the running job's captured output (noetl.tools.output)
    settings: Settings | None = None  # the process's (the pool passes its own on)

    @property
    def config(self) -> Settings:
        """The process's settings (defaults when none were given)."""
        return self.settings if self.settings is not None else _DEFAULTS


@dataclass
class ToolCall:
    """What a tool is called with: one run of one step (or loop item)."""

    action: dict[str, Any]  # the rendered tool configuration (python code left as written)
    args: dict[str, Any]  # the rendered step inputs
    ctx: dict[str, Any]  # the render context (workload, step results, loop variables)
    execution_id: str
    step: str
    attempt: int = 1
    index: int | None = None
    timeout: float | None = None
    isolate: bool = False  # run in a child process (the previous attempt lost its worker)
    services: Services = field(default_factory=Services)


Tool = Callable[[ToolCall], Any]
