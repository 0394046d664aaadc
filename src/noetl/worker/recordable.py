"""Make a step's outcome recordable before it is reported.

The engine stores outcomes as JSON text (UTF-8). What cannot be stored is dealt with here,
on the worker, so that a report never fails for its content:

- a lone surrogate in a string or a key (``"\\ud800"``) is escaped to its ``\\ud800`` text;
- a NUL character (refused by PostgreSQL text) is escaped to ``\\x00``;
- a value that cannot be stored faithfully (an integer of more than :data:`MAX_DIGITS`
  digits, a NaN or infinite float, a value containing itself, a key that is not a string,
  number, boolean or null) turns the outcome into an error of the step naming the value.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from noetl.domain.wire import Outcome
from noetl.templates import ORJSON_OPTS, json_default

MAX_DIGITS = 4000  # Python refuses to print longer integers (sys.get_int_max_str_digits)
_KEY_TYPES = (str, int, float, bool, type(None))
# json.dumps with these options, without building an encoder per call
_ENCODER = json.JSONEncoder(default=json_default, ensure_ascii=False, allow_nan=False)


class Unrecordable(ValueError):
    pass


def check(outcome: Outcome) -> Outcome:
    """``outcome`` unchanged when it encodes cleanly (the common case: :func:`_plain`),
    else a cleaned copy, or an error outcome naming what cannot be recorded."""
    if _plain(outcome):
        return outcome
    try:
        text = _ENCODER.encode(outcome)
        if "\x00" not in text and "\\u0000" not in text:
            text.encode("utf-8")
            return outcome
    except (ValueError, TypeError, UnicodeEncodeError, RecursionError):
        pass
    try:
        cleaned: Outcome = _clean(outcome, "outcome", [])  # an Outcome cleans to an Outcome
        return cleaned
    except Unrecordable as exc:
        return {"status": "error", "duration": outcome.get("duration"),
                "report_id": outcome.get("report_id"),
                "error": {"message": f"the step's outcome cannot be recorded: {exc}",
                          "type": "UnrecordableResult"},
                "envelope": {"status": "error", "error": str(exc)}}


def _plain(outcome: Outcome) -> bool:
    """The outcome is plain JSON data that encodes cleanly, found out fast (orjson, several
    times faster than the stdlib's encoder): orjson refuses all the stdlib refuses (and more:
    a number key, a tuple read back as a list, fall back to the stdlib's check) but a NaN or
    an infinity, which it writes as null; read back, that null makes the outcome unequal."""
    try:
        raw = orjson.dumps(outcome, default=json_default, option=ORJSON_OPTS)
        return b"\\u0000" not in raw and bool(orjson.loads(raw) == outcome)
    except Exception:  # refused, or a value that cannot be compared: the stdlib decides
        return False


def text(s: str) -> str:
    """``s`` storable as UTF-8 text: lone surrogates and NULs escaped."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        s = s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s.replace("\x00", "\\x00") if "\x00" in s else s


def _clean(v: Any, where: str, stack: list[int]) -> Any:
    if isinstance(v, str):
        return text(v)
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        if v.bit_length() > MAX_DIGITS * 3.32:
            raise Unrecordable(f"{where} is an integer of more than {MAX_DIGITS} digits")
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise Unrecordable(f"{where} is {v} (not a JSON number)")
        return v
    if isinstance(v, dict | list | tuple | set | frozenset):
        if id(v) in stack:
            raise Unrecordable(f"{where} contains itself (a cycle)")
        if len(stack) > 200:
            raise Unrecordable(f"{where} is nested more than 200 levels deep")
        stack.append(id(v))
        try:
            if isinstance(v, dict):
                out = {}
                for k, x in v.items():
                    if not isinstance(k, _KEY_TYPES):
                        raise Unrecordable(f"{where} has a key of type {type(k).__name__} "
                                           f"({text(repr(k))[:80]}); keys must be strings")
                    key = text(k) if isinstance(k, str) else _clean(k, where, stack)
                    out[key] = _clean(x, f"{where}.{key}", stack)
                return out
            return [_clean(x, f"{where}[{i}]", stack) for i, x in enumerate(v)]
        finally:
            stack.pop()
    try:
        converted = json_default(v)
    except Exception as exc:
        raise Unrecordable(f"{where}: {type(v).__name__} cannot be converted: {exc}") from exc
    return _clean(converted, where, stack)
