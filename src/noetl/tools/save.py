"""``save``: after the action succeeds, store (part of) its result.

Flat (``storage: postgres``, ``table``, ``data``) and nested (``storage: {type: ...}``) forms.
``result`` and ``data`` are the step's output; ``this`` is its envelope, where names the
envelope lacks come from the output (``this.data.url`` and ``this.score`` both work).
A failed save raises, which fails the step: data meant to be saved and not saved is never
reported as success.
"""

from __future__ import annotations

import importlib
from typing import Any

from noetl.domain.wire import Work
from noetl.dsl.tools_spec import SAVE_STORAGES
from noetl.errors import ToolError
from noetl.templates import render
from noetl.tools.base import Services, ToolCall

STORAGES: dict[str, str] = dict(SAVE_STORAGES)  # kind -> "module:function" (the spec's)


def run_step(call: ToolCall) -> Any:
    """``type: save``: no action of its own; the step's save (its top-level storage, data, …)
    runs on its input."""
    return call.args or None


def normalize_save(save: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Flatten both forms into (kind, config); values under ``storage`` win."""
    cfg = {k: v for k, v in save.items() if k != "storage"}
    storage = save.get("storage")
    if isinstance(storage, dict):
        kind = storage.get("type", storage.get("tool", storage.get("kind", "event")))
        cfg.update({k: v for k, v in storage.items() if k not in ("type", "tool", "kind")})
    else:
        kind = storage if storage is not None else save.get("type", save.get("tool", "event"))
    cfg.pop("type", None)
    cfg.pop("tool", None)
    return str(kind).lower(), cfg


def save_event(cfg: dict[str, Any], data: Any, services: Services,
               work: dict[str, Any]) -> dict[str, Any]:
    return {"saved": "event", "data": data}


def run_save(save: dict[str, Any], envelope: dict[str, Any], ctx: dict[str, Any],
             services: Services, work: Work) -> tuple[dict[str, Any], Any]:
    """Render and store; return (what the storage reported, the data that was saved)."""
    kind, cfg = normalize_save(save)
    result = envelope.get("data")
    sctx = dict(ctx)
    from noetl.templates import envelope_view, view

    # result/data: the step's output; this: its envelope, falling back to the output
    sctx.update({"result": view(result), "data": view(result), "this": envelope_view(envelope)})
    if work.get("loop_save") and isinstance(result, list):
        # a loop's save sees NoETL's names: the item results as results/items/result, their
        # count, and errors (always empty: a failed item fails the loop before its save)
        results = view(result)
        sctx.update({"results": results, "items": results, "count": len(result), "errors": []})
    where = f"step '{work['step']}' → save"
    raw_data = cfg.pop("data", cfg.pop("args", None))
    data = render(raw_data, sctx, where + " → data") if raw_data is not None else result
    # `params` in a statement is the save's data (NoETL rewrote `params.` to `data.`)
    sctx["params"] = view(data)
    keep = {"code", "script", "statement", "commands", "sql"}
    cfg = {k: (v if k in keep else render(v, sctx, f"{where} → {k}")) for k, v in cfg.items()}
    target = STORAGES.get(kind)
    if target is None:
        raise ToolError(f"{where}: unknown storage '{kind}'", "SaveError")
    module, func = target.split(":")
    try:
        fn = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        raise ToolError(f"{where}: storage '{kind}' is not available on this worker: {exc}",
                        "SaveError") from exc
    try:
        out = fn(cfg, data, services, {**work, "save_ctx": sctx})
    except ToolError:
        raise
    except Exception as exc:
        raise ToolError(f"{where} ({kind}) failed: {type(exc).__name__}: {exc}",
                        type(exc).__name__) from exc
    return {"storage": kind, **(out if isinstance(out, dict) else {"result": out})}, data
