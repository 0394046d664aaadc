"""Request bodies. Responses are plain dicts whose shapes are documented on each route
(ids are decimal strings, times are epoch seconds)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_ID = 2**63 - 1


def id_text(value: Any, what: str) -> str | None:
    """Accept an id as an int or a decimal string; keep it as a string."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a decimal id")
    text = str(value).strip()
    if not text.isdigit() or not 0 < int(text) <= MAX_ID:
        raise ValueError(f"{what} must be a positive decimal id, got {value!r}")
    return text


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RegisterRequest(_Body):
    content: str | None = Field(None, description="Playbook YAML text.")
    content_base64: str | None = Field(None, description="Playbook YAML, base64-encoded.")
    resource_type: str = "Playbook"


class CatalogListRequest(_Body):
    resource_type: str | None = None
    latest_only: bool = False


class CatalogResourceRequest(_Body):
    catalog_id: str | int | None = None
    path: str | None = None
    version: str | int | None = "latest"

    @field_validator("catalog_id", mode="before")
    @classmethod
    def _cid(cls, v: Any) -> str | None:
        return id_text(v, "catalog_id")


class RunRequest(_Body):
    path: str | None = None
    catalog_id: str | int | None = None
    version: str | int | None = "latest"
    args: dict[str, Any] | None = None
    merge: bool = False

    @field_validator("catalog_id", mode="before")
    @classmethod
    def _cid(cls, v: Any) -> str | None:
        return id_text(v, "catalog_id")

    @field_validator("version", mode="before")
    @classmethod
    def _ver(cls, v: Any) -> str | None:
        if v is None or v == "" or v == "latest":
            return "latest"
        text = str(v).strip()
        if isinstance(v, bool) or not text.isdigit() or int(text) < 1:
            raise ValueError(f"version must be 'latest' or a positive integer, got {v!r}")
        return text


class RerunRequest(_Body):
    args: dict[str, Any] | None = Field(
        default=None, description="Overrides over the execution's inputs (rerun) or its "
                                  "workload (resume).")
    merge: bool = Field(default=False, description="Deep-merge the overrides instead of "
                                                   "replacing top-level keys.")


class EventIn(_Body):
    """An event posted from outside the engine (informational: it is stored and listed; it
    does not drive orchestration)."""

    execution_id: str | int
    event_type: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_.:-]*$")
    event_id: str | int | None = Field(None, description="Client-made id; a retried post with "
                                                          "the same id is stored once.")
    status: str = Field("INFO", max_length=32)
    node_name: str | None = Field(None, max_length=256)
    node_type: str | None = Field(None, max_length=64)
    parent_event_id: str | int | None = None
    context: Any = None
    result: Any = None
    error: str | None = None
    meta: Any = None
    worker_id: str | None = Field(None, max_length=256)

    @field_validator("execution_id", mode="before")
    @classmethod
    def _eid(cls, v: Any) -> str:
        out = id_text(v, "execution_id")
        if out is None:
            raise ValueError("execution_id is required")
        return out

    @field_validator("event_id", "parent_event_id", mode="before")
    @classmethod
    def _ids(cls, v: Any) -> str | None:
        return id_text(v, "event id")


class LeaseRequest(_Body):
    worker_id: str = Field(..., min_length=1, max_length=256)
    limit: int = Field(1, ge=1, le=100)
    lease_seconds: float | None = Field(None, gt=0, le=86400)
    wait_seconds: float = Field(0, ge=0, le=30)


class Outcome(_Body):
    """The outcome produced by ``noetl.worker.runner.run_work``."""

    model_config = ConfigDict(extra="allow")
    report_id: str | None = Field(None, max_length=128)
    status: Literal["ok", "error"] | None = None
    data: Any = None
    error: Any = None
    envelope: Any = None
    meta: Any = None
    duration: float | None = None


class ReportRequest(Outcome):
    """One outcome plus who reports it."""

    worker_id: str | None = Field(None, max_length=256)
    lease_next: int = Field(0, ge=0, le=100, description="Also lease up to this many ready "
                                                          "jobs for the worker, in the same "
                                                          "transaction (one round trip per step).")
    lease_seconds: float | None = Field(None, gt=0, le=86400)


class BatchReportItem(Outcome):
    """One outcome in a batch: the job it is for, and ``status`` (``ok`` or ``error``)."""

    job_id: str | int
    status: Literal["ok", "error"]

    @field_validator("job_id")
    @classmethod
    def _id(cls, v: Any) -> str | None:
        return id_text(v, "job_id")


class ReportBatchRequest(_Body):
    worker_id: str | None = Field(None, max_length=256)
    reports: list[BatchReportItem] = Field(..., max_length=1000)
    lease_next: int = Field(0, ge=0, le=1000, description="Also lease up to this many jobs "
                                                           "for the worker, in the same "
                                                           "transaction (the steps the reports "
                                                           "made ready first).")
    lease_seconds: float | None = Field(None, gt=0, le=86400)


class HeartbeatRequest(_Body):
    worker_id: str = Field(..., min_length=1, max_length=256)
    extend_seconds: float | None = Field(None, gt=0, le=86400)
    logs: list[Any] | None = Field(None, description="What the job wrote since the last "
                                   "heartbeat: `[{t, stream, level, logger?, message}]` (as "
                                   "an outcome's `logs`).")


class ReleaseRequest(_Body):
    worker_id: str = Field(..., min_length=1, max_length=256)


class RenderRequest(_Body):
    execution_id: str | int
    template: Any
    extra_context: dict[str, Any] | None = None

    @field_validator("execution_id", mode="before")
    @classmethod
    def _eid(cls, v: Any) -> str:
        out = id_text(v, "execution_id")
        if out is None:
            raise ValueError("execution_id is required")
        return out


class CredentialIn(_Body):
    name: str = Field(..., min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_.:@-]+$")
    type: str = Field("generic", min_length=1, max_length=64)
    data: dict[str, Any]
    description: str | None = Field(None, max_length=4096)
    tags: list[str] | str | None = None

    def tag_list(self) -> list[str]:
        if self.tags is None:
            return []
        if isinstance(self.tags, str):
            return [t.strip() for t in self.tags.split(",") if t.strip()]
        return [str(t) for t in self.tags]
