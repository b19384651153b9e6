"""The organisation's audit trail (admin only), newest first."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from flask import Blueprint

from rapportnotes.api.common import (
    bad_query,
    date_arg,
    encode_cursor,
    instant_id_cursor,
    int_arg,
    page_response,
    query_args,
    timestamp_arg,
)
from rapportnotes.extensions import db
from rapportnotes.schemas.fields import iso_z
from rapportnotes.security import me, roles_required
from rapportnotes.services.audit import list_events_query
from rapportnotes.services.timezones import local_range_utc

bp = Blueprint("audit", __name__, url_prefix="/audit")


def _bound(args, name: str, tz: str, end: bool) -> datetime | None:
    """``from``/``to`` take a date (organisation time zone) or an RFC 3339 instant, both
    inclusive. The upper bound comes back exclusive: the next day's start, or the instant plus
    one microsecond (the storage resolution on both databases)."""
    raw = args.get(name)
    if raw is None:
        return None
    try:  # the first or last representable day or instant has no bound beyond it
        if len(raw) == 10:
            day = date_arg(args, name)
            start, stop = local_range_utc(day, day, tz)
            return stop if end else start
        instant = timestamp_arg(args, name)
        return instant + timedelta(microseconds=1) if end else instant
    except OverflowError:
        raise bad_query(name, "Out of the supported range of dates.")


def _reversed(args, since: datetime, until: datetime) -> bool:
    """Two dates compare as dates: a day the zone skips (Pacific/Apia's 2011-12-30) starts where
    the next one does, so ``from=to=`` that day is an empty range, not ``from`` after ``to``."""
    if len(args["from"]) == 10 and len(args["to"]) == 10:
        return date_arg(args, "from") > date_arg(args, "to")
    return since >= until


def _id_filter(args, name: str) -> str | None:
    """Ids are matched in their stored (canonical) spelling, whatever case the caller used."""
    raw = args.get(name)
    try:
        return None if raw is None else str(uuid.UUID(raw))
    except ValueError:
        return raw  # actor ids of clients and the system are not all UUIDs


def _event_json(e) -> dict:
    return {
        "id": str(e.id),
        "at": iso_z(e.at),
        "actor_type": e.actor_type,
        "actor_id": e.actor_id,
        "action": e.action,
        "target_type": e.target_type,
        "target_id": e.target_id,
        "status": e.status,
        "request_id": e.request_id,
        "ip": e.ip,
    }


@bp.get("")
@roles_required("admin")
def list_():
    admin = me()
    tz = admin.organisation.timezone
    args = query_args({"actor_id", "action", "target_id", "from", "to", "limit", "cursor"})
    limit = int_arg(args, "limit", 50, 1, 200)
    since, until = _bound(args, "from", tz, False), _bound(args, "to", tz, True)
    if since and until and _reversed(args, since, until):
        raise bad_query("from", "Must not be after 'to'.")
    q = list_events_query(
        admin.organisation_id,
        actor_id=_id_filter(args, "actor_id"),
        action=args.get("action"),
        target_id=_id_filter(args, "target_id"),
        since=since,
        until=until,
        after=instant_id_cursor(args.get("cursor")),
        limit=limit + 1,
    )
    rows = list(db.session.scalars(q))
    last = rows[limit - 1] if len(rows) > limit else None
    nxt = encode_cursor([iso_z(last.at), str(last.id)]) if last else None
    return page_response([_event_json(e) for e in rows[:limit]], nxt, "api.audit.list_")
