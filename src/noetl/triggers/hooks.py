"""Webhooks: ``POST /api/hooks/{name}`` starts the hook's playbook.

Each hook has its own secret, kept in the credential store (a credential whose data holds
``secret``), independent of the API token: with ``auth: hmac`` the sender signs the raw body
with HMAC-SHA256 and sends ``X-Noetl-Signature: sha256=<hex>`` (GitHub's
``X-Hub-Signature-256`` is accepted too); with ``auth: bearer`` it sends
``Authorization: Bearer <secret>``. A delivery id (``X-Noetl-Delivery``, or the hook's
``delivery_header``) makes a replay start nothing: the first delivery's execution is answered.
The args are the JSON body, or the hook's ``args`` mapping rendered over ``body`` and
``headers``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

from noetl.errors import NoetlError

if TYPE_CHECKING:
    from noetl.engine.core import Engine
    from noetl.store.base import Tx
    from noetl.store.trigger_rows import HookRow

SIGNATURE_HEADERS = ("x-noetl-signature", "x-hub-signature-256")
DELIVERY_HEADER = "x-noetl-delivery"
MAX_DELIVERY_ID = 200


class Unauthorized(NoetlError):
    """A missing or wrong signature or token."""


def sign(secret: str, body: bytes) -> str:
    """The signature header value a sender puts on ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def secret_of(data: dict[str, Any], name: str) -> str:
    secret = data.get("secret") or data.get("token")
    if not isinstance(secret, str) or not secret:
        raise NoetlError(f"hook '{name}': its credential holds no 'secret'")
    return secret


def verify(hook: HookRow, secret: str, headers: dict[str, str], body: bytes) -> None:
    """Raise :class:`Unauthorized` unless the request carries the hook's secret."""
    if hook.auth == "bearer":
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 secret.encode()):
            raise Unauthorized(f"hook '{hook.name}': missing or wrong bearer token")
        return
    given = next((headers[h] for h in SIGNATURE_HEADERS if h in headers), "")
    if not given:
        raise Unauthorized(f"hook '{hook.name}': no signature (send X-Noetl-Signature: "
                           "sha256=<HMAC-SHA256 of the body, hex>)")
    if not hmac.compare_digest(given.strip().lower().encode(), sign(secret, body).encode()):
        raise Unauthorized(f"hook '{hook.name}': the signature does not match the body")


def hook_args(hook: HookRow, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    try:
        payload = json.loads(body) if body.strip() else {}
    except ValueError as exc:
        raise ValueError(f"hook '{hook.name}': the body is not JSON: {exc}") from None
    if hook.args is None:
        if not isinstance(payload, dict):
            raise ValueError(f"hook '{hook.name}': the body must be a JSON object (or give "
                             "the hook an args mapping)")
        return payload
    from noetl.templates import render, view

    ctx = {"body": view(payload), "headers": dict(headers)}
    out = render(hook.args, ctx, f"hook '{hook.name}' → args")
    if not isinstance(out, dict):
        raise ValueError(f"hook '{hook.name}': args must render to a mapping")
    return out


def delivery_id(hook: HookRow, headers: dict[str, str]) -> str | None:
    value = headers.get((hook.delivery_header or DELIVERY_HEADER).lower())
    if value is None or not value.strip():
        return None
    if len(value) > MAX_DELIVERY_ID:
        raise ValueError(f"delivery id longer than {MAX_DELIVERY_ID} characters")
    return value.strip()


def trigger(engine: Engine, hook: HookRow, args: dict[str, Any],
            delivery: str | None) -> tuple[int, bool]:
    """Start the hook's playbook; (execution id, replay?). A delivery id seen before starts
    nothing and answers the first delivery's execution."""
    after: list[Any] = []

    def go(tx: Tx) -> tuple[int, bool]:
        after.clear()
        if delivery is not None and not tx.claim_delivery(hook.name, delivery):
            first = tx.delivery_execution(hook.name, delivery)
            if first is None:
                raise NoetlError(f"hook '{hook.name}': delivery {delivery!r} was received "
                                 "but did not start an execution")
            return first, True
        info = {"kind": "hook", "hook": hook.name, "delivery_id": delivery}
        ex, done = engine.start_in(tx, path=hook.path, version=hook.version, args=args,
                                   trigger=info)
        if delivery is not None:
            tx.set_delivery_execution(hook.name, delivery, ex.execution_id)
        after.append(done)
        return ex.execution_id, False

    result = engine._tx(go)
    for fn in after:
        fn()
    return result
