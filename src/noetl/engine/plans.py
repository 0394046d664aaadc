"""Compiled plans, cached per execution: an event never re-reads or re-parses the playbook."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from noetl.domain.records import CatalogEntry, ExecutionRow
from noetl.dsl.loader import build_playbook, parse_playbook
from noetl.errors import NotFound
from noetl.plan import Plan, compile_plan, plan_from_raw

if TYPE_CHECKING:
    from noetl.store.base import Tx

class _Lru:
    """A small thread-safe least-recently-used map of compiled plans."""

    def __init__(self, size: int):
        self.size = size
        self.items: OrderedDict[int, Plan] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: int) -> Plan | None:
        with self.lock:
            plan = self.items.get(key)
            if plan is not None:
                self.items.move_to_end(key)
            return plan

    def put(self, key: int, plan: Plan) -> None:
        with self.lock:
            self.items[key] = plan
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


_by_execution = _Lru(2048)
_by_catalog = _Lru(256)


def remember(execution_id: int, plan: Plan) -> None:
    _by_execution.put(execution_id, plan)


def plan_for(tx: Tx, ex: ExecutionRow) -> Plan:
    """The execution's plan: compiled from its stored playbook once per process, or, for a
    run of a catalog entry this process has a plan of, that plan (an entry never changes,
    and every run of it stores that entry's plan; a run started by another server process
    then costs no read of its playbook)."""
    plan = _by_execution.get(ex.execution_id)
    if plan is not None:
        return plan
    cid = ex.catalog_id
    plan = _by_catalog.get(cid) if cid is not None else None
    if plan is None:
        raw = ex.playbook or tx.get_playbook(ex.execution_id)
        if raw is None:
            raise NotFound(f"execution {ex.execution_id} has no stored playbook")
        plan = plan_from_raw(raw)
        if cid is not None:
            _by_catalog.put(cid, plan)
    remember(ex.execution_id, plan)
    return plan


def catalog_plan(entry: CatalogEntry) -> Plan:
    """The compiled plan of a catalog entry (entries never change: a new version is a new
    entry), cached so starting a run does not parse and compile the playbook again."""
    plan = _by_catalog.get(entry.catalog_id)
    if plan is None:  # from the text when there is one: its lines name run-time tracebacks
        pb = parse_playbook(entry.content, entry.path) if entry.content else \
            build_playbook(entry.payload, entry.path)
        plan = compile_plan(pb)
        _by_catalog.put(entry.catalog_id, plan)
    return plan
