"""The playbook's trigger keys: ``schedule:`` (when it runs by itself), ``hooks:`` (webhooks
that start it) and ``notify:`` (who is told when it ends).

:func:`check_triggers` validates them inside the loader (each problem with its line and a
"did you mean" for a misspelt key); the ``*_specs`` functions normalise a validated value for
the engine and the server (plain dicts, no line numbers).
"""

from __future__ import annotations

import re
from typing import Any

from noetl.dsl.checks import Reporter, _line, check_keys, check_number, did_you_mean

SCHEDULE_KEYS = frozenset({"cron", "interval", "timezone", "args", "enabled", "catchup",
                           "overlap", "name", "description"})
CATCHUP = ("skip", "one")
OVERLAP = ("skip", "allow", "cancel_previous")
NOTIFY_KEYS = frozenset({"url", "credential", "format", "status", "headers", "max_attempts",
                         "name"})
NOTIFY_FORMATS = ("json", "slack")
NOTIFY_STATUSES = ("FAILED", "COMPLETED", "CANCELLED")
HOOK_KEYS = frozenset({"name", "credential", "auth", "args", "enabled", "delivery_header",
                       "description"})
HOOK_AUTH = ("hmac", "bearer")
HOOK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAX_TRIGGERS = 100  # of each kind per playbook


