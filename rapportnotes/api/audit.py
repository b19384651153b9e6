"""The organisation's audit trail (admin only), newest first."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint

from rapportnotes.api.common import (
    bad_query,
    date_arg,
    decode_cursor,
    encode_cursor,
    int_arg,
    page_response,
    query_args,
    timestamp_arg,
)
from rapportnotes.extensions import db
from rapportnotes.schemas.fields import iso_z
from rapportnotes.security import me, parse_id, roles_required
from rapportnotes.services.audit import list_events_query
from rapportnotes.services.timezones import local_range_utc

bp = Blueprint("audit", __name__, url_prefix="/audit")


def _bound(args, name: str, tz: str, end: bool) -> datetime | None:
    """``from``/``to`` take a date (organisation time zone, inclusive) or an RFC 3339 instant."""
    raw = args.get(name)
    if raw is None:
        return None
    if len(raw) == 10:
        day = date_arg(args, name)
        start, stop = local_range_utc(day, day, tz)
        return stop if end else start
    return timestamp_arg(args, name)


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
    if since and until and since >= until:
        raise bad_query("from", "Must be before 'to'.")
    cur = decode_cursor(args.get("cursor"), 2)
    after = None
    if cur:
        try:
            after = (datetime.fromisoformat(cur[0].replace("Z", "+00:00")), parse_id(cur[1]))
        except Exception:
            raise bad_query("cursor", "Invalid cursor.")
    q = list_events_query(
        admin.organisation_id,
        actor_id=args.get("actor_id"),
        action=args.get("action"),
        target_id=args.get("target_id"),
        since=since,
        until=until,
        after=after,
        limit=limit + 1,
    )
    rows = list(db.session.scalars(q))
    last = rows[limit - 1] if len(rows) > limit else None
    nxt = encode_cursor([iso_z(last.at), str(last.id)]) if last else None
    return page_response([_event_json(e) for e in rows[:limit]], nxt, "api.audit.list_")
