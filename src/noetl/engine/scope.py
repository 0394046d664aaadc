"""What a step the engine runs itself sees: its own args (:func:`step_args`) and, for a loop
item, the loop's names (:func:`item_context`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from noetl.plan import PlanStep
from noetl.templates import render_step_args

if TYPE_CHECKING:
    from noetl.engine.unit import Unit


def step_args(session: Unit, ps: PlanStep, edge_args: dict[str, Any]) -> dict[str, Any]:
    """An engine-run step's (loop, sub-playbook) own args, rendered with the incoming edge's
    values as bare names; the edge's values win (as for steps a worker runs)."""
    if not ps.args:
        return dict(edge_args)
    return render_step_args(ps.args, edge_args, session.ctx(ps.refs), f"step '{ps.name}' → args")


def item_context(ps: PlanStep, index: int | None, item: Any,
                 loop: dict[str, Any] | None) -> dict[str, Any]:
    """The names one loop item's templates and code see: the element, ``_loop``, etc."""
    element = (loop or {}).get("element") or str(ps.action.get("element") or "item")
    total = (loop or {}).get("total")
    idx = index or 0
    ctx: dict[str, Any] = {
        "value": item,  # NoETL's other name for the element (the element's own name wins)
        element: item,
        "_loop": {"index": idx, "current_index": idx, "item": item, "count": total, "size": total},
        ps.name: {"result_index": idx, "index": idx},
        "loop": {"index": idx, "item": item, "count": total},
    }
    if ps.action.get("enumerate"):
        ctx["index"] = idx
    if ps.action.get("chunk"):
        ctx["batch"] = item
    return ctx
