"""The web UI: static HTML/CSS/JS modules served from inside the package, plus the few JSON
routes only the UI needs. ``mount(app)`` is called by the API's ``create_app``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

STATIC = Path(__file__).resolve().parent / "static"


def _answers(app: FastAPI, method: str, path: str) -> bool:
    """Does some route already answer ``method path`` (looking inside included routers)?"""
    from starlette.routing import Match

    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": [],
             "query_string": b"", "app": app}
    return any(r.matches(scope)[0] == Match.FULL for r in app.router.routes)


def mount(app: FastAPI) -> None:
    """Serve the UI at ``/`` (assets under ``/ui/``) and add UI-only routes the API lacks."""
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.routing import Mount

    from noetl.ui.routes import router

    if any(isinstance(r, Mount) and r.name == "noetl-ui" for r in app.router.routes):
        return  # already mounted
    for route in router.routes:  # only those the API does not answer itself
        path = getattr(route, "path", "")
        if not _answers(app, "GET", path.replace("{execution_id}", "1")):
            app.router.routes.append(route)

    index = STATIC / "index.html"

    def ui_index() -> FileResponse:
        return FileResponse(index, media_type="text/html", headers={"Cache-Control": "no-cache"})

    if not _answers(app, "GET", "/"):
        app.add_api_route("/", ui_index, methods=["GET"], include_in_schema=False)
    app.add_api_route("/ui", ui_index, methods=["GET"], include_in_schema=False)
    app.mount("/ui", StaticFiles(directory=STATIC), name="noetl-ui")


__all__ = ["STATIC", "mount"]
