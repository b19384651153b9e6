"""The one way to record an audit event, in the caller's transaction.

The event is written in the same transaction as the change it describes, so they commit (or
fail) together: no change is stored without its audit row. Never pass notes, passwords or tokens.

Every request writes one, so it is a single table-level INSERT, sent at once: no ORM object
and no unit-of-work flush at commit (which cost more than the insert itself).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session

from rapportnotes.models import AuditEvent
from rapportnotes.models.types import new_id, utcnow

_INSERT = AuditEvent.__table__.insert()


@dataclass(frozen=True)
class Actor:
    """Who did something, and from where; built once per request by the API layer."""

    organisation_id: uuid.UUID
    actor_type: str  # "user" | "client"
    actor_id: str | None
    request_id: str | None = None
    ip: str | None = None


def event_row(
    actor: Actor,
    action: str,
    *,
    target_type: str | None = None,
    target_id: Any = None,
    status: int = 200,
) -> dict[str, Any]:
    """The audit row's values. ``record_event`` inserts it; the PostgreSQL contact create writes
    it in the same statement as the contact (``services.contacts``)."""
    return {
        "organisation_id": actor.organisation_id,
        "id": new_id(),
        "at": utcnow(),
        "actor_type": actor.actor_type,
        "actor_id": actor.actor_id,
        "action": action,
        "target_type": target_type,
        "target_id": None if target_id is None else str(target_id),
        "status": status,
        "request_id": actor.request_id,
        "ip": actor.ip,
    }


def record_event(
    session: Session,
    actor: Actor,
    action: str,
    *,
    target_type: str | None = None,
    target_id: Any = None,
    status: int = 200,
) -> uuid.UUID:
    """Insert the event now, after flushing the caller's pending ORM changes so the rows it
    refers to (a new organisation, say) exist first. Returns the event id."""
    session.flush()
    row = event_row(actor, action, target_type=target_type, target_id=target_id, status=status)
    session.connection().execute(_INSERT, row)
    return row["id"]


def list_events_query(
    organisation_id: uuid.UUID,
    *,
    actor_id: str | None = None,
    action: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 50,
) -> Select[tuple[AuditEvent]]:
    """Newest first, keyset-paginated on (at, id)."""
    q = select(AuditEvent).where(AuditEvent.organisation_id == organisation_id)
    if actor_id is not None:
        q = q.where(AuditEvent.actor_id == actor_id)
    if action is not None:
        q = q.where(AuditEvent.action == action)
    if target_id is not None:
        q = q.where(AuditEvent.target_id == target_id)
    if since is not None:
        q = q.where(AuditEvent.at >= since)
    if until is not None:
        q = q.where(AuditEvent.at < until)
    if after is not None:
        q = q.where(tuple_(AuditEvent.at, AuditEvent.id) < after)  # the index range starts here
    return q.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
