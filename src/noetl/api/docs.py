"""The API's interactive documentation at ``/docs``: Swagger UI served from files inside the
package (``noetl/api/swagger``, Swagger UI 5 from ``swagger-ui-dist``), so it renders with
no network access; FastAPI's default page loads its scripts from a CDN."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

SWAGGER = Path(__file__).resolve().parent / "swagger"
ASSETS = "/docs/static"
DOCS = "/docs"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (and its assets and OAuth2 redirect page) for ``app``, which must be
    created with ``docs_url=None`` so FastAPI does not add its CDN page."""
    from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    title = f"{app.title} — Swagger UI"

    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=title,
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            oauth2_redirect_url=OAUTH2_REDIRECT,
            # no call to the online spec validator
            swagger_ui_parameters={"validatorUrl": None, "tryItOutEnabled": False})

    def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_api_route(DOCS, docs, methods=["GET"], include_in_schema=False)
    app.add_api_route(OAUTH2_REDIRECT, oauth2_redirect, methods=["GET"], include_in_schema=False)
    app.mount(ASSETS, StaticFiles(directory=SWAGGER), name="swagger-ui")
