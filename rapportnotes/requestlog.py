"""Request ids, security headers and one JSON log line per request.

The log line names the method, the route pattern, status, duration and ids: never bodies,
query strings, tokens or notes.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid

from flask import Flask, Response, g, request

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")
log = logging.getLogger("rapportnotes.request")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(entry)


def configure_logging(level: str) -> None:
    root = logging.getLogger("rapportnotes")
    # Flask-Limiter says when Redis fails and limits fall back to per-process memory, and when
    # it recovers; it only has a NullHandler, so without this the operator never hears of it.
    # Its warnings only: its INFO line for a breached limit names the key, a login's email.
    limits = logging.getLogger("flask-limiter")
    for logger in (root, limits):
        if not any(getattr(h, "_rapportnotes", False) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(JsonFormatter())
            handler._rapportnotes = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
            logger.propagate = False
    root.setLevel(level.upper())
    limits.setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))


def init_app(app: Flask) -> None:
    configure_logging(app.config["LOG_LEVEL"])

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def _finish(resp: Response) -> Response:
        if resp.status_code == 204:  # no content, so no content type (Flask would say text/html)
            resp.headers.pop("Content-Type", None)
        resp.headers["X-Request-ID"] = g.get("request_id", "")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        if "Cache-Control" not in resp.headers or request.path.startswith("/api/"):
            resp.headers["Cache-Control"] = "no-store"
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        from flask_jwt_extended import get_current_user

        user_id = g.get("rn_log_user_id")
        if user_id is None:
            try:
                user = get_current_user()
            except Exception:
                user = None
            user_id = user.id if user is not None else None
        log.info(
            "request",
            extra={"fields": {
                "method": request.method,
                "route": request.url_rule.rule if request.url_rule else None,
                "status": resp.status_code,
                "ms": round(elapsed, 2),
                "request_id": g.get("request_id"),
                "user_id": str(user_id) if user_id is not None else None,
            }},
        )
        return resp
