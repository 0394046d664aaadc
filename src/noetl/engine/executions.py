"""Creating executions (top-level runs and sub-playbook children)."""

from __future__ import annotations

import copy
import uuid as _uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from noetl.domain.lifecycle import ExecutionStatus
from noetl.domain.records import ExecutionRow, now
from noetl.errors import TemplateError
from noetl.ids import new_id
from noetl.plan import Plan
from noetl.templates import allowed_env, has_template, render, view

if TYPE_CHECKING:
    from noetl.store.base import Tx


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def render_workload(workload: dict[str, Any], execution_id: int,
                    env_names: Iterable[str] = ()) -> dict[str, Any]:
    """A playbook's own workload with its templates rendered, once, as the execution starts.

    Templates see ``execution_id``, ``job`` (``{uuid, execution_id}``), ``env`` (only the
    variables ``env_names``, NOETL_TEMPLATE_ENV, allows) and ``workload`` (the keys before this one, rendered,
    and the plain values). Raises TemplateError naming ``workload.<key>``."""
    if not has_template(workload):
        return workload
    job = {"uuid": str(_uuid.uuid4()), "execution_id": str(execution_id)}
    env = allowed_env(env_names)
    done = {k: v for k, v in workload.items() if not has_template(v)}
    out: dict[str, Any] = {}
    for k, v in workload.items():
        if has_template(v):
            ctx = {"workload": view(done), "work": view(done), "execution_id": str(execution_id),
                   "job": job, "env": env}
            v = render(v, ctx, f"workload.{k}")
            done[k] = v
        out[k] = v
    return out


def merged_workload(plan: Plan, args: dict[str, Any] | None, merge: bool,
                    execution_id: int = 0, env_names: Iterable[str] = ()) -> dict[str, Any]:
    """The playbook's workload (templates rendered) with the caller's args over it. The
    caller's values are data: they are never rendered."""
    workload = render_workload(copy.deepcopy(plan.workload), execution_id, env_names)
    if not args:
        return workload
    if merge:
        return deep_merge(workload, args)
    return {**workload, **copy.deepcopy(args)}


def create_execution(tx: Tx, plan: Plan, args: dict[str, Any] | None = None, merge: bool = False,
                     catalog_id: int | None = None, version: str | None = None,
                     parent_execution_id: int | None = None, parent_job_id: int | None = None,
                     return_step: str | None = None,
                     env_names: Iterable[str] = ()) -> ExecutionRow:
    state: dict[str, Any] = {"active": {}, "joins": []}
    if return_step:
        state["return_step"] = return_step
    eid = new_id()
    try:
        workload = merged_workload(plan, args, merge, eid, env_names)
    except TemplateError as exc:  # the execution starts and fails at once, saying why
        workload = {**copy.deepcopy(plan.workload), **copy.deepcopy(args or {})}
        state["start_error"] = {"message": str(exc), "type": "TemplateError",
                                "traceback": None, "step": None}
    ex = ExecutionRow(
        execution_id=eid, path=plan.path,
        version=version if version is not None else plan.version, status=ExecutionStatus.PENDING,
        playbook=plan.snapshot(), workload=workload, catalog_id=catalog_id,
        parent_execution_id=parent_execution_id, parent_job_id=parent_job_id, state=state,
        created_at=now())
    tx.insert_execution(ex)
    return ex
