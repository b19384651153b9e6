"""The committed ``openapi.yaml``, served as-is, and Swagger UI from locally installed assets."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, send_from_directory
from swagger_ui_bundle import swagger_ui_path

bp = Blueprint("docs", __name__)
site = Blueprint("site", __name__)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rapportnotes API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body></html>"""

# validatorUrl: null: Swagger UI's default shows a badge loaded from validator.swagger.io (and a
# link there carrying this document's URL) on every host but localhost/127.0.0.1.
_INIT = """window.ui = SwaggerUIBundle({url: "/api/v1/openapi.yaml", dom_id: "#ui",
  deepLinking: true, persistAuthorization: false, validatorUrl: null});"""


def spec_path() -> Path:
    """The one hand-written contract, at the project root or bundled in a wheel (overridable for odd
    deployments)."""
    from rapportnotes import project_path

    override = current_app.config.get("OPENAPI_PATH") or os.environ.get("OPENAPI_PATH")
    return Path(override) if override else Path(project_path("openapi.yaml"))


@lru_cache(maxsize=4)
def _read(path: Path) -> bytes:
    return path.read_bytes()


@bp.get("/openapi.yaml")
def openapi():
    return Response(_read(spec_path()), mimetype="application/yaml")


@site.get("/docs")
def page():
    resp = Response(_PAGE, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"
    )
    return resp


@site.get("/docs/init.js")
def init_js():
    return Response(_INIT, mimetype="text/javascript")


# Only what /docs loads: the package also holds Swagger UI's stock index.html, whose
# swagger-initializer.js fetches https://petstore.swagger.io/v2/swagger.json.
_ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-16x16.png", "favicon-32x32.png"})


@site.get("/docs/assets/<path:filename>")
def assets(filename: str):
    if filename not in _ASSETS:
        abort(404)
    return send_from_directory(swagger_ui_path, filename)
