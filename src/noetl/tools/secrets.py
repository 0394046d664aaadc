"""``type: secrets``: check that a secret is available — never return its value.

``{provider: noetl|env, secret_name|name}``. ``provider: noetl`` (the default) reads a stored
credential; ``provider: env`` reads an environment variable of the worker.

A step result is written to the event log, shown by the API and the CLI, and is visible to every
later template, so the value is **never** put in it: the result is
``{name, provider, type, available: true, secret_value: "***"}`` (plus the credential's field
names for ``noetl``). The secret value is added to the worker's redaction set. To *use* a
secret, reference the credential from the step that needs it (``auth: <name>`` on postgres,
duckdb, http, transfer and saves); values then go straight from the credential store into the
connection, never through results or templates. NoETL's own ``secrets`` step (Google Secret
Manager) was broken at the reference version and returned the raw value.
"""

from __future__ import annotations

import os
from typing import Any

from noetl.errors import NoetlError, ToolError
from noetl.tools.auth import remember
from noetl.tools.base import ToolCall

MASK = "***"


def run(call: ToolCall) -> Any:
    a = {**call.args, **call.action}
    name = a.get("secret_name") or a.get("name") or a.get("key")
    if not name:
        raise ToolError("secrets step needs 'secret_name'", "ValueError")
    provider = str(a.get("provider") or "noetl").lower()
    name = str(name)
    if provider in ("noetl", "credential", "credentials"):
        try:
            cred = call.services.credentials(name)
        except NoetlError as exc:
            raise ToolError(f"secret '{name}': {exc}", "SecretNotFound") from None
        data = cred.get("data") or {}
        # a mapping: its sensitive fields (by name); a bare value: all of it
        remember(data, call.services, force=not isinstance(data, dict))
        return {"name": name, "provider": "noetl", "type": cred.get("type"),
                "available": True, "fields": sorted(data) if isinstance(data, dict) else [],
                "secret_value": MASK}
    if provider == "env":
        if name not in os.environ:
            raise ToolError(f"secret '{name}': environment variable is not set",
                            "SecretNotFound")
        remember(os.environ[name], call.services, force=True)
        return {"name": name, "provider": "env", "type": "env", "available": True,
                "secret_value": MASK}
    raise ToolError(f"secrets provider '{provider}' is not supported (noetl, env)",
                    "ValueError")
