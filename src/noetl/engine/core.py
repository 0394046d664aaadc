"""The engine's public operations. Each runs in one store transaction.

Used in-process by the embedded runner and by the API server on behalf of remote workers.
:class:`Engine` is the facade: the catalog, starting and cancelling executions, and reading
them, here; the queue half (lease, heartbeat, release, expiry: :mod:`noetl.engine.leases`) and
the report half (:mod:`noetl.engine.reports`) over the plumbing (:mod:`noetl.engine.base`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from noetl.domain.records import CatalogEntry, ExecutionRow, error_info
from noetl.dsl.loader import parse_playbook
from noetl.dsl.model import Playbook
from noetl.dsl.yamlsrc import plain
from noetl.engine.executions import create_execution
from noetl.engine.plans import catalog_plan
from noetl.engine.reports import Reports
from noetl.engine.session import Session
from noetl.engine.status import describe
from noetl.engine.unprocessable import describe_error, processing_error
from noetl.errors import NoetlError, NotFound, PlaybookError, Problem
from noetl.plan import compile_plan
from noetl.store.base import Tx


class Engine(Reports):
    # -- catalog -----------------------------------------------------------------------------
    def register(self, content: str, source: str = "<playbook>") -> CatalogEntry:
        """A new version of the playbook; its ``schedule:`` and ``hooks:`` replace those the
        path declared before, in the same transaction."""
        from noetl.engine.triggers import sync_triggers

        pb = parse_playbook(content, source)

        def go(tx: Tx) -> CatalogEntry:
            entry = tx.register(pb.path, content, pb.raw)
            sync_triggers(tx, entry, pb.raw)
            return entry

        return self._tx(go)

    # -- executions ---------------------------------------------------------------------------
    def start(self, playbook: Playbook | None = None, *, path: str | None = None,
              version: int | str | None = None, catalog_id: int | None = None,
              args: dict[str, Any] | None = None, merge: bool = False) -> ExecutionRow:
        """Validate, plan, persist and begin an execution; return its row."""
        holder: list[Session] = []

        def go(tx: Tx) -> ExecutionRow:
            holder.clear()
            return self._start_in(tx, holder, playbook, path, version, catalog_id, args, merge)

        try:
            ex = self._tx(go)
        except Exception as exc:
            if not processing_error(exc) or isinstance(exc, NoetlError):
                raise
            raise PlaybookError(path or (playbook.path if playbook else "<playbook>"), [
                Problem("start", f"cannot start the execution: {describe_error(exc)}")]) from exc
        self._after(holder)
        return ex

    def start_in(self, tx: Tx, *, path: str | None = None, version: int | str | None = None,
                 args: dict[str, Any] | None = None, trigger: dict[str, Any] | None = None
                 ) -> tuple[ExecutionRow, Callable[[], None]]:
        """:meth:`start` inside the caller's transaction (a schedule's fire commits with the
        claim of its row). ``trigger`` (what started it) goes into ``execution_started``.
        Returns the row and a function to call once the transaction has committed (it wakes
        the workers)."""
        holder: list[Session] = []
        ex = self._start_in(tx, holder, None, path, version, None, args, False, trigger)
        return ex, lambda: self._after(holder)

    def _start_in(self, tx: Tx, holder: list[Session], playbook: Playbook | None,
                  path: str | None, version: int | str | None, catalog_id: int | None,
                  args: dict[str, Any] | None, merge: bool,
                  trigger: dict[str, Any] | None = None) -> ExecutionRow:
        cat_id, ver = None, None
        if playbook is not None:
            plan = compile_plan(playbook)
        else:
            v = None if version in (None, "", "latest") else int(version)
            entry = tx.get_catalog(path=path, version=v, catalog_id=catalog_id)
            if entry is None:
                what = f"catalog id {catalog_id}" if catalog_id else f"playbook '{path}'"
                raise NotFound(f"{what}" + (f" version {v}" if v else "") + " not found")
            cat_id, ver = entry.catalog_id, str(entry.version)
            plan = catalog_plan(entry)
        ex = create_execution(tx, plan, plain(args) if args else None, merge=merge,
                              catalog_id=cat_id, version=ver,
                              env_names=self.settings.template_env)
        s = self.session(tx, ex, plan)
        s.fresh = True
        inputs: dict[str, Any] = {"args": plain(args) if args else None, "merge": merge}
        if trigger:
            inputs["trigger"] = trigger
        s.begin(inputs)  # execution_started records them
        s.flush()
        holder.append(s)
        return ex

    def cancel(self, execution_id: int) -> ExecutionRow:
        holder: list[Session] = []

        def go(tx: Tx) -> ExecutionRow:
            ex = tx.get_execution(execution_id, lock=True)
            if ex is None:
                raise NotFound(f"execution {execution_id} not found")
            s = self.session(tx, ex)
            s.cancel_execution()
            s.flush()
            holder.append(s)
            return ex

        ex = self._tx(go)
        self._after(holder)
        return ex

    # -- reading -----------------------------------------------------------------------------
    def describe(self, execution_id: int, with_steps: bool = True) -> dict[str, Any]:
        with self.store.read() as tx:
            return describe(tx, execution_id, with_steps)

    def is_terminal(self, execution_id: int) -> bool:
        with self.store.read() as tx:
            ex = tx.get_execution(execution_id)
            if ex is None:
                raise NotFound(f"execution {execution_id} not found")
            return ex.terminal


__all__ = ["Engine", "error_info"]
