"""Shared request plumbing: the app state (engine, store, metrics), id parsing, auth."""

from __future__ import annotations

import ipaddress
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request

from noetl.errors import NotFound

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from noetl.api.metrics import Metrics
    from noetl.engine.core import Engine
    from noetl.store.base import Store

# Paths served without a token: liveness, and anything outside the API (the UI's static files).
PROTECTED_PREFIXES = ("/api", "/metrics", "/docs", "/redoc", "/openapi.json")
HOOK_TRIGGER = re.compile(r"^/api/hooks/[^/]+/?$")


# Host names a credential-data read may be addressed to when no NOETL_ALLOWED_HOSTS is set and
# no token is configured: a page a browser loaded from another name (DNS rebinding) is refused.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
RETRY_AFTER = 5  # seconds, on a 503 while the database is unavailable (handlers and /ready)


def allowed_hosts(token: str | None, configured: str | None = None) -> frozenset[str]:
    """``configured``: ``NOETL_ALLOWED_HOSTS``, from the settings (comma-separated names or
    addresses, ``*`` = any); by default
    the loopback names without a token, any host with one (the token is then the guard: a
    browser never sends it on its own)."""
    text = configured
    if text is None or not text.strip():
        return frozenset({"*"}) if token else LOOPBACK_NAMES
    return frozenset(h.strip().lower().strip("[]") for h in text.split(",") if h.strip())


@dataclass
class ApiState:
    engine: Engine
    store: Store
    metrics: Metrics
    token: str | None
    hosts: frozenset[str] = field(default=LOOPBACK_NAMES)
    triggers: Any = None  # noetl.triggers.service.Triggers, when the loops run here
    threads: ThreadPoolExecutor | None = None  # the hot routes' pool (api/raw.py in_thread)


def state(request: Request) -> ApiState:
    st: ApiState = request.app.state.noetl
    return st


def engine(request: Request) -> Engine:
    return state(request).engine


def parse_id(value: Any, what: str = "execution") -> int:
    """A path id: a positive decimal integer, else 404 (no such object can exist)."""
    text = str(value).strip()
    if not text.isdigit() or not 0 < int(text) < 2**63:
        raise NotFound(f"{what} {value!r} not found (ids are positive decimal integers)")
    return int(text)


def protected(path: str, method: str = "GET") -> bool:
    if method == "POST" and HOOK_TRIGGER.match(path):
        return False  # a webhook checks its own secret (noetl.triggers.hooks)
    return any(path == p or path.startswith(p + "/") for p in PROTECTED_PREFIXES)


def token_ok(request: Request, token: str | None) -> bool:
    if not token:
        return True
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(),
                                                                 token.encode())


def is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _hostname(authority: str) -> str:
    """The host of a ``Host`` header or an ``Origin``'s authority, lower-case, no port."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1:].partition("]")[0]
    if authority.count(":") > 1:  # a bare IPv6 address
        return authority
    return authority.partition(":")[0]


def host_refusal(request: Request, hosts: frozenset[str]) -> str | None:
    """Why the request's ``Host`` (or ``Origin``, when a browser sent one) is not one of
    ``hosts``; None when both are allowed."""
    if "*" in hosts:
        return None
    host = _hostname(request.headers.get("host", ""))
    if host not in hosts:
        return f"Host {host or '(none)'!r} is not an allowed host"
    origin = request.headers.get("origin")
    if origin is not None:
        _, sep, rest = origin.partition("://")
        name = _hostname(rest.partition("/")[0]) if sep else ""
        if name not in hosts:
            return f"Origin {origin[:100]!r} is not an allowed host"
    return None


def secrets_refusal(request: Request) -> str | None:
    """Why credential data may not go to this request (None: it may). It goes to the holder
    of the API token or, with no token configured, only to a client on this host (loopback);
    in both cases addressed by an allowed host name (NOETL_ALLOWED_HOSTS) and, from a browser,
    from an allowed origin."""
    st = state(request)
    if st.token:
        if not token_ok(request, st.token):
            return "credential data is only served to the API token holder"
    elif not is_loopback(request):
        return ("credential data is only served to the API token holder (or, without "
                "NOETL_API_TOKEN, to loopback clients)")
    why = host_refusal(request, st.hosts)
    if why:
        return why + " for credential data (NOETL_ALLOWED_HOSTS: " + \
            ", ".join(sorted(st.hosts)) + ")"
    return None
