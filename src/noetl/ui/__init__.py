"""The web UI: static HTML/CSS/JS modules served from inside the package, plus the few JSON
routes only the UI needs. ``mount(app)`` is called by the API's ``create_app``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

STATIC = Path(__file__).resolve().parent / "static"


def _has_route(app: FastAPI, path: str, method: str) -> bool:
    for r in app.router.routes:
        if getattr(r, "path", None) == path and method in (getattr(r, "methods", None) or ()):
            return True
    return False


def mount(app: FastAPI) -> None:
    """Serve the UI at ``/`` (assets under ``/ui/``) and add UI-only routes the API lacks."""
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles

    from noetl.ui.routes import GRAPH_PATH, router

    if not _has_route(app, GRAPH_PATH, "GET"):
        app.include_router(router)

    index = STATIC / "index.html"

    def ui_index() -> FileResponse:
        return FileResponse(index, media_type="text/html", headers={"Cache-Control": "no-cache"})

    if not _has_route(app, "/", "GET"):
        app.add_api_route("/", ui_index, methods=["GET"], include_in_schema=False)
    app.add_api_route("/ui", ui_index, methods=["GET"], include_in_schema=False)
    app.mount("/ui", StaticFiles(directory=STATIC), name="noetl-ui")


__all__ = ["STATIC", "mount"]
