"""Credentials: stored encrypted at rest (Fernet), resolved by name at run time."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from noetl.errors import NoetlError, NotFound
from noetl.store.base import Store


class CredentialKeyError(NoetlError):
    """No usable encryption key."""


def _key_file(store: Store) -> Path:
    home = store.settings.home
    if home:
        return Path(home) / "credential.key"
    beside = store.local_dir()
    if beside is not None:
        return beside / "credential.key"
    return Path.cwd() / ".noetl" / "credential.key"


def encryption_key(store: Store, create: bool = True) -> bytes:
    """NOETL_ENCRYPTION_KEY (from the settings the store was opened with); else, for an
    embedded store, the key file beside it (created on first use)."""
    env = store.settings.encryption_key
    if env:
        return env.encode()
    if not store.capabilities.key_file:
        raise CredentialKeyError("NOETL_ENCRYPTION_KEY is not set: credentials cannot be "
                                 "stored or read (generate one with `noetl credential keygen`)")
    from cryptography.fernet import Fernet

    f = _key_file(store)
    if f.exists():
        return f.read_bytes().strip()
    if not create:
        raise CredentialKeyError(f"no credential key at {f}")
    f.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


def check_credentials_key(store: Store) -> None:
    """Stored credentials, no NOETL_ENCRYPTION_KEY and no key file allowed beside the store
    (PostgreSQL): refuse to start (a server or a direct worker that could not decrypt them)."""
    if store.capabilities.key_file or store.settings.encryption_key:
        return
    with store.read() as tx:
        n = len(tx.list_credentials())
    if n:
        raise RuntimeError(f"{n} credential(s) are stored but NOETL_ENCRYPTION_KEY is not set: "
                           "refusing to start (set the key the credentials were stored with)")


def _fernet(store: Store) -> Any:
    from cryptography.fernet import Fernet

    try:
        return Fernet(encryption_key(store))
    except ValueError as exc:
        raise CredentialKeyError("NOETL_ENCRYPTION_KEY is not a valid Fernet key") from exc


def put_credential(store: Store, name: str, type: str, data: dict[str, Any],
                   description: str | None = None, tags: list[str] | None = None) -> None:
    for text in (name, type, description or "", json.dumps(data, ensure_ascii=False)):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # stored, it could never be read back
            raise ValueError("credential holds text that cannot be encoded "
                             "(a lone surrogate)") from None
        if "\x00" in text or "\\u0000" in text:
            raise ValueError("credential holds a NUL character")
    token = _fernet(store).encrypt(json.dumps(data).encode()).decode()
    with store.transaction() as tx:
        tx.put_credential(name, type, token, description, tags or [])


def get_credential(store: Store, name: str) -> dict[str, Any]:
    """The decrypted credential: ``{name, type, data, ...}``."""
    with store.read() as tx:
        found = tx.get_credential(name)
    if found is None:
        raise NotFound(f"credential '{name}' not found")
    cred, token = found
    from cryptography.fernet import InvalidToken

    try:
        data = json.loads(_fernet(store).decrypt(token.encode()))
    except InvalidToken as exc:
        raise CredentialKeyError(f"credential '{name}' cannot be decrypted with this key") from exc
    return {**cred.public(), "data": data}


def store_credentials(store: Store) -> Any:
    def resolve(name: str) -> dict[str, Any]:
        return get_credential(store, name)

    return resolve
