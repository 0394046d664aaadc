"""Resolve ``auth:`` into credential data, and remember every secret value for redaction.

Forms (the whole ``auth`` value is rendered before it gets here):

* a **string**: a stored credential's name (``auth: pg_local``);
* a **single object**, recognised by any of the keys in :data:`SINGLE_KEYS`:

  - ``source: credential`` (the default): the credential named by ``key`` (or ``name`` or
    ``credential``); ``type``/``service`` override its type; ``fields`` are merged over its data.
    ``{type: postgres, credential: X}`` — a form NoETL accepted but could not resolve — works.
  - ``source: env``: the environment variable ``name``, as ``{value: ...}`` plus ``fields``;
  - ``source: secret``: the environment variable ``NOETL_SECRET_<NAME>`` (what NoETL did);
  - ``source: inline``: ``fields`` (or the object's other keys) are the data, e.g.
    ``{type: bearer, token: ...}``;

* an **alias map** ``{alias: <single>, ...}`` (no reserved keys), used by ``duckdb``.

Every value of a sensitive field (password, token, secret, key, dsn, ...) is added to
``services.secrets``, and :func:`scrub` replaces them in any text before it leaves a tool.
Credential values are never put in tool results.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from noetl.dsl.auth_forms import SINGLE_KEYS, auth_problem
from noetl.errors import NoetlError, ToolError
from noetl.tools.base import Services

_SENSITIVE = re.compile(r"pass|secret|token|key|dsn|conn|credential|auth|value|private",
                        re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)([^@\s]+)(@)")


@dataclass
class Resolved:
    type: str | None
    data: dict[str, Any] = field(default_factory=dict)
    name: str | None = None  # the credential's name, when it came from the store


def is_single(auth: Any) -> bool:
    return isinstance(auth, str) or (isinstance(auth, dict) and bool(SINGLE_KEYS & set(auth)))


def remember(data: Any, services: Services, force: bool = False) -> None:
    """Add the sensitive values in ``data`` to ``services.secrets``."""
    if isinstance(data, dict):
        for k, v in data.items():
            remember(v, services, force or bool(_SENSITIVE.search(str(k))))
        user = next((data[k] for k in ("user", "username", "login") if data.get(k)), None)
        password = data.get("password") or data.get("pass")
        if isinstance(user, str) and isinstance(password, str) and password:
            services.secrets.add(f"{user}:{password}")  # its base64 is what Basic auth sends
    elif isinstance(data, (list, tuple)):
        for v in data:
            remember(v, services, force)
    elif force and isinstance(data, str) and len(data) >= 3:
        services.secrets.add(data)
        m = _URL_PASSWORD.search(data)
        if m:
            services.secrets.add(m.group(2))


def scrub(text: str, services: Services | None = None, extra: list[str] | None = None) -> str:
    """``text`` with every known secret (and any URL password) replaced by ``***``."""
    values = set(services.secrets) if services else set()
    values.update(x for x in extra or [] if x)
    for v in sorted(values, key=len, reverse=True):
        text = text.replace(v, "***")
    text = _URL_PASSWORD.sub(r"\1***\3", text)
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", text, flags=re.IGNORECASE)


def _from_store(name: str, services: Services) -> Resolved:
    try:
        cred = services.credentials(name)
    except NoetlError as exc:
        raise ToolError(f"auth: {exc}", "CredentialNotFound") from None
    data = dict(cred.get("data") or {})
    return Resolved(cred.get("type"), data, name)


def resolve_single(spec: Any, services: Services) -> Resolved:
    if isinstance(spec, str):
        if not spec.strip():
            raise ToolError("auth: empty credential name", "AuthError")
        res = _from_store(spec.strip(), services)
    elif isinstance(spec, dict):
        problem = auth_problem(spec)
        if problem:
            raise ToolError(problem, "AuthError")
        source = str(spec.get("source") or "credential").lower()
        fields = dict(spec.get("fields") or {})
        ctype = spec.get("type") or spec.get("service")
        if source == "credential":
            key = spec.get("key") or spec.get("credential") or spec.get("name")
            if key:
                res = _from_store(str(key), services)
                res.data.update(fields)
                if ctype:
                    res.type = str(ctype)
            else:  # keys beside the reserved ones are inline data: {type: bearer, token: x}
                inline = {k: v for k, v in spec.items() if k not in SINGLE_KEYS}
                if not inline and not fields:
                    raise ToolError("auth: credential reference has no 'key'", "AuthError")
                res = Resolved(str(ctype) if ctype else None, {**inline, **fields})
        elif source in ("env", "secret"):
            name = spec.get("name") or spec.get("secret_name") or spec.get("key")
            if not name:
                raise ToolError(f"auth: source '{source}' needs 'name'", "AuthError")
            var = str(name) if source == "env" else f"NOETL_SECRET_{str(name).upper()}"
            if var not in os.environ:
                raise ToolError(f"auth: environment variable {var} is not set", "AuthError")
            res = Resolved(str(ctype) if ctype else None, {"value": os.environ[var], **fields})
            remember(res.data["value"], services, force=True)
        elif source == "inline":
            inline = {k: v for k, v in spec.items() if k not in SINGLE_KEYS}
            res = Resolved(str(ctype) if ctype else None, {**inline, **fields})
        else:
            raise ToolError(f"auth: unknown source '{source}'", "AuthError")
    else:
        raise ToolError(f"auth: expected a credential name or a mapping, got "
                        f"{type(spec).__name__}", "AuthError")
    # every value of a header credential is sensitive, whatever its field names
    remember(res.data, services, force=(res.type or "").lower() in ("header", "headers"))
    return res


def resolve_auth(auth: Any, services: Services) -> Resolved | dict[str, Resolved] | None:
    """A single :class:`Resolved`, an alias map of them, or None when there is no auth."""
    if auth is None or auth == "" or auth == {}:
        return None
    if is_single(auth):
        return resolve_single(auth, services)
    if isinstance(auth, dict):
        return {str(alias): resolve_single(spec, services) for alias, spec in auth.items()}
    raise ToolError(f"auth: unsupported form {type(auth).__name__}", "AuthError")


def auth_of(call_action: dict[str, Any], args: dict[str, Any]) -> Any:
    """The step's auth config: ``auth`` (or legacy ``credential(s)``) on the step or in args."""
    for src in (call_action, args):
        for k in ("auth", "credential", "credentials"):
            if src.get(k) not in (None, "", {}):
                return src[k]
    return None


PG_FIELDS = {"host": "db_host", "pg_host": "db_host", "db_host": "db_host",
             "port": "db_port", "pg_port": "db_port", "db_port": "db_port",
             "user": "db_user", "username": "db_user", "pg_user": "db_user", "db_user": "db_user",
             "password": "db_password", "pg_password": "db_password",
             "db_password": "db_password",
             "database": "db_name", "dbname": "db_name", "db_name": "db_name",
             "pg_database": "db_name",
             "dsn": "db_conn_string", "connection_string": "db_conn_string",
             "db_conn_string": "db_conn_string", "url": "db_conn_string"}


def postgres_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Credential data → ``db_*`` fields (reference §1.12)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        target = PG_FIELDS.get(str(k).lower())
        if target and v not in (None, "") and target not in out:
            out[target] = v
    return out
