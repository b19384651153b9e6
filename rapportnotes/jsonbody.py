"""Strict JSON request bodies.

Python's ``json`` module accepts duplicate keys (last wins), ``NaN``/``Infinity`` and
``1e999`` (which becomes ``inf``), and recurses without limit. Each of those is a way to smuggle
something past validation or crash a worker, so request bodies are parsed here instead.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from rapportnotes.errors import ApiError


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _depth(value: Any, limit: int) -> bool:
    """True when ``value`` nests no deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return True


def loads_strict(data: bytes | str, max_depth: int = 32) -> Any:
    """Parse JSON or raise ``ValueError`` for anything a strict parser refuses.

    Bytes are decoded as UTF-8 here (a leading byte order mark is ignored, as RFC 8259 allows):
    given bytes, ``json.loads`` would also detect and take UTF-16 and UTF-32, which JSON
    exchanged between systems must not be (RFC 8259 section 8.1)."""
    try:
        if isinstance(data, bytes):
            data = data.decode("utf-8-sig")
        value = json.loads(
            data,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except RecursionError:
        raise ValueError("nesting too deep")
    except UnicodeDecodeError:
        raise ValueError("body is not UTF-8")
    except ValueError as exc:
        if "integer string conversion" in str(exc):  # Python's own words name its internals
            raise ValueError("a number has too many digits")
        raise
    if not _depth(value, max_depth):
        raise ValueError("nesting too deep")
    return value


def json_body(*, required: bool = True) -> Any:
    """The request's JSON body: 415 when not declared JSON, 400 when not valid, 422 if not an object."""
    raw = request.get_data(cache=True)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and limit is not None and len(raw) >= limit:
        # A chunked body (no Content-Length) is cut at the limit, not refused, by the reader.
        raise RequestEntityTooLarge()
    if not raw and not required:
        return None
    coding = request.headers.get("Content-Encoding", "").strip().lower()
    if coding not in ("", "identity"):
        # Read as it is, a gzip body was a misleading 400 and a mislabelled one was stored:
        # RFC 9110 section 15.5.16 (415, with Accept-Encoding naming what is accepted).
        raise ApiError(415, "The request body must not be content-encoded.",
                       headers={"Accept-Encoding": "identity"})
    if request.mimetype != "application/json":
        raise ApiError(415, "The request body must be declared as application/json.")
    try:
        value = loads_strict(raw, current_app.config["JSON_MAX_DEPTH"])
    except ValueError as exc:
        raise ApiError(400, f"The body is not valid JSON: {exc}.")
    if not isinstance(value, dict):
        raise ApiError(422, "The body must be a JSON object.", errors={"_body": ["Not an object."]})
    return value
