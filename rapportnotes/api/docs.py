"""The committed ``openapi.yaml``, served as-is, and Swagger UI from locally installed assets."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, current_app, send_from_directory
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

_INIT = """window.ui = SwaggerUIBundle({url: "/api/v1/openapi.yaml", dom_id: "#ui",
  deepLinking: true, persistAuthorization: false});"""


def spec_path() -> Path:
    """The one hand-written contract, at the project root (overridable for odd deployments)."""
    override = current_app.config.get("OPENAPI_PATH") or os.environ.get("OPENAPI_PATH")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "openapi.yaml"


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


@site.get("/docs/assets/<path:filename>")
def assets(filename: str):
    return send_from_directory(swagger_ui_path, filename)
