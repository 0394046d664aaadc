"""Creating executions (top-level runs and sub-playbook children)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from noetl.engine.records import ExecutionRow, Status, now
from noetl.ids import new_id
from noetl.plan import Plan

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


def merged_workload(plan: Plan, args: dict[str, Any] | None, merge: bool) -> dict[str, Any]:
    if not args:
        return copy.deepcopy(plan.workload)
    if merge:
        return deep_merge(plan.workload, args)
    return {**copy.deepcopy(plan.workload), **copy.deepcopy(args)}


def create_execution(tx: Tx, plan: Plan, args: dict[str, Any] | None = None, merge: bool = False,
                     catalog_id: int | None = None, version: str | None = None,
                     parent_execution_id: int | None = None, parent_job_id: int | None = None,
                     return_step: str | None = None) -> ExecutionRow:
    state: dict[str, Any] = {"active": {}, "joins": []}
    if return_step:
        state["return_step"] = return_step
    ex = ExecutionRow(
        execution_id=new_id(), path=plan.path,
        version=version if version is not None else plan.version, status=Status.PENDING,
        playbook=plan.raw, workload=merged_workload(plan, args, merge), catalog_id=catalog_id,
        parent_execution_id=parent_execution_id, parent_job_id=parent_job_id, state=state,
        created_at=now())
    tx.insert_execution(ex)
    return ex
