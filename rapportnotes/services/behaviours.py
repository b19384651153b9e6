"""The organisation's taxonomy: listing, adding, retiring, and checking codes used on contacts."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, Select, bindparam, case, select
from sqlalchemy.orm import Session

from rapportnotes.errors import ApiError
from rapportnotes.models import Behaviour
from rapportnotes.schemas.behaviour import SNAKE


def listing_order() -> tuple[Any, ...]:
    """Supportive first, then counterproductive; within each, oldest first (the default taxonomy
    keeps SPEC §7's order), then by code."""
    return case((Behaviour.polarity == "supportive", 0), else_=1), Behaviour.created_at, Behaviour.code


def list_behaviours(session: Session, organisation_id: uuid.UUID) -> list[Behaviour]:
    return list(session.scalars(
        select(Behaviour).where(Behaviour.organisation_id == organisation_id).order_by(*listing_order())
    ))


@functools.cache
def _catalogue_statement() -> Select[Any]:
    return (
        select(Behaviour.code, Behaviour.label, Behaviour.category, Behaviour.polarity, Behaviour.active)
        .where(Behaviour.organisation_id == bindparam("org", type_=Behaviour.organisation_id.type))
        .order_by(*listing_order())
    )


def catalogue(session: Session, organisation_id: uuid.UUID) -> list[Row[Any]]:
    """The taxonomy as plain rows, in listing order: what reports need, without ORM objects
    (built once, so each report pays for one round trip and no SQL compilation)."""
    return list(session.connection().execute(_catalogue_statement(), {"org": organisation_id}))


def get_behaviour(session: Session, organisation_id: uuid.UUID, code: str) -> Behaviour:
    # A path segment that cannot be a code (NUL, too long, ...) is unknown, not a database error.
    b = session.get(Behaviour, (organisation_id, code)) if re.match(SNAKE, code) else None
    if b is None:
        raise ApiError(404, "No such behaviour.")
    return b


def code_taken() -> ApiError:
    return ApiError(409, "That behaviour code exists already (codes are never reused).",
                    errors={"code": ["Already exists."]})


def add_behaviour(session: Session, organisation_id: uuid.UUID, data: dict[str, Any]) -> Behaviour:
    """Codes are never reused: an existing code, even a retired one, is a conflict. (The insert
    itself is flushed by the caller: a concurrent request adding the same code then meets the
    primary key, which ``api.behaviours`` answers with the same 409.)"""
    if session.get(Behaviour, (organisation_id, data["code"])) is not None:
        raise code_taken()
    b = Behaviour(organisation_id=organisation_id, active=True, **data)
    session.add(b)
    return b


@functools.cache
def _codes_statement() -> Select[Any]:
    return select(Behaviour.code, Behaviour.active).where(
        Behaviour.organisation_id == bindparam("org", type_=Behaviour.organisation_id.type),
        Behaviour.code.in_(bindparam("codes", expanding=True)),
    )


def check_codes(session: Session, organisation_id: uuid.UUID, codes: Iterable[str],
                allowed_retired: Iterable[str] = ()) -> None:
    """Every code must be an active behaviour of the organisation.

    ``allowed_retired`` are codes already on the contact being edited: a retired tag may stay
    on an old contact, but can never be newly applied.
    """
    codes = list(codes)
    if not codes:
        return
    params = {"org": organisation_id, "codes": codes}
    rows = dict(session.connection().execute(_codes_statement(), params).all())
    keep = set(allowed_retired)
    problems = []
    for code in codes:
        if code not in rows:
            problems.append(f"Unknown behaviour code {code!r}.")
        elif not rows[code] and code not in keep:
            problems.append(f"Behaviour {code!r} is retired.")
    if problems:
        raise ApiError(422, "The request has invalid fields.", errors={"behaviours": problems})
