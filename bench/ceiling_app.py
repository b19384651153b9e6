"""The ceiling for any authenticated endpoint: verify the same JWT with the same settings, answer
a small JSON document, touch nothing else. Served by the same gunicorn settings as the app.

``app`` verifies tokens as the app does (``rapportnotes.tokenparse``: one parse, and a token
verified once is kept), so the ratio measures what a create costs beyond authenticating it, not
how much cheaper the app's token check is than the library's. ``app_with_library_tokens``
verifies them as flask-jwt-extended does out of the box: the ceiling the bench's figures were
measured against until 2026-12-01, printed for comparison."""

from __future__ import annotations

import os
from datetime import timedelta

from flask import Flask, request
from flask_jwt_extended import JWTManager, verify_jwt_in_request

from rapportnotes.tokenparse import JWTManager as AppJWTManager


def create_app(manager: type[JWTManager] = AppJWTManager) -> Flask:
    app = Flask(__name__)
    app.config.update(
        JWT_SECRET_KEY=os.environ["JWT_SECRET_KEY"],
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ALGORITHM="HS256",
        JWT_DECODE_ALGORITHMS=["HS256"],
        JWT_DECODE_ISSUER=os.environ.get("JWT_ISSUER", "rapportnotes"),
        JWT_DECODE_AUDIENCE=os.environ.get("JWT_AUDIENCE", "rapportnotes-api"),
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(hours=2),
    )
    manager(app)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.post("/api/v1/contacts")
    def contacts():
        verify_jwt_in_request()
        request.get_data()
        return {"ok": True}, 201

    return app


app = create_app()
app_with_library_tokens = create_app(JWTManager)
