"""Auth mappings no form understands: one check, used by validation and by the tools."""

from __future__ import annotations

from typing import Any

from noetl.dsl.checks import did_you_mean

# The keys that make a mapping one auth object (the forms: noetl.tools.auth); any other key of
# an inline object is credential data.
SINGLE_KEYS = frozenset({"source", "key", "name", "service", "secret_name", "scope", "fields",
                         "inject", "type", "credential", "provider"})
# The data keys each inline auth type is read by (noetl.tools.http.auth_headers).
_BEARER = frozenset({"token", "access_token", "bearer", "value"})
_API_KEY = frozenset({"key", "header", "value", "api_key"})
INLINE_KEYS: dict[str, frozenset[str]] = {
    "bearer": _BEARER, "token": _BEARER, "oauth2": _BEARER,
    "basic": frozenset({"username", "user", "password"}),
    "api_key": _API_KEY, "apikey": _API_KEY,
}

# keys people write to mean "read this from the environment": no auth form has them
ENV_LIKE_KEYS = ("env", "env_var", "environment", "var", "variable", "from_env")


def auth_problem(spec: Any) -> str | None:
    """What is wrong with an auth mapping that no form understands (None if nothing is):
    names the key and shows the form it probably meant."""
    if not isinstance(spec, dict):
        return None
    if str(spec.get("source") or "credential").lower() in ("env", "secret"):
        return None
    for key in ENV_LIKE_KEYS:
        if key in spec:
            name = spec[key]
            ctype = spec.get("type") or spec.get("service")
            form = f"{{source: env, name: {name}" + (f", type: {ctype}" if ctype else "") + "}"
            return (f"auth: key '{key}' is not understood by any auth form; to read the "
                    f"environment variable {name}, write {form}")
    return None


def unknown_auth_keys(spec: Any) -> list[tuple[dict[str, Any], str, str]]:
    """``(mapping, key, message)`` for each key of an auth value that nothing reads: a key
    beside a credential reference or an environment source (only ``fields`` is merged), or
    a key an inline ``bearer`` / ``basic`` / ``api_key`` object does not have. Warnings: the
    value is still used, without that key."""
    if not isinstance(spec, dict) or auth_problem(spec):
        return []
    if not SINGLE_KEYS & set(spec):  # an alias map {alias: auth object}
        return [found for sub in spec.values() if isinstance(sub, dict) and SINGLE_KEYS & set(sub)
                for found in unknown_auth_keys(sub)]
    source = str(spec.get("source") or "credential").lower()
    extra = [k for k in spec if k not in SINGLE_KEYS]
    if source in ("env", "secret") or (source == "credential" and any(
            spec.get(k) for k in ("key", "credential", "name"))):
        return [(spec, k, f"unknown auth key '{k}'{did_you_mean(str(k), SINGLE_KEYS)} (ignored: "
                 f"credential fields go under 'fields')") for k in extra]
    ctype = str(spec.get("type") or spec.get("service") or "").lower()
    known = INLINE_KEYS.get(ctype)
    if known is None:
        return []
    return [(spec, k, f"unknown key '{k}' for {ctype} auth"
             f"{did_you_mean(str(k), known | SINGLE_KEYS)} (ignored)")
            for k in extra if k not in known]
