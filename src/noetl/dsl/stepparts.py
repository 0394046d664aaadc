"""Checks of the parts a step may carry whatever its type: ``retry``, ``save``, base64 text,
and a tool's own keys as its spec declares them (:class:`noetl.dsl.tools_spec.Key`). Each
reports through the loader's checker, never raises."""

from __future__ import annotations

import math
from typing import Any

from noetl.dsl import checks
from noetl.dsl.checks import MAX_SECONDS, SAVE_KEYS, SAVE_MODES, Reporter, _line
from noetl.dsl.model import SAVE_KINDS, RetryPolicy
from noetl.dsl.tools_spec import ToolSpec

RETRY_KEYS = frozenset({"max_attempts", "initial_delay", "backoff_multiplier", "max_delay",
                        "jitter", "retry_when", "stop_when"})


def _check_retry(c: Reporter, where: str, s: dict[str, Any]) -> RetryPolicy | None:
    r = s.get("retry")
    if r is None or r is False:
        return None
    w = where + " → retry"
    line = _line(s, "retry")
    if r is True:
        return RetryPolicy()
    if isinstance(r, int) and not isinstance(r, bool):
        if not 1 <= r <= 1000:
            c.error(w, f"must be from 1 to 1000 attempts, got {checks._short(r)}", line)
            return None
        return RetryPolicy(max_attempts=r)
    if not isinstance(r, dict):
        c.error(w, "must be true, a number of attempts, or a mapping", line)
        return None
    kw: dict[str, Any] = {}
    for key, val in r.items():
        if key not in RETRY_KEYS:
            c.error(w, f"unknown key '{key}'{checks.did_you_mean(str(key), RETRY_KEYS)} "
                    f"(known: {', '.join(sorted(RETRY_KEYS))})", _line(r, key))
            continue
        if key in ("retry_when", "stop_when"):
            if not isinstance(val, str):
                c.error(f"{w} → {key}", "must be a template string", _line(r, key))
                continue
            kw[key] = val
        elif key == "jitter":
            if not isinstance(val, bool):
                c.error(f"{w} → jitter", "must be true or false", _line(r, key))
                continue
            kw[key] = val
        elif key == "max_attempts":
            if isinstance(val, bool) or not isinstance(val, int) or not 1 <= val <= 1000:
                c.error(f"{w} → max_attempts", f"must be a whole number from 1 to 1000, got "
                        f"{checks._short(val)}", _line(r, key))
                continue
            kw[key] = val
        else:
            top = 1000.0 if key == "backoff_multiplier" else MAX_SECONDS
            if (isinstance(val, bool) or not isinstance(val, int | float)
                    or not math.isfinite(val) or not 0 <= val <= top):
                c.error(f"{w} → {key}", f"must be a finite number from 0 to {top:g}, got "
                        f"{checks._short(val)}", _line(r, key))
                continue
            kw[key] = float(val)
    return RetryPolicy(**kw)


def save_kind(save: dict[str, Any]) -> Any:
    storage = save.get("storage")
    if isinstance(storage, dict):
        return storage.get("type", storage.get("tool", storage.get("kind")))
    return storage if storage is not None else save.get("type", save.get("tool", "event"))


def _check_b64(c: Reporter, where: str, s: dict[str, Any]) -> None:
    import base64
    import binascii

    for key in ("command_b64", "commands_b64", "code_b64"):
        if key in s:
            try:
                base64.b64decode(str(s[key]), validate=True).decode("utf-8")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                c.error(f"{where} → {key}", "not valid base64 of UTF-8 text", _line(s, key))


def _check_save(c: Reporter, where: str, s: dict[str, Any], suffix: str = " → save") -> None:
    sv = s.get("save")
    if sv is None:
        return
    w = where + suffix
    line = _line(s, "save")
    if not isinstance(sv, dict):
        c.error(w, "must be a mapping with 'storage'", line)
        return
    checks.check_keys(c, w, sv, SAVE_KEYS, error=True)
    kind = save_kind(sv)
    if isinstance(sv.get("storage"), dict):
        checks.check_keys(c, w + " → storage", sv["storage"], SAVE_KEYS, error=True)
    mode = sv.get("mode")
    if mode is not None and (not isinstance(mode, str) or ("{{" not in mode
                                                            and mode.lower() not in SAVE_MODES)):
        c.error(w + " → mode", f"unknown mode {mode!r}{checks.did_you_mean(str(mode), SAVE_MODES)}"
                f" (known: {', '.join(sorted(SAVE_MODES))})", _line(sv, "mode"))
    if not isinstance(kind, str) or kind.lower() not in SAVE_KINDS:
        c.error(w + " → storage", f"unknown storage {kind!r} (known: {', '.join(sorted(SAVE_KINDS))})",
                _line(sv, "storage") or line)
        return
    data = sv.get("data", sv.get("args"))
    if data is not None and not isinstance(data, dict | str):
        c.error(w + " → data", "must be a mapping or a template string",
                _line(sv, "data" if "data" in sv else "args") or line)
    if kind.lower() == "postgres":
        st: dict[str, Any] = sv["storage"] if isinstance(sv.get("storage"), dict) else {}
        if not (sv.get("table") or sv.get("statement") or st.get("table") or st.get("statement")):
            c.error(w, "a postgres save needs 'table' or 'statement'", line or _line(sv))


_KIND_NAMES = {"string": "a string", "array": "a list", "object": "a mapping",
               "number": "a number", "integer": "a whole number", "boolean": "true or false"}
_KIND_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str, "array": list, "object": dict, "number": (int, float), "integer": int,
    "boolean": bool}


def _check_key_kinds(c: Reporter, where: str, s: dict[str, Any], sp: ToolSpec) -> None:
    """Each of the tool's keys that declares its kinds or bounds (``tools_spec.Key``); a
    template string (``{{``) is always accepted, since it is rendered at run time."""
    for key, k in sp.keys.items():
        val = s.get(key)
        if val is None or (isinstance(val, str) and "{{" in val):
            continue
        if k.minimum is not None or k.maximum is not None:
            checks.check_number(c, where, s, key, integer="integer" in k.kinds,
                                minimum=-math.inf if k.minimum is None else k.minimum,
                                maximum=math.inf if k.maximum is None else k.maximum)
        elif k.kinds and not any(isinstance(val, _KIND_TYPES[t])
                                 and not (isinstance(val, bool) and t != "boolean")
                                 for t in k.kinds):
            c.error(f"{where} → {key}", "must be " + " or ".join(_KIND_NAMES[t] for t in k.kinds)
                    + f", got {_kind_of(val)}", _line(s, key))


def _kind_of(val: Any) -> str:
    for t in ("boolean", "integer", "number", "string", "array", "object"):
        if isinstance(val, _KIND_TYPES[t]):
            return _KIND_NAMES[t]
    return type(val).__name__
