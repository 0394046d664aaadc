"""Compiled plans, cached per execution: an event never re-reads or re-parses the playbook."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from noetl.dsl.loader import build_playbook
from noetl.engine.records import CatalogEntry, ExecutionRow
from noetl.errors import NotFound
from noetl.plan import Plan, compile_plan, plan_from_raw

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


_by_catalog: OrderedDict[int, Plan] = OrderedDict()


def catalog_plan(entry: CatalogEntry) -> Plan:
    """The compiled plan of a catalog entry (entries never change: a new version is a new
    entry), cached so starting a run does not parse and compile the playbook again."""
    with _lock:
        plan = _by_catalog.get(entry.catalog_id)
        if plan is not None:
            _by_catalog.move_to_end(entry.catalog_id)
            return plan
    plan = compile_plan(build_playbook(entry.payload, entry.path))
    with _lock:
        _by_catalog[entry.catalog_id] = plan
        while len(_by_catalog) > 256:
            _by_catalog.popitem(last=False)
    return plan