class Problems:
    """A :class:`Reporter` that collects ``where: message`` lines (for specs given through the
    API, the CLI or ``NOETL_NOTIFY``, which have no lines)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def error(self, where: str, message: str, line: int | None) -> None:
        self.messages.append(f"{where}: {message}")

    warn = error


def _items(c: Reporter, key: str, value: Any, line: int | None) -> list[tuple[str, Any]]:
    """A list of mappings (one mapping alone is a list of one), each with its ``where``."""
    if value is None:
        return []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        c.error(key, "must be a list of mappings", line)
        return []
    if len(value) > MAX_TRIGGERS:
        c.error(key, f"more than {MAX_TRIGGERS} entries ({len(value)})", line)
        return []
    out = []
    lines = getattr(value, "item_lines", None) or []
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(item, dict):
            c.error(where, "must be a mapping", lines[i] if i < len(lines) else line)
            continue
        out.append((where, item))
    return out


def _choice(c: Reporter, where: str, item: dict[str, Any], key: str,
            choices: tuple[str, ...], upper: bool = False) -> None:
    if key not in item:
        return
    val = item[key]
    norm = val.upper() if upper and isinstance(val, str) else val
    if not isinstance(norm, str) or norm not in choices:
        shown = [x.lower() for x in choices] if upper else list(choices)
        hint = did_you_mean(str(val).lower(), shown) if isinstance(val, str) else ""
        c.error(f"{where} → {key}", f"must be one of {', '.join(shown)}, got {val!r}{hint}",
                _line(item, key))


def _bool(c: Reporter, where: str, item: dict[str, Any], key: str) -> None:
    if key in item and not isinstance(item[key], bool):
        c.error(f"{where} → {key}", f"must be true or false, got {item[key]!r}", _line(item, key))


def _mapping(c: Reporter, where: str, item: dict[str, Any], key: str) -> None:
    if key in item and item[key] is not None and not isinstance(item[key], dict):
        c.error(f"{where} → {key}", "must be a mapping", _line(item, key))


def check_schedule(c: Reporter, value: Any, line: int | None) -> None:
    for where, item in _items(c, "schedule", value, line):
        from noetl.dsl.cron import SpecError, make_timing  # a playbook with a schedule only

        check_keys(c, where, item, SCHEDULE_KEYS, error=True)
        try:
            make_timing(item.get("cron"), item.get("interval"), item.get("timezone"))
        except SpecError as exc:
            msg = str(exc)
            bad = "timezone" if "time zone" in msg or msg.startswith("timezone") else \
                next((k for k in ("cron", "interval") if msg.startswith(k)), None)
            c.error(where + (f" → {bad}" if bad else ""), msg,
                    _line(item, bad) if bad else _line(item))
        _choice(c, where, item, "catchup", CATCHUP)
        _choice(c, where, item, "overlap", OVERLAP)
        _bool(c, where, item, "enabled")
        _mapping(c, where, item, "args")


def check_notify(c: Reporter, value: Any, line: int | None) -> None:
    for where, item in _items(c, "notify", value, line):
        check_keys(c, where, item, NOTIFY_KEYS, error=True)
        if not item.get("url") and not item.get("credential"):
            c.error(where, "needs 'url' or 'credential' (a credential holding the url)",
                    _line(item))
        url = item.get("url")
        if url is not None and (not isinstance(url, str)
                                or not url.startswith(("http://", "https://"))):
            c.error(f"{where} → url", f"must be an http:// or https:// URL, got {url!r}",
                    _line(item, "url"))
        if "credential" in item and not isinstance(item["credential"], str):
            c.error(f"{where} → credential", "must be a credential name", _line(item, "credential"))
        _choice(c, where, item, "format", NOTIFY_FORMATS)
        status = item.get("status")
        if status is not None and not isinstance(status, str | list):
            c.error(f"{where} → status", "must be a status or a list of them",
                    _line(item, "status"))
            status = None
        for s in ([status] if isinstance(status, str) else status or []):
            if not isinstance(s, str) or s.upper() not in NOTIFY_STATUSES:
                c.error(f"{where} → status", "must list execution statuses among failed, "
                        f"completed, cancelled; got {s!r}", _line(item, "status"))
        _mapping(c, where, item, "headers")
        check_number(c, where, item, "max_attempts", integer=True, minimum=1, maximum=100,
                     templated=False)


def check_hooks(c: Reporter, value: Any, line: int | None) -> None:
    seen: set[str] = set()
    for where, item in _items(c, "hooks", value, line):
        check_keys(c, where, item, HOOK_KEYS, error=True)
        name = item.get("name")
        if not isinstance(name, str) or not HOOK_NAME.match(name):
            c.error(f"{where} → name", "needs a name of letters, digits, '.', '_' or '-' "
                    f"(it is the URL: /api/hooks/NAME), got {name!r}", _line(item, "name"))
        elif name in seen:
            c.error(f"{where} → name", f"duplicate hook name {name!r}", _line(item, "name"))
        else:
            seen.add(name)
        if not isinstance(item.get("credential"), str) or not item.get("credential"):
            c.error(where, "needs 'credential': the credential holding the hook's secret "
                    "(data {secret: ...})", _line(item))
        _choice(c, where, item, "auth", HOOK_AUTH)
        _bool(c, where, item, "enabled")
        _mapping(c, where, item, "args")


def check_triggers(c: Reporter, doc: dict[str, Any]) -> None:
    getl = getattr(doc, "line_of", lambda _k: None)
    check_schedule(c, doc.get("schedule"), getl("schedule"))
    check_notify(c, doc.get("notify"), getl("notify"))
    check_hooks(c, doc.get("hooks"), getl("hooks"))


def _as_list(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    return [value] if isinstance(value, dict) else [v for v in value if isinstance(v, dict)]


def schedule_specs(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The playbook's schedules, normalised (``cron``/``interval`` seconds, defaults filled)."""
    out = []
    for item in _as_list(raw.get("schedule")):
        from noetl.dsl.cron import make_timing  # (see check_schedule)

        t = make_timing(item.get("cron"), item.get("interval"), item.get("timezone"))
        out.append({"cron": t.cron, "interval": t.interval, "timezone": t.timezone,
                    "args": item.get("args") or None, "enabled": item.get("enabled", True),
                    "catchup": item.get("catchup", "skip"),
                    "overlap": item.get("overlap", "skip"), "name": item.get("name")})
    return out


def notify_specs(value: Any) -> list[dict[str, Any]]:
    """Notification targets, normalised: ``status`` an upper-case list (default FAILED)."""
    out = []
    for item in _as_list(value):
        status = item.get("status") or ["FAILED"]
        status = [status] if isinstance(status, str) else status
        out.append({"url": item.get("url"), "credential": item.get("credential"),
                    "format": item.get("format", "json"), "headers": item.get("headers") or {},
                    "status": sorted({str(s).upper() for s in status}),
                    "max_attempts": int(item.get("max_attempts") or 5),
                    "name": item.get("name")})
    return out


def hook_specs(raw: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": h["name"], "credential": h["credential"], "auth": h.get("auth", "hmac"),
             "args": h.get("args") or None, "enabled": h.get("enabled", True),
             "delivery_header": h.get("delivery_header")}
            for h in _as_list(raw.get("hooks"))]
