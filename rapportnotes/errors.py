"""The only place an error body is built: every failure is ``application/problem+json`` (RFC 9457).

Views and services raise :class:`ApiError` (or a Werkzeug ``HTTPException``); the handlers here
turn anything that escapes into a problem document. Nothing about the internals (traceback, SQL,
connection strings) ever reaches the client: a 500 carries only the request id.
"""

from __future__ import annotations

import logging
import time
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g, json
from flask_limiter.errors import RateLimitExceeded
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from rapportnotes.extensions import db, limiter

log = logging.getLogger("rapportnotes.errors")

PROBLEM_MIMETYPE = "application/problem+json"
TYPE_BASE = "https://rapportnotes.dev/problems/"


class ApiError(Exception):
    """A failure with a status, raised anywhere below a view and rendered by :func:`problem`."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        title: str | None = None,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        slug: str | None = None,
    ) -> None:
        super().__init__(detail or title or HTTPStatus(status).phrase)
        self.status = status
        self.detail = detail
        self.title = title
        self.errors = errors
        self.headers = headers or {}
        self.slug = slug


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, f"No such {what}.")


def validation_error(errors: dict[str, list[str]], detail: str | None = None) -> ApiError:
    return ApiError(422, detail or "The request has invalid fields.", errors=errors)


def problem(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
    slug: str | None = None,
) -> Response:
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": TYPE_BASE + (slug or phrase.lower().replace(" ", "-").replace("'", "")),
        "title": title or phrase,
        "status": status,
        "detail": detail or phrase,
    }
    if errors is not None:
        body["errors"] = errors
    rid = g.get("request_id")
    if rid:
        body["request_id"] = rid
    resp = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


MAX_ERRORS = 100


def flatten_messages(messages: Any) -> dict[str, list[str]]:
    """Marshmallow nests errors for nested fields and list items; clients get dotted paths.
    At most ``MAX_ERRORS`` fields are listed (a body of 90,000 unknown keys had answered with
    2.7 MB of errors); ``_more`` then says how many were left out."""
    out = _flatten(messages)
    if len(out) <= MAX_ERRORS:
        return out
    kept = dict(list(out.items())[:MAX_ERRORS])
    kept["_more"] = [f"{len(out) - MAX_ERRORS} more fields have errors."]
    return kept


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = str(key) if not prefix else f"{prefix}.{key}"
            if key == "_schema":
                name = prefix or "_body"
            for k, v in _flatten(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out[prefix or "_body"] = list(messages)
    elif isinstance(messages, list):
        for item in messages:
            for k, v in _flatten(item, prefix).items():
                out.setdefault(k, []).extend(v)
    else:
        out[prefix or "_body"] = [str(messages)]
    return out


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(e: ApiError) -> Response:
        return problem(
            e.status, e.detail, title=e.title, errors=e.errors, headers=e.headers, slug=e.slug
        )

    @app.errorhandler(ValidationError)
    def _validation(e: ValidationError) -> Response:
        return problem(422, "The request has invalid fields.", errors=flatten_messages(e.messages))

    @app.errorhandler(RateLimitExceeded)
    def _rate_limited(e: RateLimitExceeded) -> Response:
        retry = "60"
        current = limiter.current_limit
        if current is not None:
            retry = str(max(1, int(current.reset_at - time.time())))
        return problem(429, "Too many requests; try again later.", headers={"Retry-After": retry})

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException) -> Response:
        status = e.code or 500
        headers = {}
        if status == 405:
            allowed = sorted(m for m in (getattr(e, "valid_methods", None) or []) if m != "OPTIONS")
            headers["Allow"] = ", ".join(allowed)
        detail = {
            404: "No such resource.",
            405: "This method is not allowed on this resource.",
            413: "The request body is larger than 1 MiB.",
            415: "The request body must be declared as application/json.",
        }.get(status, e.description if status < 500 else None)
        return problem(status, detail, headers=headers)

    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeoutError)
    def _db_unavailable(e: Exception) -> Response:
        log.warning("database unavailable: %s", type(e).__name__)
        _rollback_quietly()
        return problem(
            503, "The database is unavailable; retry shortly.", headers={"Retry-After": "5"}
        )

    @app.errorhandler(DBAPIError)
    def _dbapi(e: DBAPIError) -> Response:
        _rollback_quietly()
        if e.connection_invalidated:
            return _db_unavailable(e)
        log.exception("database error")
        return problem(500, "Internal error; quote the request id when reporting it.")

    @app.errorhandler(Exception)
    def _unexpected(e: Exception) -> Response:
        log.exception("unhandled error")
        _rollback_quietly()
        return problem(500, "Internal error; quote the request id when reporting it.")


def _rollback_quietly() -> None:
    try:
        db.session.rollback()
    except Exception:
        log.debug("rollback failed", exc_info=True)
