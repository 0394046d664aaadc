"""Engine errors. Every error the engine raises derives from :class:`NoetlError`.

NoetlError
 ├── PlaybookError        a playbook is invalid (names file, line, field)
 ├── TemplateError        a Jinja template cannot render (names the template and the name)
 ├── StoreError
 │    ├── NotFound        an id or path that does not exist
 │    └── Conflict        a write that contradicts stored state
 ├── LeaseLost            a job's lease expired or moved to another worker
 └── ToolError            a tool failed; carries the error type and traceback

An error record (a failed step's ``error``) is ``{message, type, traceback, step}`` plus, when
known, the :data:`USER_KEYS` that say it in the user's terms.
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
        warn = "warning: " if self.severity == "warning" else ""
        return f"{warn}{self.where}{at}: {self.message}"


class PlaybookError(NoetlError):
    """A playbook failed validation. ``problems`` lists every error found (and, after them,
    the warnings: ``severity``)."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: invalid playbook\n{lines}")


class TemplateError(NoetlError):
    """A template could not be rendered. ``where`` names the step and field (``step 'x' →
    args.total``), ``template`` is the template text and ``reason`` the message alone."""

    def __init__(self, message: str, *, where: str | None = None, template: str | None = None,
                 reason: str | None = None):
        super().__init__(message)
        self.where = where
        self.template = template
        self.reason = reason

    @property
    def field(self) -> str | None:
        """``where`` without its leading ``step 'x' →``: the field inside the step."""
        if self.where is None:
            return None
        head, sep, rest = self.where.partition(" → ")
        return rest if sep and head.startswith("step '") else self.where


class StoreError(NoetlError):
    """The store refused an operation."""


class NotFound(StoreError):
    """A requested object does not exist."""


class Conflict(StoreError):
    """A write conflicts with the stored state."""


class LeaseLost(StoreError):
    """The job's lease is no longer held by this worker."""


class ToolError(NoetlError):
    """A tool failed. ``error_type`` names the original exception class. ``retryable=False``:
    running the step again cannot help (a missing command, a bad configuration), so the step
    fails at once even when it has a retry policy (the outcome is ``final``)."""

    def __init__(self, message: str, error_type: str = "ToolError", traceback: str | None = None,
                 data: object = None, user_traceback: str | None = None, *,
                 retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable
        self.error_type = error_type
        self.traceback = traceback  # the whole traceback, engine frames included
        self.data = data
        self.user_traceback = user_traceback  # only the user's code frames (python steps)


# The keys of an error record that describe it for people (shown before any traceback):
# field and template (a template error), reason (its message alone), user_traceback (a python
# step's own frames, with the YAML file's lines) and at (``flow.yaml, line 14``: where it raised).
USER_KEYS = ("field", "template", "reason", "user_traceback", "at")


def user_details(exc: BaseException) -> dict[str, str]:
    """The user-facing keys (:data:`USER_KEYS`) an exception carries, for its error record."""
    if isinstance(exc, TemplateError) and exc.template is not None:
        out = {"template": exc.template, "reason": exc.reason or str(exc)}
        if exc.field:
            out["field"] = exc.field
        return out
    if isinstance(exc, ToolError) and exc.user_traceback:
        return {"user_traceback": exc.user_traceback}
    return {}
