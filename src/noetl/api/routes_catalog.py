"""Catalog routes: register playbooks (versioned by path), list, fetch one, list versions."""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request

from noetl.api.deps import engine
from noetl.api.schemas import CatalogListRequest, CatalogResourceRequest, RegisterRequest
from noetl.dsl.loader import parse_playbook
from noetl.errors import NotFound

router = APIRouter(prefix="/api/catalog", tags=["catalog"])


@router.post("/register", summary="Register a playbook (version = latest + 1)")
def register(body: RegisterRequest, request: Request) -> dict[str, Any]:
    """Body `{content}` or `{content_base64}`. Returns `{status:"success", message, path,
    version, catalog_id, kind, warnings}`; `warnings` are the problems that did not refuse it
    (an unknown step key is ignored, a step nothing leads to), each `{where, message, line,
    severity}`. An invalid playbook → 422 with `problems` of the same shape."""
    if body.content is not None and body.content_base64 is not None:
        raise ValueError("send either content or content_base64, not both")
    if body.content_base64 is not None:
        try:
            content = base64.b64decode(body.content_base64, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"content_base64 is not base64-encoded UTF-8 text: {exc}") from None
    elif body.content is not None:
        content = body.content
    else:
        raise ValueError("content or content_base64 is required")
    if not content.strip():
        raise ValueError("the playbook content is empty")
    from noetl.dsl.yamlsrc import MAX_BYTES

    if len(content) > MAX_BYTES:
        raise ValueError(f"the playbook is larger than {MAX_BYTES:,} bytes")
    entry = engine(request).register(content, "<request>")
    # Parsed again for its warnings, which the catalog does not keep (a register is rare and
    # a playbook at most MAX_BYTES; the engine's register stays a plain store write).
    warnings = [asdict(p) for p in parse_playbook(content, "<request>").warning_problems]
    return {"status": "success",
            "message": f"registered {entry.path} version {entry.version}",
            "path": entry.path, "version": entry.version, "catalog_id": str(entry.catalog_id),
            "kind": entry.kind, "warnings": warnings}


@router.post("/list", summary="List catalog entries, newest first")
def catalog_list(request: Request, body: CatalogListRequest | None = None) -> dict[str, Any]:
    """Body `{resource_type?, latest_only?}` → `{entries:[{catalog_id, path, version, kind,
    created_at, meta}]}` (no content)."""
    body = body or CatalogListRequest()
    with engine(request).store.read() as tx:
        entries = tx.list_catalog(kind=body.resource_type, latest_only=body.latest_only)
    return {"entries": [e.to_dict(with_content=False) for e in entries]}


@router.post("/resource", summary="One catalog entry with its content")
def resource(body: CatalogResourceRequest, request: Request) -> dict[str, Any]:
    """Body `{catalog_id | path, version? ("latest" or an int)}` → the entry with `content`
    and `payload`; 404 when missing."""
    if body.catalog_id is None and not body.path:
        raise ValueError("catalog_id or path is required")
    version: int | None = None
    if body.version not in (None, "", "latest"):
        text = str(body.version)
        if not text.isdigit():
            raise ValueError(f"version must be 'latest' or an integer, got {body.version!r}")
        version = int(text)
    cid = int(body.catalog_id) if body.catalog_id is not None else None
    with engine(request).store.read() as tx:
        entry = tx.get_catalog(path=body.path, version=version, catalog_id=cid)
    if entry is None:
        what = f"catalog id {cid}" if cid else f"playbook '{body.path}'"
        raise NotFound(f"{what}" + (f" version {version}" if version else "") + " not found")
    return entry.to_dict(with_content=True)


@router.get("/{path:path}", summary="Every version of a playbook path, newest first")
def versions(path: str, request: Request) -> dict[str, Any]:
    """→ `{path, versions:[{catalog_id, path, version, kind, created_at, meta}]}`; 404 when the
    path was never registered."""
    with engine(request).store.read() as tx:
        rows = tx.catalog_versions(path)
    if not rows:
        raise NotFound(f"playbook '{path}' not found")
    return {"path": path, "versions": [e.to_dict(with_content=False) for e in rows]}
