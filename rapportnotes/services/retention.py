"""Retention: tombstones and expired bookkeeping are removed for good, with an audit trail."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, true
from sqlalchemy.orm import Session

from rapportnotes.models import Contact, IdempotencyRecord, Organisation
from rapportnotes.models.types import utcnow
from rapportnotes.services import tokens
from rapportnotes.services.audit import Actor, record_event

BATCH = 500


def purge(session: Session, older_than_days: int) -> dict[str, int]:
    """Hard-delete contacts soft-deleted more than ``older_than_days`` ago, with the idempotency
    records that hold a copy of them; one event per organisation that lost any.

    Organisation by organisation, a batch at a time through ``ix_contacts_org_tombstones``: the
    work follows the tombstones, not the size of the history, and only a batch of ids is ever
    held in memory. One transaction (the caller commits), so the trail and the deletions agree.
    """
    now = utcnow()
    cutoff = now - timedelta(days=older_than_days)
    purged = 0
    for org_id in session.scalars(select(Organisation.id).order_by(Organisation.id)).all():
        doomed = (Contact.organisation_id == org_id, Contact.deleted == true(), Contact.deleted_at < cutoff)
        # Counted as deleted, not as found: a purge running at the same time may have removed
        # some already, and the trail must not record them twice.
        count = 0
        while ids := session.scalars(select(Contact.id).where(*doomed).limit(BATCH)).all():
            # The stored first response of the contact's create is a copy of it, notes included:
            # it goes too, or the purged contact would live on (and replay) until its key expired.
            # Expired ones go below in any case, so only the unexpired are looked at here.
            session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.organisation_id == org_id,
                                                IdempotencyRecord.expires_at >= now,
                                                IdempotencyRecord.resource_id.in_([str(i) for i in ids]))
                .execution_options(synchronize_session=False)
            )
            count += session.execute(
                delete(Contact).where(*doomed, Contact.id.in_(ids))
                .execution_options(synchronize_session=False)
            ).rowcount
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
