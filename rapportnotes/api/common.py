"""Small helpers every view uses: the audit actor, body loading, cursors, query parameters."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from flask import g, request, url_for
from marshmallow import Schema, ValidationError

from rapportnotes.errors import ApiError, flatten_messages
from rapportnotes.jsonbody import json_body
from rapportnotes.netaddr import client_address
from rapportnotes.schemas.fields import RFC3339, text_problem, to_utc
from rapportnotes.security import Principal, TokenCaller
from rapportnotes.services.audit import Actor

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")
# Query values are short, but a cursor carries a row's name or email (up to 254 characters of any
# script, up to 4 bytes each as UTF-8): every cursor a listing hands out must come back in.
_MAX_QUERY_VALUE = 512
_MAX_CURSOR = 2048


def actor_for(user: Principal | TokenCaller) -> Actor:
    return Actor(
        organisation_id=user.organisation_id,
        actor_type="user",
        actor_id=str(user.id),
        request_id=g.get("request_id"),
        ip=client_address(),
    )


def load_body(schema: Schema, *, partial: bool = False) -> dict[str, Any]:
    """Parse the JSON body and validate it; every failure is a problem response."""
    data = json_body()
    try:
        return schema.load(data, partial=partial)
    except ValidationError as exc:
        raise ApiError(422, "The request has invalid fields.", errors=flatten_messages(exc.messages))


def bad_query(name: str, message: str) -> ApiError:
    return ApiError(422, "Invalid query parameter.", errors={name: [message]})


def query_args(allowed: set[str]) -> Mapping[str, str]:
    """The query string, refusing unknown or repeated parameters and unsafe characters."""
    args = request.args
    for name in args:
        if name not in allowed:
            raise bad_query(name, "Unknown query parameter.")
        values = args.getlist(name)
        if len(values) > 1:
            raise bad_query(name, "Give this parameter at most once.")
        limit = _MAX_CURSOR if name == "cursor" else _MAX_QUERY_VALUE
        if len(values[0]) > limit or text_problem(values[0]):
            raise bad_query(name, "Invalid characters or too long.")
    return {k: args[k] for k in args}


def int_arg(args: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit():
        raise bad_query(name, f"Must be an integer from {lo} to {hi}.")
    value = int(raw)
    if not lo <= value <= hi:
        raise bad_query(name, f"Must be an integer from {lo} to {hi}.")
    return value


def date_arg(args: Mapping[str, str], name: str) -> date | None:
    raw = args.get(name)
    if raw is None:
        return None
    try:
        if not _DATE.match(raw):  # fromisoformat alone also takes week dates (2026-W01-1)
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise bad_query(name, "Must be a date, YYYY-MM-DD.")


def timestamp_arg(args: Mapping[str, str], name: str) -> datetime | None:
    raw = args.get(name)
    if raw is None:
        return None
    if not RFC3339.match(raw):
        raise bad_query(name, "Must be an RFC 3339 timestamp with an offset.")
    try:
        v = raw.replace("z", "Z").replace("t", "T")
        if "." in v:
            head, tail = v.split(".", 1)
            digits = tail[:len(tail) - len(tail.lstrip("0123456789"))]  # the fraction only
            rest = tail[len(digits):]
            v = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
        return to_utc(datetime.fromisoformat(v))
    except (ValueError, ValidationError):
        raise bad_query(name, "Must be an RFC 3339 timestamp with an offset, in range.")


def bool_arg(args: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = args.get(name)
    if raw is None:
        return default
    if raw not in ("true", "false"):
        raise bad_query(name, "Must be true or false.")
    return raw == "true"


def uuid_arg(args: Mapping[str, str], name: str) -> uuid.UUID | None:
    raw = args.get(name)
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise bad_query(name, "Must be an id.")


def encode_cursor(values: list[Any]) -> str:
    """UTF-8, not ``\\uXXXX`` escapes: a name in another script would take up to three times the
    room (a 64-character Cyrillic team name already made a cursor over the old 512 limit)."""
    raw = json.dumps(values, separators=(",", ":"), default=str, ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str | None, arity: int) -> list[Any] | None:
    """An opaque cursor back to its key values; anything not made by us is a 422."""
    if token is None:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise bad_query("cursor", "Invalid cursor.")
    if not isinstance(values, list) or len(values) != arity or not all(
        isinstance(v, str) and len(v) <= 512 and text_problem(v) is None for v in values
    ):  # the values go to the database as they are: no NUL, control characters or surrogates
        raise bad_query("cursor", "Invalid cursor.")
    return values


def instant_id_cursor(token: str | None) -> tuple[datetime, uuid.UUID] | None:
    """A cursor keyed on (timestamp, id), as the contact and audit listings make them: the
    timestamp is RFC 3339 (ours are UTC), parsed as every timestamp argument is; anything else was
    not made by us and is a 422."""
    values = decode_cursor(token, 2)
    if values is None:
        return None
    try:
        return timestamp_arg({"at": values[0]}, "at"), uuid.UUID(values[1])
    except (ApiError, ValueError):
        raise bad_query("cursor", "Invalid cursor.")


def page_response(items: list[Any], next_cursor: str | None, endpoint: str,
                  **path_args: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    headers: dict[str, str] = {}
    if next_cursor:
        params = {k: v for k, v in request.args.items() if k != "cursor"}
        link = url_for(endpoint, **path_args, **params, cursor=next_cursor)
        headers["Link"] = f'<{link}>; rel="next"'
    return {"items": items, "next_cursor": next_cursor}, 200, headers
