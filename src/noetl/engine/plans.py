"""Compiled plans, cached per execution: an event never re-reads or re-parses the playbook."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from noetl.engine.records import ExecutionRow
from noetl.errors import NotFound
from noetl.plan import Plan, plan_from_raw

if TYPE_CHECKING:
    from noetl.store.base import Tx

_MAX = 2048
_cache: OrderedDict[int, Plan] = OrderedDict()
_lock = threading.Lock()


def remember(execution_id: int, plan: Plan) -> None:
    with _lock:
        _cache[execution_id] = plan
        _cache.move_to_end(execution_id)
        while len(_cache) > _MAX:
            _cache.popitem(last=False)


def plan_for(tx: Tx, ex: ExecutionRow) -> Plan:
    with _lock:
        plan = _cache.get(ex.execution_id)
        if plan is not None:
            _cache.move_to_end(ex.execution_id)
            return plan
    raw = ex.playbook or tx.get_playbook(ex.execution_id)
    if raw is None:
        raise NotFound(f"execution {ex.execution_id} has no stored playbook")
    plan = plan_from_raw(raw)
    remember(ex.execution_id, plan)
    return plan
