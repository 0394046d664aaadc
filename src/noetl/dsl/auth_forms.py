"""Auth mappings no form understands: one check, used by validation and by the tools."""

from __future__ import annotations

from typing import Any

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
