"""The ceiling for any authenticated endpoint: verify the same JWT with the same settings, answer
a small JSON document, touch nothing else. Served by the same gunicorn settings as the app."""

from __future__ import annotations

import os
from datetime import timedelta

from flask import Flask, request
from flask_jwt_extended import JWTManager, verify_jwt_in_request


def create_app() -> Flask:
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
    JWTManager(app)

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
