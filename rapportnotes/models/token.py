"""Persistent token state: revoked access tokens and refresh-token families."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, Index, PrimaryKeyConstraint, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from rapportnotes.extensions import db
from rapportnotes.models.types import UTCDateTime, utcnow


class RevokedToken(db.Model):
    """An access token ended before its expiry (logout). Rows can go once ``expires_at`` passes."""

    __tablename__ = "revoked_tokens"
    __table_args__ = (
        PrimaryKeyConstraint("organisation_id", "jti"),  # leads with the tenant, like every table
        Index("ix_revoked_tokens_org_expires", "organisation_id", "expires_at"),
    )

    jti: Mapped[str] = mapped_column(String(64))
    organisation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RefreshToken(db.Model):
    """Every refresh token issued. Each use rotates it; a second use revokes its whole family."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        PrimaryKeyConstraint("organisation_id", "jti"),
        Index("ix_refresh_tokens_org_family", "organisation_id", "family_id"),
        Index("ix_refresh_tokens_org_user", "organisation_id", "user_id"),
    )

    jti: Mapped[str] = mapped_column(String(64))
    organisation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    family_id: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    # The access token issued together with this refresh token: revoking the family ends it too.
    access_jti: Mapped[str | None] = mapped_column(String(64))
    access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
