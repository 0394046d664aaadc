"""The playbook DSL as JSON Schema (draft 2020-12), built from the same key sets and enumerations
the loader checks with, so the two cannot drift. ``noetl schema`` prints it; ``/api/schema``
serves it; editors with the YAML language server use it for completion and validation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from noetl.dsl.checks import EDGE_KEYS, HTTP_METHODS, MAX_COUNT, MAX_SECONDS, SAVE_KEYS, SAVE_MODES
from noetl.dsl.model import COMMON_STEP_KEYS, SAVE_KINDS, STEP_TYPES
from noetl.dsl.tools_spec import ENGINE_STEPS, TOOLS, Key

TEMPLATE = {"type": "string", "pattern": r"\{\{|\{%"}


def _either(schema: dict[str, Any]) -> dict[str, Any]:
    """A value of ``schema`` or a template string rendered at run time."""
    return {"anyOf": [schema, TEMPLATE]}


def _enum(values: frozenset[str], *, upper: bool = False) -> dict[str, Any]:
    both = sorted(values | {v.lower() for v in values} | ({v.upper() for v in values} if upper
                                                           else set()))
    return _either({"enum": both})


def _number(lo: float, hi: float, integer: bool = False) -> dict[str, Any]:
    return _either({"type": "integer" if integer else "number", "minimum": lo, "maximum": hi})


def _closed(props: dict[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    return {"type": "object", "properties": {k: props.get(k, {}) for k in sorted(keys)},
            "additionalProperties": False}


def _list_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [item, {"type": "array", "items": item}]}


def trigger_schemas() -> dict[str, Any]:
    """``schedule``, ``notify`` and ``hooks`` (checked by :mod:`noetl.dsl.triggers`)."""
    from noetl.dsl.triggers import (
        CATCHUP,
        HOOK_AUTH,
        HOOK_KEYS,
        NOTIFY_FORMATS,
        NOTIFY_KEYS,
        NOTIFY_STATUSES,
        OVERLAP,
        SCHEDULE_KEYS,
    )

    statuses = {"enum": sorted({*NOTIFY_STATUSES, *(s.lower() for s in NOTIFY_STATUSES)})}
    schedule = _closed({"cron": {"type": "string"}, "interval": {"type": ["string", "number"]},
                        "timezone": {"type": "string"}, "args": {"type": "object"},
                        "enabled": {"type": "boolean"}, "catchup": {"enum": list(CATCHUP)},
                        "overlap": {"enum": list(OVERLAP)}, "name": {"type": "string"},
                        "description": {"type": "string"}}, SCHEDULE_KEYS)
    notify = _closed({"url": {"type": "string", "pattern": "^https?://"},
                      "credential": {"type": "string"}, "format": {"enum": list(NOTIFY_FORMATS)},
                      "status": {"anyOf": [statuses, {"type": "array", "items": statuses}]},
                      "headers": {"type": "object"},
                      "max_attempts": {"type": "integer", "minimum": 1, "maximum": 100},
                      "name": {"type": "string"}}, NOTIFY_KEYS)
    hook = _closed({"name": {"type": "string"}, "credential": {"type": "string"},
                    "auth": {"enum": list(HOOK_AUTH)}, "args": {"type": "object"},
                    "enabled": {"type": "boolean"}, "delivery_header": {"type": "string"},
                    "description": {"type": "string"}}, HOOK_KEYS)
    hook["required"] = ["name", "credential"]
    return {"schedule": _list_of(schedule), "notify": _list_of(notify), "hooks": _list_of(hook)}


def _key_schema(k: Key) -> dict[str, Any]:
    out: dict[str, Any] = {"description": k.desc}
    if k.minimum is not None or k.maximum is not None:
        out.update(_number(-1e308 if k.minimum is None else k.minimum,
                           1e308 if k.maximum is None else k.maximum, "integer" in k.kinds))
    elif k.kinds:
        out.update(_either({"type": list(k.kinds) if len(k.kinds) > 1 else k.kinds[0]}))
    return out


def tool_properties() -> dict[str, Any]:
    """The keys of every step type (noetl.dsl.tools_spec), with what each means: the one list
    the loader checks too. A key several types share is typed only when all of them type it
    alike (the loader checks a type's kinds on that type's steps only)."""
    owners: dict[str, list[tuple[str, Key]]] = {}
    specs: list[tuple[str, Mapping[str, Key]]] = [(n, t.keys) for n, t in TOOLS.items()]
    specs += list(ENGINE_STEPS.items())
    for name, keys in sorted(specs):
        for key, k in keys.items():
            owners.setdefault(key, []).append((name, k))
    out: dict[str, Any] = {}
    for key, found in sorted(owners.items()):
        first = found[0][1]
        alike = all((k.kinds, k.minimum, k.maximum) == (first.kinds, first.minimum, first.maximum)
                    for _, k in found)
        out[key] = _key_schema(first) if alike else {}
        out[key]["description"] = "; ".join(f"{name}: {k.desc}" for name, k in found)
    return out


def playbook_schema() -> dict[str, Any]:
    from noetl.dsl.loader import TOP_KEYS
    from noetl.dsl.stepparts import RETRY_KEYS

    retry = {"anyOf": [{"type": "boolean"}, {"type": "integer", "minimum": 1, "maximum": 1000},
                       _closed({
                           "max_attempts": {"type": "integer", "minimum": 1, "maximum": 1000},
                           "initial_delay": {"type": "number", "minimum": 0, "maximum": MAX_SECONDS},
                           "max_delay": {"type": "number", "minimum": 0, "maximum": MAX_SECONDS},
                           "backoff_multiplier": {"type": "number", "minimum": 0, "maximum": 1000},
                           "jitter": {"type": "boolean"},
                           "retry_when": {"type": "string"}, "stop_when": {"type": "string"},
                       }, RETRY_KEYS)]}
    storage_props = {"type": {"enum": sorted(SAVE_KINDS)}, "mode": _enum(SAVE_MODES),
                     "data": {"type": ["object", "string"]}}
    save = {"anyOf": [{"type": "null"}, {
        "type": "object",
        "properties": {**{k: {} for k in sorted(SAVE_KEYS)}, "mode": _enum(SAVE_MODES),
                       "data": {"type": ["object", "string"]},
                       "storage": {"anyOf": [{"enum": sorted(SAVE_KINDS)},
                                             _closed(storage_props, SAVE_KEYS)]}},
        "additionalProperties": False}]}
    target = {"type": "object", "required": ["step"],
              "properties": {k: {} for k in sorted(EDGE_KEYS)}, "additionalProperties": False}
    edge = {"anyOf": [{"type": "string"}, {
        "type": "object", "properties": {
            **{k: {} for k in sorted(EDGE_KEYS)},
            "step": {"type": "string"}, "when": {"type": ["string", "boolean"]},
            "then": {"anyOf": [{"type": "string"}, target,
                               {"type": "array", "items": {"anyOf": [{"type": "string"}, target]}}]},
            "else": {"anyOf": [{"type": "string"}, target,
                               {"type": "array", "items": {"anyOf": [{"type": "string"}, target]}}]},
            "args": {"type": ["object", "string"]}},
        "additionalProperties": False}]}
    step_props: dict[str, Any] = {k: {} for k in sorted(COMMON_STEP_KEYS)}
    step_props.update(tool_properties())
    task_props = dict(step_props)
    step_props.update({
        "step": {"type": "string", "minLength": 1},
        "type": _enum(STEP_TYPES), "method": _enum(HTTP_METHODS, upper=True),
        "timeout": _either({"type": "number", "exclusiveMinimum": 0, "maximum": MAX_SECONDS}),
        "retry": retry, "save": save,
        "next": {"anyOf": [edge, {"type": "array", "items": edge}]},
        "mode": {"type": "string"},
        "concurrency": _number(1, 10_000, integer=True),
        "limit": _number(0, MAX_COUNT * 100, integer=True),
        "chunk": _number(1, MAX_COUNT, integer=True),
        "chunk_size": _number(1, MAX_COUNT, integer=True),
        "element": {"type": "string"},
        "code": {"type": "string"}, "args": {"type": ["object", "string"]},
    })
    for key, prop in tool_properties().items():  # what each key means, for editors
        step_props[key].setdefault("description", prop["description"])
    task_props.update({"type": _enum(STEP_TYPES), "method": _enum(HTTP_METHODS, upper=True),
                       "retry": retry, "save": save, "code": {"type": "string"}})
    step_props["task"] = {"anyOf": [{"type": "string"}, {
        "type": "object", "properties": task_props, "additionalProperties": False}]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://noetl.io/schemas/playbook.schema.json",
        "title": "NoETL playbook",
        "type": "object",
        "required": ["apiVersion", "kind", "workflow"],
        "properties": {
            **{k: {} for k in sorted(TOP_KEYS)},
            "apiVersion": {"type": "string"},
            "kind": {"type": "string", "pattern": "^[Pp][Ll][Aa][Yy][Bb][Oo][Oo][Kk]$"},
            "metadata": {"type": "object", "properties": {
                "name": {"type": ["string", "number"]}, "path": {"type": ["string", "number"]},
                "version": {"type": ["string", "number"]}, "description": {"type": "string"}}},
            "workload": {"type": ["object", "null"]},
            "workbook": {"type": ["array", "null"], "items": {
                "type": "object", "required": ["name"],
                "properties": {"name": {"type": "string"}, "retry": retry, "save": save,
                               "method": _enum(HTTP_METHODS, upper=True)}}},
            **trigger_schemas(),
            "workflow": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["step"], "properties": step_props}},
        },
    }
