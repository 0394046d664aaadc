"""``noetl credential``: add, list and delete stored credentials; generate an encryption key.

Credentials are encrypted at rest (:mod:`noetl.credentials`). Without ``--server`` the command
works on the store (``--store`` / ``NOETL_STORE_URL`` / ``$NOETL_HOME/noetl.db``); with
``--server`` (or ``NOETL_SERVER_URL``) it calls the server's ``/api/credentials``. Credential
data is never printed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from noetl.cli.app import JsonOpt, ServerOpt, StoreOpt, app, group
from noetl.cli.common import ArgsError, fail, print_json, read_value

credential_app = group("Manage credentials (encrypted at rest).")
app.add_typer(credential_app, name="credential")


def _data(text: str) -> dict[str, Any]:
    try:
        raw = read_value(text, "--data")
    except ArgsError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--data is not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise typer.BadParameter("--data must be a JSON object")
    return value


def _store(store: str | None) -> Any:
    from noetl.store import open_store

    return open_store(store)


def _client(server: str) -> Any:
    from noetl.client import Client

    return Client(server)


@credential_app.command("add")
def add(name: str = typer.Argument(..., help="Credential name (used as `auth: NAME`)."),
        type_: str = typer.Option(..., "--type", "-t", help="postgres, bearer, basic, ..."),
        data: str = typer.Option(..., "--data", "-d", help="JSON object, or @file."),
        description: str = typer.Option(None, "--description"),
        tag: list[str] = typer.Option(None, "--tag", help="Tag (repeatable)."),
        store: str = StoreOpt, server: str = ServerOpt, as_json: bool = JsonOpt) -> None:
    """Store (or replace) a credential."""
    from noetl.errors import NoetlError

    payload = _data(data)
    try:
        if server:
            _client(server).put_credential(name, type_, payload, description, tag or [])
        else:
            from noetl.credentials import put_credential

            st = _store(store)
            try:
                put_credential(st, name, type_, payload, description, tag or [])
            finally:
                st.close()
    except NoetlError as exc:
        raise fail(str(exc)) from None
    out = {"name": name, "type": type_, "fields": sorted(payload)}
    if as_json:
        print_json(out)
    else:
        sys.stdout.write(f"credential '{name}' ({type_}) saved; fields: "
                         f"{', '.join(out['fields'])}\n")


@credential_app.command("list")
def list_(store: str = StoreOpt, server: str = ServerOpt, as_json: bool = JsonOpt) -> None:
    """List credentials (names, types, descriptions, tags; never their data)."""
    if server:
        items = [{k: v for k, v in c.items() if k != "data"}
                 for c in _client(server).credentials()]
    else:
        st = _store(store)
        try:
            with st.read() as tx:
                items = [c.public() for c in tx.list_credentials()]
        finally:
            st.close()
    if as_json:
        print_json(items)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("name", "type", "description", "tags")
    for c in items:
        t.add_row(str(c.get("name")), str(c.get("type")), str(c.get("description") or ""),
                  ", ".join(str(tag) for tag in c.get("tags") or []))
    Console().print(t)


@credential_app.command("delete")
def delete(name: str = typer.Argument(...), store: str = StoreOpt,
           server: str = ServerOpt) -> None:
    """Delete a credential."""
    from noetl.errors import NoetlError

    try:
        if server:
            _client(server).delete_credential(name)
        else:
            st = _store(store)
            try:
                with st.transaction() as tx:
                    if not tx.delete_credential(name):
                        raise fail(f"credential '{name}' not found")
            finally:
                st.close()
    except NoetlError as exc:
        raise fail(str(exc)) from None
    sys.stdout.write(f"credential '{name}' deleted\n")


@credential_app.command("keygen")
def keygen() -> None:
    """Print a new Fernet key (set it as NOETL_ENCRYPTION_KEY)."""
    from cryptography.fernet import Fernet

    sys.stdout.write(Fernet.generate_key().decode() + "\n")
