"""A logged contact between a coach and a peer, and the behaviours it was tagged with."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from rapportnotes.extensions import db
from rapportnotes.models.types import UTCDateTime, new_id, utcnow

MODALITIES = ("in_person", "phone", "video", "text", "other")


class Contact(db.Model):
    """One contact.

    ``local_date`` is ``occurred_at`` as a calendar date in the organisation's time zone, fixed at
    write time (and recomputed if the organisation's zone changes), so reports can group by day
    in plain SQL that gives the same answer on SQLite and PostgreSQL.
    """

    __tablename__ = "contacts"
    __table_args__ = (
        ForeignKeyConstraint(["organisation_id", "coach_id"], ["users.organisation_id", "users.id"]),
        # Reports: one coach's live contacts in a date range.
        Index(
            "ix_contacts_report",
            "organisation_id",
            "coach_id",
            "local_date",
            postgresql_where=text("NOT deleted"),
            sqlite_where=text("deleted = 0"),
        ),
        # Listing: newest first, keyset on (occurred_at, id).
        Index("ix_contacts_org_occurred", "organisation_id", "occurred_at", "id"),
        Index("ix_contacts_org_coach_occurred", "organisation_id", "coach_id", "occurred_at", "id"),
        # Sync: changes in (updated_at, id) order; a coach's own device syncs by coach.
        Index("ix_contacts_org_updated", "organisation_id", "updated_at", "id"),
        Index("ix_contacts_org_coach_updated", "organisation_id", "coach_id", "updated_at", "id"),
        # Listing one peer's contacts (the case system's usual question), newest first.
        Index("ix_contacts_org_peer", "organisation_id", "peer_ref", "occurred_at", "id"),
        # Retention (``purge``): an organisation's tombstones by age. Live rows have no entry, so
        # logging a contact does not pay for it.
        Index(
            "ix_contacts_org_tombstones",
            "organisation_id",
            "deleted_at",
            postgresql_where=text("deleted"),
            sqlite_where=text("deleted = 1"),
        ),
        Index(
            "uq_contacts_org_external_id",
            "organisation_id",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL"),
            sqlite_where=text("external_id IS NOT NULL"),
        ),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    coach_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    peer_ref: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    local_date: Mapped[date] = mapped_column(Date)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    modality: Mapped[str] = mapped_column(String(16))
    setting: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)
    peer_rating: Mapped[int | None] = mapped_column(Integer)
    external_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __mapper_args__ = {"version_id_col": version}


class ContactBehaviour(db.Model):
    """A behaviour tag on a contact (one row per code)."""

    __tablename__ = "contact_behaviours"
    __table_args__ = (
        ForeignKeyConstraint(
            ["organisation_id", "contact_id"],
            ["contacts.organisation_id", "contacts.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["organisation_id", "code"], ["behaviours.organisation_id", "behaviours.code"]
        ),
        Index("ix_contact_behaviours_org_code", "organisation_id", "code"),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
