"""Retention: tombstones and expired bookkeeping are removed for good, with an audit trail."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from rapportnotes.models import Contact, IdempotencyRecord
from rapportnotes.models.types import utcnow
from rapportnotes.services import tokens
from rapportnotes.services.audit import Actor, record_event


def purge(session: Session, older_than_days: int) -> dict[str, int]:
    """Hard-delete contacts soft-deleted more than ``older_than_days`` ago, with the idempotency
    records that hold a copy of them; one event per org."""
    now = utcnow()
    cutoff = now - timedelta(days=older_than_days)
    doomed = session.execute(
        select(Contact.organisation_id, Contact.id).where(
            Contact.deleted.is_(True), Contact.deleted_at < cutoff
        )
    ).all()
    per_org = Counter(org for org, _ in doomed)
    purged = 0
    for org_id in per_org:
        ids = [cid for org, cid in doomed if org == org_id]
        # Counted as deleted, not as found: a purge running at the same time may have removed
        # some already, and the trail must not record them twice.
        count = 0
        for start in range(0, len(ids), 500):
            batch = ids[start:start + 500]
            count += session.execute(
                delete(Contact).where(Contact.organisation_id == org_id, Contact.id.in_(batch))
                .execution_options(synchronize_session=False)
            ).rowcount
            # The stored first response of the contact's create is a copy of it, notes included:
            # it goes too, or the purged contact would live on (and replay) until its key expired.
            session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.organisation_id == org_id,
                                                IdempotencyRecord.resource_id.in_([str(i) for i in batch]))
                .execution_options(synchronize_session=False)
            )
        if count:
            record_event(session, Actor(org_id, "system", "cli:purge"), "contacts.purge",
                         target_type="contacts", target_id=f"count={count}")
        purged += count
    expired = session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < now)
        .execution_options(synchronize_session=False)
    ).rowcount
    tokens.purge_expired(session, now)
    return {"contacts": purged, "idempotency_records": expired or 0}
