"""Engine errors. Every error the engine raises derives from :class:`NoetlError`.

NoetlError
 ├── PlaybookError        a playbook is invalid (names file, line, field)
 ├── TemplateError        a Jinja template cannot render (names the template and the name)
 ├── StoreError
 │    ├── NotFound        an id or path that does not exist
 │    └── Conflict        a write that contradicts stored state
 ├── LeaseLost            a job's lease expired or moved to another worker
 └── ToolError            a tool failed; carries the error type and traceback
"""

from __future__ import annotations

from dataclasses import dataclass


class NoetlError(Exception):
    """Base class of every NoETL engine error."""


@dataclass
class Problem:
    """One validation problem: where it is and what is wrong."""

    where: str
    message: str
    line: int | None = None
    severity: str = "error"

    def __str__(self) -> str:
        at = f" (line {self.line})" if self.line else ""
        return f"{self.where}{at}: {self.message}"


class PlaybookError(NoetlError):
    """A playbook failed validation. ``problems`` lists every error found."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: invalid playbook\n{lines}")


class TemplateError(NoetlError):
    """A template could not be rendered."""


class StoreError(NoetlError):
    """The store refused an operation."""


class NotFound(StoreError):
    """A requested object does not exist."""


class Conflict(StoreError):
    """A write conflicts with the stored state."""


class LeaseLost(StoreError):
    """The job's lease is no longer held by this worker."""


class ToolError(NoetlError):
    """A tool failed. ``error_type`` names the original exception class."""

    def __init__(self, message: str, error_type: str = "ToolError", traceback: str | None = None,
                 data: object = None):
        super().__init__(message)
        self.error_type = error_type
        self.traceback = traceback
        self.data = data
