"""Shared request plumbing: the app state (engine, store, metrics), id parsing, auth."""

from __future__ import annotations

import ipaddress
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Request

from noetl.errors import NotFound

if TYPE_CHECKING:
    from noetl.api.metrics import Metrics
    from noetl.engine.core import Engine
    from noetl.store.base import Store

# Paths served without a token: liveness, and anything outside the API (the UI's static files).
PROTECTED_PREFIXES = ("/api", "/metrics", "/docs", "/redoc", "/openapi.json")
HOOK_TRIGGER = re.compile(r"^/api/hooks/[^/]+/?$")


@dataclass
class ApiState:
    engine: Engine
    store: Store
    metrics: Metrics
    token: str | None
    triggers: Any = None  # noetl.triggers.service.Triggers, when the loops run here


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


def may_read_secrets(request: Request) -> bool:
    """Credential data goes to the holder of the API token or, with no token configured, only
    to a client on this host (loopback)."""
    tok = state(request).token
    if tok:
        return token_ok(request, tok)
    return is_loopback(request)
